package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/fingerprint"
)

// TestBudgetsPerKeyAndModelClass sends requests with two keys and two
// model classes: each pair gets its own budget, visible with its limits
// in the status and the metrics.
func TestBudgetsPerKeyAndModelClass(t *testing.T) {
	sc := fastSim()
	st := startStack(t, sc, Config{})
	ctx := context.Background()
	keys := []string{"sk-ant-key-one", "sk-ant-key-two"}
	models := map[string]string{"claude-sonnet-4-5": "claude-sonnet-4", "claude-haiku-4-5-20251001": "claude-haiku-4"}
	for _, key := range keys {
		for model := range models {
			req := messagesRequest(t, ctx, st.url, key, true)
			body := fmt.Sprintf(`{"model":%q,"max_tokens":100,"stream":true,"messages":[{"role":"user","content":"[sim:tokens=30] hi"}]}`, model)
			req.Body, req.ContentLength = http.NoBody, int64(len(body))
			req.Body = nopCloser{strings.NewReader(body)}
			resp, b := do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
		}
	}
	resp, b := do(t, chatRequest(t, ctx, st.url, "sk-openai-key", true))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}

	_, body := get(t, st.url+PathStatus, nil)
	var status Status
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatal(err)
	}
	if !status.Ready || len(status.Keys) != 5 {
		t.Fatalf("status %s", body)
	}
	seen := map[string]bool{}
	for _, k := range status.Keys {
		seen[k.Provider+"/"+k.Fingerprint+"/"+k.ModelClass] = true
		want := map[string]int64{"requests": sc.Anthropic.RPM, "input_tokens": sc.Anthropic.ITPM, "output_tokens": sc.Anthropic.OTPM}
		if k.Provider == "openai" {
			want = map[string]int64{"requests": sc.OpenAI.RPM, "tokens": sc.OpenAI.TPM}
		}
		for d, limit := range want {
			if k.Dimensions[d].Limit != limit {
				t.Errorf("%s/%s %s limit %d, want %d", k.Fingerprint, k.ModelClass, d, k.Dimensions[d].Limit, limit)
			}
		}
		if k.InFlight != 0 || k.OpenReservations != 0 {
			t.Errorf("%+v: work left in flight", k)
		}
	}
	for _, key := range keys {
		for _, class := range models {
			if !seen["anthropic/"+fingerprint.Of(key)+"/"+class] {
				t.Errorf("no budget for %s/%s in %v", fingerprint.Of(key), class, seen)
			}
		}
	}
	if !seen["openai/"+fingerprint.Of("sk-openai-key")+"/gpt-4o"] {
		t.Errorf("no OpenAI budget in %v", seen)
	}

	_, metricsText := get(t, st.url+PathMetrics, nil)
	fp := fingerprint.Of(keys[0])
	for _, want := range []string{
		fmt.Sprintf(`streamgate_budget_limit{dimension="output_tokens",fingerprint=%q,model_class="claude-haiku-4",provider="anthropic"} %s`, fp, strconv.FormatFloat(float64(sc.Anthropic.OTPM), 'g', -1, 64)),
		fmt.Sprintf(`streamgate_upstream_responses_total{code="200",fingerprint=%q,model_class="claude-sonnet-4",provider="anthropic"} 1`, fp),
		fmt.Sprintf(`streamgate_requests_total{endpoint="anthropic_messages",fingerprint=%q,model_class="claude-sonnet-4",outcome="completed",provider="anthropic"} 1`, fp),
		fmt.Sprintf(`streamgate_output_tokens_total{fingerprint=%q,model_class="claude-sonnet-4",provider="anthropic"} 30`, fp),
		fmt.Sprintf(`streamgate_in_flight{fingerprint=%q,model_class="claude-sonnet-4",provider="anthropic"} 0`, fp),
		`streamgate_added_latency_seconds_count 5`,
	} {
		if !strings.Contains(metricsText, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }
