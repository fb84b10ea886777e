package streamgate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/retry"
	"github.com/streamgate/streamgate/sse"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const reqBody = `{"model":"claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`

func anthropicEvents(text string, complete bool) string {
	var b strings.Builder
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for _, w := range strings.Fields(text) {
		fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", w+" ")
	}
	if complete {
		b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
		fmt.Fprintf(&b, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":%d}}\n\n", len(strings.Fields(text)))
		b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	}
	return b.String()
}

func sseResponse(body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Request-Id", "req_test")
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func errorResponse(status int, retryAfterMS string, body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if retryAfterMS != "" {
		h.Set("Retry-After-Ms", retryAfterMS)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func newRequest(t *testing.T, ctx context.Context) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://upstream.test/v1/messages", strings.NewReader(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", "sk-test")
	return req
}

func fastPolicy() Option {
	return optionFunc(func(c *config) {
		c.policy = retry.Policy{BaseDelay: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
		c.gate = gate.Config{InitialOpenRate: 1000, MinOpenRate: 500, MaxOpenRate: 1000}
	})
}

func TestCompleteStreamEndsWithEOFAndSettles(t *testing.T) {
	var events []EventKind
	var mu sync.Mutex
	tr := NewTransport(WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return sseResponse(anthropicEvents("one two three", true)), nil
	})), WithObserver(func(e Event) { mu.Lock(); events = append(events, e.Kind); mu.Unlock() }))
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("complete stream read error: %v", err)
	}
	if string(b) != anthropicEvents("one two three", true) {
		t.Fatal("bytes changed in transit")
	}
	resp.Body.Close()
	if open := tr.Budget().Open(); open != 0 {
		t.Fatalf("%d reservations left open", open)
	}
	mu.Lock()
	defer mu.Unlock()
	if events[len(events)-1] != EventCompleted {
		t.Fatalf("last event %v, want completed (all: %v)", events[len(events)-1], events)
	}
}

func TestTruncatedStreamIsNeverEOF(t *testing.T) {
	tr := NewTransport(WithResume(false), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return sseResponse(anthropicEvents("one two three", false)), nil
	})))
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	var se *StreamError
	if !errors.As(err, &se) || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("read error = %v, want *StreamError wrapping ErrIncomplete", err)
	}
	if se.Status != sse.Truncated || se.Class != apierr.Network {
		t.Fatalf("StreamError status %v class %v", se.Status, se.Class)
	}
	resp.Body.Close()
	if open := tr.Budget().Open(); open != 0 {
		t.Fatalf("%d reservations left open", open)
	}
}

func TestMidStreamErrorEventIsTyped(t *testing.T) {
	body := anthropicEvents("one two", false) + "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	tr := NewTransport(WithResume(false), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return sseResponse(body), nil
	})))
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, apierr.Overloaded) || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v, want overloaded and incomplete", err)
	}
}

func TestRetriesPreStreamFailuresHonouringRetryAfter(t *testing.T) {
	var calls atomic.Int32
	var times []time.Time
	var mu sync.Mutex
	tr := NewTransport(fastPolicy(), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		switch calls.Add(1) {
		case 1:
			return errorResponse(429, "50", `{"type":"error","error":{"type":"rate_limit_error","message":"rate limited"}}`), nil
		case 2:
			return errorResponse(529, "", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), nil
		case 3:
			// 200 whose first event is an error: retried like a pre-stream failure.
			return sseResponse("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"), nil
		default:
			return sseResponse(anthropicEvents("done", true)), nil
		}
	})))
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 4 {
		t.Fatalf("upstream calls = %d, want 4", calls.Load())
	}
	if gap := times[1].Sub(times[0]); gap < 50*time.Millisecond {
		t.Fatalf("retry after %v, before retry-after-ms 50", gap)
	}
	if open := tr.Budget().Open(); open != 0 {
		t.Fatalf("%d reservations left open", open)
	}
}

