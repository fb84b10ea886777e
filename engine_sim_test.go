package streamgate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/retry"
	"github.com/streamgate/streamgate/sim"
	"github.com/streamgate/streamgate/sse"
)

// simUpstream starts a simulator on a real socket and returns it with its
// URL.
func simUpstream(t *testing.T, cfg sim.Config) (*sim.Server, string) {
	t.Helper()
	s := sim.New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })
	return s, ts.URL
}

type result struct {
	text   string
	err    error
	status int
}

// stream sends one streaming Messages request through client and reads the
// whole body, returning the text the caller received and the read error.
func stream(ctx context.Context, client *http.Client, url, key, prompt string, maxTokens int, hdr map[string]string) result {
	body := fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":%d,"stream":true,"messages":[{"role":"user","content":%q}]}`, maxTokens, prompt)
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/messages", strings.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return result{status: resp.StatusCode, text: string(b)}
	}
	var ms sse.MessageStream
	rd := sse.NewReader(resp.Body)
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return result{status: 200, text: ms.Text(), err: err}
		}
		ms.Observe(ev)
	}
	if v := ms.End(); v.Status != sse.Complete {
		return result{status: 200, text: ms.Text(), err: fmt.Errorf("stream %v but body ended with io.EOF: a truncated success", v.Status)}
	}
	return result{status: 200, text: ms.Text()}
}

func conv(prompt string) sim.Conversation {
	return sim.Conversation{Messages: []sim.Message{{Role: "user", Text: prompt}}}
}

// TestBacklogAgainstSimulator is the engine's acceptance test: a backlog far
// above the budget completes, every answer whole, with no retry before its
// retry-after, at most a handful of 429s, no mid-stream rate-limit errors,
// and a balanced reservation ledger.
func TestBacklogAgainstSimulator(t *testing.T) {
	const window = 3 * time.Second
	s, url := simUpstream(t, sim.Config{
		Anthropic:       sim.AnthropicLimits{RPM: 60, ITPM: 100_000, OTPM: 6_000},
		Window:          window,
		TokensPerSecond: 1_000,
		NoPrefillModels: []string{},
	})
	var mu sync.Mutex
	var retries []streamgate.Event
	tr := streamgate.NewTransport(streamgate.WithWindow(window), streamgate.WithObserver(func(e streamgate.Event) {
		if e.Kind == streamgate.EventRetry {
			mu.Lock()
			retries = append(retries, e)
			mu.Unlock()
		}
	}))
	defer tr.Close()
	client := &http.Client{Transport: tr}

	const n = 40
	results := make([]result, n)
	prompts := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		prompts[i] = fmt.Sprintf("[sim:tokens=%d] request %d", 150+(i*37)%250, i)
		wg.Go(func() {
			results[i] = stream(context.Background(), client, url, "sk-backlog", prompts[i], 400, nil)
		})
	}
	wg.Wait()

	g := s.Generator()
	for i, r := range results {
		if r.err != nil || r.status != 200 {
			t.Fatalf("request %d: status %d err %v", i, r.status, r.err)
		}
		if want := g.Text(conv(prompts[i])); r.text != want {
			t.Fatalf("request %d: text is not the complete answer (%d of %d bytes)", i, len(r.text), len(want))
		}
	}
	var rejected, midstream int
	for _, rec := range s.Log() {
		if rec.Status == 429 {
			rejected++
		}
		if rec.End == sim.EndRateLimitedMidstream {
			midstream++
		}
	}
	if rejected > 3 {
		t.Errorf("%d requests got 429 from the upstream, want at most a handful", rejected)
	}
	if midstream != 0 {
		t.Errorf("%d streams were cut by the output rate limit mid-stream", midstream)
	}
	mu.Lock()
	for _, e := range retries {
		var ae *apierr.Error
		if errors.As(e.Err, &ae) && ae.RetryAfter > 0 && e.Delay < ae.RetryAfter {
			t.Errorf("retry after %v, before retry-after %v", e.Delay, ae.RetryAfter)
		}
	}
	mu.Unlock()
	if open := tr.Budget().Open(); open != 0 {
		t.Errorf("%d reservations still open", open)
	}
}

