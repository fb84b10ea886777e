package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/sim"
)

type anthropicErrorBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

type openAIErrorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestAdmissionRejectionIsTheProxys429 exhausts a 2-request budget: the
// third request is answered by the proxy itself, in the provider's
// format, with a retry-after that matches the budget's refill, and never
// reaches the upstream.
func TestAdmissionRejectionIsTheProxys429(t *testing.T) {
	sc := fastSim()
	sc.Anthropic.RPM, sc.OpenAI.RPM = 2, 2
	st := startStack(t, sc, Config{
		MaxAdmissionWait: 50 * time.Millisecond,
		Limits: []Limit{
			{API: APIAnthropic, ModelClass: "claude-sonnet-4", Limits: streamgate.Limits{Requests: 2}},
			{API: APIOpenAI, ModelClass: "gpt-4o", Limits: streamgate.Limits{Requests: 2}},
		},
	})
	ctx := context.Background()
	refill := sc.Window / 2 // one request per window/RPM
	for _, api := range []API{APIAnthropic, APIOpenAI} {
		t.Run(string(api), func(t *testing.T) {
			build := messagesRequest
			if api == APIOpenAI {
				build = chatRequest
			}
			for i := range 2 {
				resp, b := do(t, build(t, ctx, st.url, "sk-admission", false))
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
				}
			}
			start := time.Now()
			resp, b := do(t, build(t, ctx, st.url, "sk-admission", false))
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(HeaderError) != "admission" {
				t.Fatalf("third request: %d %s %q", resp.StatusCode, resp.Header.Get(HeaderError), b)
			}
			ms, err := strconv.ParseInt(resp.Header.Get("Retry-After-Ms"), 10, 64)
			if err != nil {
				t.Fatalf("retry-after-ms %q", resp.Header.Get("Retry-After-Ms"))
			}
			wait := time.Duration(ms) * time.Millisecond
			if wait <= 0 || wait > refill+50*time.Millisecond {
				t.Fatalf("retry-after %s, want within the refill time of one request (%s)", wait, refill)
			}
			if sec, _ := strconv.Atoi(resp.Header.Get("Retry-After")); time.Duration(sec)*time.Second < wait {
				t.Fatalf("retry-after %ds is earlier than retry-after-ms %dms", sec, ms)
			}
			if resp.Header.Get("X-Should-Retry") != "true" {
				t.Fatalf("x-should-retry %q", resp.Header.Get("X-Should-Retry"))
			}
			if api == APIAnthropic {
				var e anthropicErrorBody
				if err := json.Unmarshal(b, &e); err != nil || e.Type != "error" || e.Error.Type != "rate_limit_error" ||
					!strings.HasPrefix(e.Error.Message, "streamgate proxy:") || e.RequestID != resp.Header.Get(HeaderRequestID) {
					t.Fatalf("body %s", b)
				}
			} else {
				var e openAIErrorBody
				if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == nil || *e.Error.Code != "rate_limit_exceeded" ||
					!strings.HasPrefix(e.Error.Message, "streamgate proxy:") {
					t.Fatalf("body %s", b)
				}
			}
			// The wait was bounded by the configured maximum, not the refill.
			if elapsed := time.Since(start); elapsed >= refill {
				t.Fatalf("rejection took %s", elapsed)
			}
		})
	}
	if err := st.sim.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, rec := range st.sim.Log() {
		if rec.Status != 200 {
			t.Errorf("the simulator answered %d: a rejected request reached it", rec.Status)
		}
	}
	if n := len(st.sim.Log()); n != 4 {
		t.Fatalf("simulator saw %d requests, want 4", n)
	}
}

