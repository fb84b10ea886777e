package resume

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/sim"
	"github.com/streamgate/streamgate/sse"
)

// simUpstream is a simulator on a test server, with a client whose
// connections are closed at the end of the test.
type simUpstream struct {
	srv    *sim.Server
	url    string
	client *http.Client
}

func startSimUpstream(t *testing.T) *simUpstream {
	t.Helper()
	s := sim.New(sim.Config{
		Window:          6 * time.Second,
		TokensPerSecond: -1,
		Anthropic:       sim.AnthropicLimits{RPM: 1000, ITPM: 1_000_000, OTPM: 1_000_000},
		OpenAI:          sim.OpenAILimits{RPM: 1000, TPM: 1_000_000},
	})
	ts := httptest.NewServer(s)
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.Close()
		_ = s.Close()
	})
	return &simUpstream{srv: s, url: ts.URL, client: &http.Client{Transport: tr}}
}

// post sends body and returns the status, the whole events of the
// response as a caller of streamgate would get them (never half an event),
// and the raw body.
func (u *simUpstream) post(t *testing.T, path, fault string, body []byte) (int, []sse.Event, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-api-key", "sk-test")
	req.Header.Set("authorization", "Bearer sk-test")
	req.Header.Set("anthropic-version", "2023-06-01")
	if fault != "" {
		req.Header.Set(sim.FaultHeader, fault)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, nil, b
	}
	var evs []sse.Event
	rd := sse.NewReader(resp.Body)
	for {
		ev, err := rd.Next()
		if err != nil {
			break // EOF, a cut connection, or half an event: dropped
		}
		evs = append(evs, ev)
	}
	return resp.StatusCode, evs, nil
}

// withoutErrors returns the events a resuming Transport hands the caller:
// an error event ends the attempt and is not delivered.
func withoutErrors(evs []sse.Event) []sse.Event {
	for i, e := range evs {
		if e.Type == "error" || strings.Contains(string(e.Data), `"error":{`) {
			return evs[:i]
		}
	}
	return evs
}

func TestSimAnthropicResume(t *testing.T) {
	up := startSimUpstream(t)
	tests := []struct {
		name  string
		model string
		fault string
	}{
		{"prefill after a dropped connection", "claude-sonnet-4-5", "drop-midstream;at=23;cut=9"},
		{"prefill after an overloaded error", "claude-sonnet-4-5", "529-midstream;at=7"},
		{"prefill cut at the first token", "claude-haiku-4-5", "drop-midstream;at=1;cut=3"},
		{"no-prefill model learns user-continue", "claude-opus-4-6", "drop-midstream;at=31;cut=40"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			simResumeAnthropic(t, up, tt.model, tt.fault, fmt.Sprintf("Write story %d. [sim:tokens=80]", i))
		})
	}
}

func TestSimAnthropicResumeEveryCut(t *testing.T) {
	up := startSimUpstream(t)
	for _, model := range []string{"claude-sonnet-4-5", "claude-sonnet-4-6"} {
		t.Run(model, func(t *testing.T) {
			strips := 0
			for at := 1; at < 80; at++ {
				fault := fmt.Sprintf("drop-midstream;at=%d;cut=%d;id=%s-%d", at, at%13, model, at)
				if simResumeAnthropic(t, up, model, fault, "Write a long story. [sim:tokens=80]") != "" {
					strips++
				}
			}
			if model == "claude-sonnet-4-5" && strips == 0 {
				t.Error("no cut left the prefill ending in white space: the trim was never exercised")
			}
		})
	}
}

