package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fastConfig is a Config for quick tests: a 6-second window, fast unpaced
// generation, generous limits unless a test narrows them.
func fastConfig() Config {
	return Config{
		Window:          6 * time.Second,
		TokensPerSecond: -1,
		Anthropic:       AnthropicLimits{RPM: 1000, ITPM: 1_000_000, OTPM: 1_000_000},
		OpenAI:          OpenAILimits{RPM: 1000, TPM: 1_000_000},
	}
}

// startSim starts a Server on an httptest server; both are closed at the
// end of the test (the simulator first, so held connections are released).
func startSim(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = s.Close() })
	return s, ts
}

// fakeClock is a manually advanced Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// msgBody builds a /v1/messages body with one user message.
func msgBody(model, prompt string, maxTokens int, stream bool) string {
	b, _ := json.Marshal(map[string]any{
		"model":      model,
		"max_tokens": maxTokens,
		"stream":     stream,
		"messages":   []map[string]any{{"role": "user", "content": prompt}},
	})
	return string(b)
}

// chatBody builds a /v1/chat/completions body with one user message.
func chatBody(model, prompt string, maxTokens int, stream, includeUsage bool) string {
	m := map[string]any{
		"model":    model,
		"messages": []map[string]any{{"role": "user", "content": prompt}},
	}
	if maxTokens > 0 {
		m["max_tokens"] = maxTokens
	}
	if stream {
		m["stream"] = true
		if includeUsage {
			m["stream_options"] = map[string]any{"include_usage": true}
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// anthropicReq builds an authenticated /v1/messages request.
func anthropicReq(path, key, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("X-Api-Key", key)
	r.Header.Set("Anthropic-Version", "2023-06-01")
	r.Header.Set("Content-Type", "application/json")
	return r
}

// openAIReq builds an authenticated /v1/chat/completions request.
func openAIReq(key, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+key)
	r.Header.Set("Content-Type", "application/json")
	return r
}

// serve runs one request in-process and returns the recorded response.
func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// post sends a request to a live test server.
func post(t testing.TB, url, path string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func anthropicHeaders(key string) map[string]string {
	return map[string]string{"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"}
}

func openAIHeaders(key string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + key, "content-type": "application/json"}
}

// event is one server-sent event.
type event struct {
	name string
	data string
}

// parseSSE splits a stream body into events (no dependence on the
// production SSE reader, which is tested elsewhere).
func parseSSE(t testing.TB, body []byte) []event {
	t.Helper()
	var evs []event
	var cur event
	var data []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" || len(data) > 0 {
				cur.data = strings.Join(data, "\n")
				evs = append(evs, cur)
			}
			cur, data = event{}, nil
		case strings.HasPrefix(line, "event: "):
			cur.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		}
	}
	if cur.name != "" || len(data) > 0 {
		cur.data = strings.Join(data, "\n")
		evs = append(evs, cur)
	}
	return evs
}

// anthropicText concatenates the text deltas of a Messages stream and
// reports whether message_stop arrived.
func anthropicText(t testing.TB, evs []event) (string, bool) {
	t.Helper()
	var sb strings.Builder
	stop := false
	for _, e := range evs {
		switch e.name {
		case "content_block_delta":
			var d struct {
				Delta struct {
					Text string `json:"text"`
				} `json:"delta"`
			}
			if err := json.Unmarshal([]byte(e.data), &d); err != nil {
				t.Fatalf("bad delta %q: %v", e.data, err)
			}
			sb.WriteString(d.Delta.Text)
		case "message_stop":
			stop = true
		}
	}
	return sb.String(), stop
}

// openAIText concatenates the content deltas of a chat stream and reports
// whether [DONE] arrived.
func openAIText(t testing.TB, evs []event) (string, bool) {
	t.Helper()
	var sb strings.Builder
	done := false
	for _, e := range evs {
		if e.data == "[DONE]" {
			done = true
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(e.data), &c); err != nil {
			continue
		}
		for _, ch := range c.Choices {
			sb.WriteString(ch.Delta.Content)
		}
	}
	return sb.String(), done
}

// errBody decodes an Anthropic error body.
type anthropicErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Details *struct {
			ErrorCode string `json:"error_code"`
		} `json:"details"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

type openAIErr struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// timedWriter records what each flush sent and when (under synctest the
// times are exact).
type timedWriter struct {
	*httptest.ResponseRecorder
	start   time.Time
	pending []byte
	writes  []timedWrite
}

type timedWrite struct {
	at   time.Duration
	data string
}

func (w *timedWriter) Write(b []byte) (int, error) {
	w.pending = append(w.pending, b...)
	return w.ResponseRecorder.Write(b)
}

func (w *timedWriter) Flush() {
	w.writes = append(w.writes, timedWrite{at: time.Since(w.start), data: string(w.pending)})
	w.pending = nil
	w.ResponseRecorder.Flush()
}