func TestNonRetryableErrorPassesThroughOnce(t *testing.T) {
	var calls atomic.Int32
	body := `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: field required"},"request_id":"req_x"}`
	tr := NewTransport(fastPolicy(), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return errorResponse(400, "", body), nil
	})))
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || string(got) != body || calls.Load() != 1 {
		t.Fatalf("status %d body %q calls %d", resp.StatusCode, got, calls.Load())
	}
}

func TestExhaustedRetriesTellSDKNotToRetry(t *testing.T) {
	tr := NewTransport(WithRetryPolicy(retry.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond}), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return errorResponse(500, "", `{"type":"error","error":{"type":"api_error","message":"boom"}}`), nil
	})))
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 500 || resp.Header.Get("X-Should-Retry") != "false" {
		t.Fatalf("status %d x-should-retry %q", resp.StatusCode, resp.Header.Get("X-Should-Retry"))
	}
}

func TestCloseMidStreamSettles(t *testing.T) {
	pr, pw := io.Pipe()
	tr := NewTransport(WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		r := sseResponse("")
		r.Body = pr
		return r, nil
	})))
	go func() {
		io.WriteString(pw, anthropicEvents("a b c", false))
	}()
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if open := tr.Budget().Open(); open != 0 {
		t.Fatalf("%d reservations left open after Close", open)
	}
	if _, err := resp.Body.Read(buf); err == nil || err == io.EOF {
		t.Fatalf("read after close = %v", err)
	}
}

func TestAdmissionErrorWhenWaitExceedsMaxWait(t *testing.T) {
	tr := NewTransport(fastPolicy(), WithMaxAdmissionWait(20*time.Millisecond),
		WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
			return errorResponse(429, "5000", `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`), nil
		})))
	// The first request is rate limited for 5s and gives up (MaxElapsed is
	// not reached, but its retry would wait 5s: use a short context).
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := tr.RoundTrip(newRequest(t, ctx)); err == nil {
		t.Fatal("want error")
	}
	// The key is now cooling down for ~5s: the next request is refused
	// fast with the remaining wait.
	start := time.Now()
	_, err := tr.RoundTrip(newRequest(t, context.Background()))
	var ae *AdmissionError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *AdmissionError", err)
	}
	if ae.RetryAfter < 4*time.Second || ae.RetryAfter > 5*time.Second {
		t.Fatalf("RetryAfter = %v, want the cooldown's remaining ~5s", ae.RetryAfter)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("refusal took %v, want fail-fast", waited)
	}
}

func TestCallerNeverReceivesHalfAnEvent(t *testing.T) {
	whole := anthropicEvents("caf\u00e9 na\u00efve \u65e5\u672c", false)
	cut := whole + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xe6\x97"
	tr := NewTransport(WithResume(false), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		r := sseResponse("")
		r.Body = io.NopCloser(&oneByteReader{s: cut})
		return r, nil
	})))
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	if string(got) != whole {
		t.Fatalf("caller received %d bytes, want exactly the %d bytes of whole events", len(got), len(whole))
	}
}

// oneByteReader returns one byte per Read, the worst case for framing.
type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.s) == 0 {
		return 0, io.EOF
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

// TestToolUseCutIsATypedError: a tool_use block's partial JSON cannot be
// continued, so a cut inside it ends in a *StreamError even with resumption
// on, and no continuation is sent.
func TestToolUseCutIsATypedError(t *testing.T) {
	var calls atomic.Int32
	body := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Par\"}}\n\n"
	tr := NewTransport(fastPolicy(), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return sseResponse(body), nil
	})))
	resp, err := tr.RoundTrip(newRequest(t, context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	var se *StreamError
	if !errors.As(err, &se) || se.Status != sse.Truncated {
		t.Fatalf("err = %v, want a truncated *StreamError", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d upstream requests, want 1 (no continuation of a tool_use block)", calls.Load())
	}
}
