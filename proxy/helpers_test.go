package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/metrics"
	"github.com/streamgate/streamgate/retry"
	"github.com/streamgate/streamgate/sim"
)

func TestMain(m *testing.M) {
	if runClientProcess() {
		return
	}
	goleak.VerifyTestMain(m)
}

// fastSim is a simulator configuration for quick tests: a 6-second
// window, unpaced generation and generous limits unless a test narrows
// them.
func fastSim() sim.Config {
	return sim.Config{
		Window:          6 * time.Second,
		TokensPerSecond: -1,
		Anthropic:       sim.AnthropicLimits{RPM: 1000, ITPM: 1_000_000, OTPM: 1_000_000},
		OpenAI:          sim.OpenAILimits{RPM: 1000, TPM: 1_000_000},
	}
}

// fastGate admits without staggering so tests do not wait on opening
// rates they are not about.
func fastGate() gate.Config {
	return gate.Config{InitialConcurrency: 64, InitialOpenRate: math.Inf(1), MinOpenRate: 1000, MaxOpenRate: math.Inf(1)}
}

// syncBuffer is a goroutine-safe bytes.Buffer for captured logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stack is a simulator and a proxy in front of it, both on loopback
// sockets.
type stack struct {
	sim    *sim.Server
	simURL string
	proxy  *Server
	url    string
	logs   *syncBuffer
}

// startStack starts a simulator with sc and a proxy with pc in front of
// it (pc's upstream URLs default to the simulator). Both stop at the end
// of the test.
func startStack(t testing.TB, sc sim.Config, pc Config) *stack {
	t.Helper()
	s := sim.New(sc)
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); _ = s.Close() })
	if pc.Anthropic.URL == "" {
		pc.Anthropic.URL = ts.URL
	}
	if pc.OpenAI.URL == "" {
		pc.OpenAI.URL = ts.URL
	}
	if pc.Window == 0 && pc.Store == nil {
		pc.Window = s.Config().Window
	}
	st := &stack{sim: s, simURL: ts.URL}
	st.proxy, st.url, st.logs = startProxy(t, pc)
	return st
}

// startProxy starts a proxy for pc on a loopback port with fast test
// defaults; it is shut down at the end of the test.
func startProxy(t testing.TB, pc Config) (*Server, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if pc.Logger == nil {
		pc.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if pc.Gate == (gate.Config{}) {
		pc.Gate = fastGate()
	}
	if pc.DrainTimeout == 0 {
		pc.DrainTimeout = 5 * time.Second
	}
	if pc.Metrics == nil {
		pc.Metrics = metrics.New(metrics.WithoutRuntimeMetrics())
	}
	pc.TransportOptions = append([]streamgate.Option{
		streamgate.WithRetryPolicy(retry.Policy{BaseDelay: time.Millisecond, MaxBackoff: 5 * time.Millisecond}),
		streamgate.WithRetryBudget(0),
	}, pc.TransportOptions...)
	base := http.DefaultTransport.(*http.Transport).Clone()
	if pc.UpstreamTransport == nil {
		pc.UpstreamTransport = base
	}
	p, err := New(pc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		base.CloseIdleConnections()
	})
	return p, "http://" + ln.Addr().String(), logs
}

// testClient returns an HTTP client whose idle connections are closed at
// the end of the test.
func testClient(t testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// conv is the simulator conversation of one user prompt.
func conv(prompt string) sim.Conversation {
	return sim.Conversation{Messages: []sim.Message{{Role: "user", Text: prompt}}}
}

// recorded is one request an upstream received.
type recorded struct {
	Method, Path, Host string
	Header             http.Header
}

// recorder is a fake upstream that records every whole request and answers
// with a small JSON body (a valid non-streaming response).
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	ts   *httptest.Server
}

func newRecorder(t testing.TB) *recorder {
	rec := &recorder{}
	rec.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return // the client aborted the body: no whole request arrived
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.Path, r.Host, r.Header.Clone()})
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","usage":{"input_tokens":1,"output_tokens":1}}`)
	}))
	t.Cleanup(rec.ts.Close)
	return rec
}

func (rec *recorder) requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// Anthropic stream events for fake upstreams.
const (
	evMessageStart = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
	evBlockStart   = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	evDelta        = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello\"}}\n\n"
	evEnd          = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
)

// heldStream is a fake Anthropic upstream whose streams send their first
// events, then wait for release (or for the client to go away) before
// they end.
type heldStream struct {
	url      string
	started  chan struct{} // one value per stream that sent its first events
	release  chan struct{} // closed to let every stream end
	canceled chan struct{} // one value per stream whose client went away
}

func newHeldStream(t testing.TB) *heldStream {
	h := &heldStream{started: make(chan struct{}, 16), release: make(chan struct{}), canceled: make(chan struct{}, 16)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Request-Id", "req_held")
		w.Header().Set("Anthropic-Ratelimit-Requests-Limit", "1000")
		w.Header().Set("Anthropic-Ratelimit-Requests-Remaining", "999")
		_, _ = io.WriteString(w, evMessageStart+evBlockStart+evDelta)
		http.NewResponseController(w).Flush()
		h.started <- struct{}{}
		select {
		case <-h.release:
			_, _ = io.WriteString(w, evDelta+evEnd)
		case <-r.Context().Done():
			h.canceled <- struct{}{}
		}
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
	h.url = ts.URL
	return h
}

// messagesRequest builds a streaming Messages request for the proxy at url.
func messagesRequest(t testing.TB, ctx context.Context, url, key string, stream bool) *http.Request {
	t.Helper()
	body := fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":100,"stream":%v,"messages":[{"role":"user","content":"[sim:tokens=30] hello"}]}`, stream)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	return req
}

// chatRequest builds a Chat Completions request for the proxy at url.
func chatRequest(t testing.TB, ctx context.Context, url, key string, stream bool) *http.Request {
	t.Helper()
	body := fmt.Sprintf(`{"model":"gpt-4o","max_tokens":100,"stream":%v,"messages":[{"role":"user","content":"[sim:tokens=30] hello"}]}`, stream)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// readEvent reads one SSE event (up to its blank line) from br.
func readEvent(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return b.String(), nil
		}
	}
}