func fastRetries() streamgate.Option {
	return streamgate.WithRetryPolicy(retry.Policy{BaseDelay: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
}

// TestOverloadStormEndsInSuccessWithoutRetryStorm: every request meets two
// 529s before it is served; all succeed with exactly three attempts each.
func TestOverloadStormEndsInSuccessWithoutRetryStorm(t *testing.T) {
	s, url := simUpstream(t, sim.Config{Window: 3 * time.Second, TokensPerSecond: 5_000})
	tr := streamgate.NewTransport(fastRetries(), streamgate.WithWindow(3*time.Second))
	defer tr.Close()
	client := &http.Client{Transport: tr}
	const n = 12
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Go(func() {
			results[i] = stream(context.Background(), client, url, "sk-storm", fmt.Sprintf("[sim:tokens=40] storm %d", i), 100,
				map[string]string{sim.FaultHeader: fmt.Sprintf("529;times=2;id=storm-%d", i)})
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil || r.status != 200 {
			t.Fatalf("request %d: status %d err %v", i, r.status, r.err)
		}
	}
	var overloaded, served int
	for _, rec := range s.Log() {
		switch rec.Status {
		case 529:
			overloaded++
		case 200:
			served++
		}
	}
	if overloaded != 2*n || served != n {
		t.Fatalf("upstream saw %d 529s and %d successes, want %d and %d (no extra attempts)", overloaded, served, 2*n, n)
	}
}

// TestMidStreamOverloadIsATypedError: with resumption off, a stream cut by
// an overloaded error event after the caller received bytes ends with a
// *StreamError, never io.EOF.
func TestMidStreamOverloadIsATypedError(t *testing.T) {
	_, url := simUpstream(t, sim.Config{Window: 3 * time.Second, TokensPerSecond: 5_000})
	tr := streamgate.NewTransport(fastRetries(), streamgate.WithWindow(3*time.Second))
	defer tr.Close()
	client := &http.Client{Transport: tr}
	r := stream(context.Background(), client, url, "sk-mid", "[sim:tokens=80] cut me", 200,
		map[string]string{sim.FaultHeader: "529-midstream;at=30", streamgate.HeaderResume: "off"})
	var se *streamgate.StreamError
	if !errors.As(r.err, &se) || !errors.Is(r.err, apierr.Overloaded) || !errors.Is(r.err, streamgate.ErrIncomplete) {
		t.Fatalf("err = %v, want a *StreamError of class overloaded", r.err)
	}
	if r.text == "" {
		t.Fatal("caller received no text before the cut")
	}
}

// TestNonRetryableErrorPassesThroughOnce: a 400 reaches the caller with the
// provider's body, after exactly one upstream attempt.
func TestNonRetryableErrorPassesThroughOnceFromSimulator(t *testing.T) {
	s, url := simUpstream(t, sim.Config{Window: 3 * time.Second, TokensPerSecond: 5_000})
	tr := streamgate.NewTransport(fastRetries(), streamgate.WithWindow(3*time.Second))
	defer tr.Close()
	client := &http.Client{Transport: tr}
	r := stream(context.Background(), client, url, "sk-400", "too long", 100, map[string]string{sim.FaultHeader: "context-length"})
	if r.status != 400 {
		t.Fatalf("status %d, want 400", r.status)
	}
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.text), &body); err != nil || body.Error.Type != "invalid_request_error" || !strings.Contains(body.Error.Message, "prompt is too long") {
		t.Fatalf("body %q (%v)", r.text, err)
	}
	if got := len(s.Log()); got != 1 {
		t.Fatalf("upstream saw %d attempts, want 1", got)
	}
}

// TestClientCancelRefundsReservations: callers that give up, queued or
// mid-stream, leave nothing reserved.
func TestClientCancelRefundsReservations(t *testing.T) {
	_, url := simUpstream(t, sim.Config{Window: 3 * time.Second, TokensPerSecond: 200})
	firstByte := make(chan struct{}, 16)
	tr := streamgate.NewTransport(streamgate.WithWindow(3*time.Second), streamgate.WithObserver(func(e streamgate.Event) {
		if e.Kind == streamgate.EventFirstByte {
			select {
			case firstByte <- struct{}{}:
			default:
			}
		}
	}))
	defer tr.Close()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			stream(ctx, client, url, "sk-cancel", fmt.Sprintf("[sim:tokens=300] slow %d", i), 400, nil)
		})
	}
	// Once a stream is delivering (others are queued or starting), give up
	// on everything.
	<-firstByte
	cancel()
	wg.Wait()
	if open := tr.Budget().Open(); open != 0 {
		t.Fatalf("%d reservations still open after every caller gave up", open)
	}
}