func TestQueueFullIsA429(t *testing.T) {
	up := newHeldStream(t)
	p, proxyURL, _ := startProxy(t, Config{
		Anthropic: Upstream{URL: up.url},
		Gate:      gate.Config{MaxQueue: 1, InitialConcurrency: 1, MaxConcurrency: 1, InitialOpenRate: 1000},
	})
	ctx := context.Background()
	first, err := testClient(t).Do(messagesRequest(t, ctx, proxyURL, "sk-queue", true))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	<-up.started
	// The second waits in the queue (its one slot) until the first ends.
	second := make(chan int, 1)
	go func() {
		resp, err := testClient(t).Do(messagesRequest(t, ctx, proxyURL, "sk-queue", true))
		if err != nil {
			second <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		second <- resp.StatusCode
	}()
	waitQueued(t, p, 1)
	resp, b := do(t, messagesRequest(t, ctx, proxyURL, "sk-queue", true))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(HeaderError) != "admission" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	close(up.release)
	if _, err := io.Copy(io.Discard, first.Body); err != nil {
		t.Fatal(err)
	}
	if code := <-second; code != 200 {
		t.Fatalf("queued request got %d", code)
	}
}

// waitQueued blocks until n requests wait in some key's queue. The gate
// reports its queue, there is no event to wait on; the loop is bounded.
func waitQueued(t *testing.T, p *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, st := range p.Transport().Keys() {
			if st.Queued[gate.Interactive] >= n {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no request queued")
}

// TestUpstreamErrorsPassThrough checks that errors the scheduler does not
// retry reach the client with the provider's status, headers and body.
func TestUpstreamErrorsPassThrough(t *testing.T) {
	sc := fastSim()
	sc.ValidKeys = []string{"sk-valid"}
	st := startStack(t, sc, Config{})
	ctx := context.Background()
	tests := []struct {
		name   string
		req    *http.Request
		status int
		typ    string
	}{
		{"invalid key", messagesRequest(t, ctx, st.url, "sk-invalid", false), 401, "authentication_error"},
		{"context length", withHeader(messagesRequest(t, ctx, st.url, "sk-valid", true), sim.FaultHeader, "context-length"), 400, "invalid_request_error"},
		{"spend cap", withHeader(messagesRequest(t, ctx, st.url, "sk-valid", true), sim.FaultHeader, "spend-cap"), 429, "rate_limit_error"},
		{"openai invalid key", chatRequest(t, ctx, st.url, "sk-invalid", false), 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if resp.Header.Get(HeaderError) != "" {
				t.Fatalf("the proxy marked an upstream error as its own")
			}
			if resp.Header.Get("Request-Id") == "" && resp.Header.Get("X-Request-Id") == "" {
				t.Fatalf("upstream request id header lost: %v", resp.Header)
			}
			if tt.typ != "" {
				var e anthropicErrorBody
				if err := json.Unmarshal(b, &e); err != nil || e.Error.Type != tt.typ || strings.Contains(e.Error.Message, "streamgate") {
					t.Fatalf("body %s", b)
				}
			} else {
				var e openAIErrorBody
				if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
					t.Fatalf("body %s", b)
				}
			}
		})
	}
}

func withHeader(r *http.Request, k, v string) *http.Request {
	r.Header.Set(k, v)
	return r
}

// TestClientDisconnectCancelsUpstream closes the client's connection in
// the middle of a stream: the upstream request is cancelled and its
// budget reservation and admission slot are released.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	up := newHeldStream(t)
	cancelled := make(chan struct{}, 1)
	p, proxyURL, _ := startProxy(t, Config{
		Anthropic: Upstream{URL: up.url},
		TransportOptions: []streamgate.Option{streamgate.WithObserver(func(e streamgate.Event) {
			if e.Kind == streamgate.EventCancelled {
				cancelled <- struct{}{}
			}
		})},
	})
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := testClient(t).Do(messagesRequest(t, ctx, proxyURL, "sk-disconnect", true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readEvent(bufio.NewReader(resp.Body)); err != nil {
		t.Fatal(err)
	}
	if p.Transport().Budget().Open() != 1 {
		t.Fatalf("%d open reservations during the stream", p.Transport().Budget().Open())
	}
	cancel()
	resp.Body.Close()
	<-up.canceled // the upstream saw its request cancelled
	<-cancelled   // the scheduler ended the stream as cancelled
	if n := p.Transport().Budget().Open(); n != 0 {
		t.Fatalf("%d reservations left open", n)
	}
	for k, st := range p.Transport().Keys() {
		if st.InFlight != 0 {
			t.Fatalf("%v: %d in flight", k, st.InFlight)
		}
	}
}

// TestShutdownDrainsStreams starts a stream, begins a shutdown, and lets
// the stream end: it completes intact, Shutdown returns nil, and the proxy
// reports not ready and accepts no new connection.
func TestShutdownDrainsStreams(t *testing.T) {
	up := newHeldStream(t)
	p, proxyURL, _ := startProxy(t, Config{Anthropic: Upstream{URL: up.url}})
	client := testClient(t)
	resp, err := client.Do(messagesRequest(t, context.Background(), proxyURL, "sk-drain", true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-up.started
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a stream in flight", err)
	default:
	}
	close(up.release)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("drained stream ended with %v", err)
	}
	if !strings.HasSuffix(string(b), evEnd) {
		t.Fatalf("drained stream incomplete: %q", b)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", PathReadyz, nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz %d after shutdown", rec.Code)
	}
	if _, err := client.Get(proxyURL + PathHealthz); err == nil {
		t.Fatal("the proxy still accepts connections after shutdown")
	}
}

// TestShutdownDeadlineAbortsStreams: a stream still running at the drain
// deadline is aborted, and the client sees an error, not a clean end.
func TestShutdownDeadlineAbortsStreams(t *testing.T) {
	up := newHeldStream(t)
	p, proxyURL, _ := startProxy(t, Config{Anthropic: Upstream{URL: up.url}})
	resp, err := testClient(t).Do(messagesRequest(t, context.Background(), proxyURL, "sk-deadline", true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-up.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("aborted stream ended cleanly")
	}
}

func TestRequestSizeLimits(t *testing.T) {
	anth := newRecorder(t)
	_, proxyURL, _ := startProxy(t, Config{Anthropic: Upstream{URL: anth.ts.URL}, MaxRequestBytes: 1024, MaxHeaderBytes: 4096})
	big := `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"` + strings.Repeat("x", 2048) + `"}]}`
	t.Run("body with length", func(t *testing.T) {
		req, _ := http.NewRequest("POST", proxyURL+"/v1/messages", strings.NewReader(big))
		req.Header.Set("X-Api-Key", "k")
		resp, b := do(t, req)
		var e anthropicErrorBody
		if resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(b, &e) != nil || e.Error.Type != "request_too_large" {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("chunked body", func(t *testing.T) {
		req, _ := http.NewRequest("POST", proxyURL+"/v1/messages", io.MultiReader(strings.NewReader(big)))
		req.Header.Set("X-Api-Key", "k")
		resp, b := do(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("pass-through chunked body", func(t *testing.T) {
		req, _ := http.NewRequest("POST", proxyURL+"/v1/files", io.MultiReader(strings.NewReader(big)))
		req.Header.Set("X-Api-Key", "k")
		resp, b := do(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("headers", func(t *testing.T) {
		req, _ := http.NewRequest("GET", proxyURL+"/v1/models", nil)
		req.Header.Set("X-Api-Key", "k")
		req.Header.Set("X-Big", strings.Repeat("y", 8192))
		resp, _ := do(t, req)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	if n := len(anth.requests()); n != 0 {
		t.Fatalf("%d oversized requests reached the upstream", n)
	}
}

// TestInterruptedStreamIsAborted cuts a stream after its first events with
// resuming off: the proxy cannot take back what it sent, so it breaks the
// connection; the client sees an error, never a clean end of a shorter
// stream.
func TestInterruptedStreamIsAborted(t *testing.T) {
	st := startStack(t, fastSim(), Config{StreamIdleTimeout: 300 * time.Millisecond})
	for _, fault := range []string{"drop-midstream;at=10;cut=4", "529-midstream;at=10", "no-terminal", "stall-midstream;at=10"} {
		t.Run(fault, func(t *testing.T) {
			req := messagesRequest(t, context.Background(), st.url, "sk-abort", true)
			req.Header.Set(sim.FaultHeader, fault+";id=abort-"+fault)
			req.Header.Set(streamgate.HeaderResume, "off")
			resp, err := testClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("interrupted stream ended cleanly after %d bytes", len(b))
			}
			if strings.Contains(string(b), "message_stop") {
				t.Fatal("an interrupted stream carried message_stop")
			}
			if !strings.Contains(string(b), "content_block_delta") {
				t.Fatalf("the stream was cut before it started: %q", b)
			}
		})
	}
}