// simResumeAnthropic runs a streaming request that fault interrupts,
// resumes it (learning the form from the simulator's 400s) and checks the
// spliced stream against the simulator's full answer. It returns the
// continuation's Strip.
func simResumeAnthropic(t *testing.T, up *simUpstream, model, fault, prompt string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": model, "max_tokens": 500, "stream": true,
		"messages": []map[string]any{{"role": "user", "content": prompt}},
		"metadata": map[string]any{"user_id": "u-1"},
	})
	full := up.srv.Generator().Text(sim.Conversation{Messages: []sim.Message{{Role: "user", Text: prompt}}})

	status, evs, _ := up.post(t, "/v1/messages", fault, body)
	if status != http.StatusOK {
		t.Fatalf("%s: status %d", fault, status)
	}
	delivered := withoutErrors(evs)
	ms := observeMsg(delivered)
	ms.Interrupt("interrupted")
	if ok, why := Resumable(ms); !ok {
		t.Fatalf("%s: not resumable: %s", fault, why)
	}
	if !strings.HasPrefix(full, ms.Text()) || ms.Text() == full {
		t.Fatalf("%s: the caller got %q, not a strict prefix of the answer", fault, ms.Text())
	}
	produced := int64(ms.DeltaCount())

	policy := NewPrefillPolicy() // knows nothing: must learn
	form := policy.Form(model)
	var cevs []sse.Event
	var c Continuation
	for attempt := 0; ; attempt++ {
		var err error
		c, err = Anthropic(body, ms.Text(), produced, form)
		if err != nil {
			t.Fatal(err)
		}
		var errBody []byte
		status, cevs, errBody = up.post(t, "/v1/messages", "", c.Body)
		if status == http.StatusOK {
			break
		}
		if attempt > 0 || !IsPrefillRejection(status, errBody) {
			t.Fatalf("%s: continuation (%v): status %d: %s", fault, form, status, errBody)
		}
		policy.Learn(model)
		form = policy.Form(model)
	}
	if wantForm := NewPrefillPolicy(DefaultNoPrefillModels...).Form(model); form != wantForm {
		t.Errorf("%s: continued with %v, want %v", fault, form, wantForm)
	}

	sp := NewAnthropicSplicer(OriginFromMessage(ms, c.Strip, produced, -1))
	out := wire(delivered)
	var err error
	for _, e := range cevs {
		if out, err = sp.Splice(out, e); err != nil {
			t.Fatalf("%s: Splice: %v", fault, err)
		}
	}
	final := parseWire(t, out)
	res := observeMsg(final)
	if v := res.End(); v.Status != sse.Complete {
		t.Fatalf("%s: spliced stream %v: %s", fault, v.Status, v.Reason)
	}
	if res.Text() != full {
		t.Errorf("%s: spliced text\n %q\nwant\n %q", fault, res.Text(), full)
	}
	if res.NumBlocks() != 1 || res.ID() != ms.ID() {
		t.Errorf("%s: %d blocks, id %q; want 1 block and id %q", fault, res.NumBlocks(), res.ID(), ms.ID())
	}
	// Output is what every attempt produced: the answer's 80 tokens, plus
	// the white space a trimmed prefill made the model generate again.
	contOut := observeMsg(cevs).OutputTokens()
	if got := res.OutputTokens(); got != produced+contOut || (c.Strip == "" && got != 80) || got < 80 {
		t.Errorf("%s: output tokens %d, want %d + %d (80 unless white space was regenerated)", fault, got, produced, contOut)
	}
	msg, err := sdkMessage(final)
	if err != nil {
		t.Fatalf("%s: anthropic-sdk-go: %v", fault, err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != full || msg.StopReason != "end_turn" {
		t.Errorf("%s: SDK message %+v", fault, msg.Content)
	}
	return c.Strip
}

func TestSimOpenAIResume(t *testing.T) {
	up := startSimUpstream(t)
	for i, fault := range []string{"drop-midstream;at=17;cut=30", "529-midstream;at=40"} {
		t.Run(fault, func(t *testing.T) {
			prompt := fmt.Sprintf("Describe place %d. [sim:tokens=60]", i)
			body, _ := json.Marshal(map[string]any{
				"model": "gpt-4o", "max_completion_tokens": 400, "stream": true,
				"stream_options": map[string]any{"include_usage": true},
				"messages":       []map[string]any{{"role": "user", "content": prompt}},
			})
			full := up.srv.Generator().Text(sim.Conversation{Messages: []sim.Message{{Role: "user", Text: prompt}}})
			status, evs, _ := up.post(t, "/v1/chat/completions", fault, body)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			delivered := withoutErrors(evs)
			cs := observeChat(delivered)
			cs.Interrupt("interrupted")
			if ok, why := ResumableChat(cs); !ok {
				t.Fatalf("not resumable: %s", why)
			}
			produced := int64(cs.DeltaCount())
			c, err := OpenAI(body, cs.Text(), produced, UserContinue)
			if err != nil {
				t.Fatal(err)
			}
			status, cevs, errBody := up.post(t, "/v1/chat/completions", "", c.Body)
			if status != http.StatusOK {
				t.Fatalf("continuation: status %d: %s", status, errBody)
			}
			sp := NewChatSplicer(OriginFromChat(cs, c.Strip, produced, -1))
			out := wire(delivered)
			for _, e := range cevs {
				if out, err = sp.Splice(out, e); err != nil {
					t.Fatalf("Splice: %v", err)
				}
			}
			final := parseWire(t, out)
			res := observeChat(final)
			if v := res.End(); v.Status != sse.Complete {
				t.Fatalf("spliced stream %v: %s", v.Status, v.Reason)
			}
			if res.Text() != full {
				t.Errorf("spliced text\n %q\nwant\n %q", res.Text(), full)
			}
			acc, err := sdkChat(final)
			if err != nil {
				t.Fatalf("openai-go: %v", err)
			}
			if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != full {
				t.Errorf("SDK choices %+v", acc.Choices)
			}
			if acc.Usage.CompletionTokens != 60 {
				t.Errorf("completion tokens %d, want 60", acc.Usage.CompletionTokens)
			}
			contPrompt := observeChat(cevs).Usage().PromptTokens
			if acc.Usage.PromptTokens != contPrompt || acc.Usage.TotalTokens != contPrompt+60 {
				// The interrupted attempt reported no usage (priorInput
				// -1 = what it reported = 0): only the continuation's
				// prompt is known.
				t.Errorf("SDK usage %+v, want prompt %d", acc.Usage, contPrompt)
			}
		})
	}
}
