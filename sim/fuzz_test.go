package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRequestParsers checks that the request validators never panic and
// that whatever they accept satisfies the invariants the server relies on.
func FuzzRequestParsers(f *testing.F) {
	for _, s := range []string{
		msgBody("m", "hi", 5, true),
		`{"model":"m","max_tokens":3,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{}}]},{"role":"assistant","content":"b"}]}`,
		`{"model":"m+fault=529;at=1","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"t","input_schema":{}}]}`,
		chatBody("gpt", "hi", 3, true, true),
		`{"model":"gpt","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"x"}]},{"role":"assistant","content":null}]}`,
		`{"model":`, `[]`, `null`, `{"messages":"x"}`,
	} {
		f.Add([]byte(s))
	}
	cfg := fastConfig().withDefaults()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, countOnly := range []bool{false, true} {
			r, e := parseAnthropic(body, countOnly, &cfg)
			checkParsed(t, r, e)
			if r != nil && len(r.conv.Messages) == 0 {
				t.Fatal("accepted a Messages request without messages")
			}
			if r != nil && !countOnly && r.maxTokens < 1 {
				t.Fatalf("accepted max_tokens %d", r.maxTokens)
			}
		}
		r, e := parseOpenAI(body, &cfg)
		checkParsed(t, r, e)
	})
}

func checkParsed(t *testing.T, r *request, e *apiError) {
	t.Helper()
	if (r == nil) == (e == nil) {
		t.Fatalf("request %v and error %v", r, e)
	}
	if e != nil {
		if e.status < 400 || e.message == "" || e.typ == "" {
			t.Fatalf("bad error %+v", e)
		}
		return
	}
	if r.input < 0 || r.maxTokens < 0 {
		t.Fatalf("bad request %+v", r)
	}
	for i := 1; i < len(r.breakpoints); i++ {
		if r.breakpoints[i].tokens < r.breakpoints[i-1].tokens {
			t.Fatal("breakpoints out of order")
		}
	}
}

// FuzzServe sends arbitrary bodies and fault headers through the whole
// handler: it must never panic (other than the deliberate connection abort),
// and every response is a valid error body or a stream of valid events.
func FuzzServe(f *testing.F) {
	f.Add("/v1/messages", msgBody("m", "[sim:tokens=5] hi", 3, true), "")
	f.Add("/v1/messages", msgBody("m", "hi", 50, false), "529-midstream;at=2")
	f.Add("/v1/chat/completions", chatBody("gpt", "hi", 4, true, true), "drop-midstream;at=1;cut=3")
	f.Add("/v1/messages/count_tokens", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, "")
	f.Add("/v1/messages", msgBody("m", "x", 5, true), "stall-midstream")
	cfg := fastConfig()
	cfg.MaxHold = time.Millisecond
	cfg.Anthropic.OTPM = 50
	s := New(cfg)
	f.Cleanup(func() { _ = s.Close() })
	f.Fuzz(func(t *testing.T, path, body, fault string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		r := httptest.NewRequest(http.MethodPost, "http://sim"+"/", strings.NewReader(body))
		r.URL.Path = path
		r.Header.Set("x-api-key", "k")
		r.Header.Set("anthropic-version", "2023-06-01")
		r.Header.Set("Authorization", "Bearer k")
		if fault != "" {
			r.Header["X-Sim-Fault"] = []string{fault}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		w := httptest.NewRecorder()
		func() {
			defer func() {
				if p := recover(); p != nil {
					if err, ok := p.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
						panic(p)
					}
				}
			}()
			s.ServeHTTP(w, r.WithContext(ctx))
		}()
		if w.Code >= 400 && !json.Valid(w.Body.Bytes()) && w.Body.Len() > 0 && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("error %d with invalid JSON body %q", w.Code, w.Body)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
			for _, e := range parseSSE(t, w.Body.Bytes()) {
				if e.data != "[DONE]" && !json.Valid([]byte(e.data)) && !strings.Contains(fault, FaultMalformedEvent) && !strings.Contains(body, FaultMalformedEvent) {
					t.Fatalf("invalid event data %q", e.data)
				}
			}
		}
	})
}
