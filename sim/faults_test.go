package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// outcome is what a client saw of one request.
type outcome struct {
	status  int
	header  http.Header
	body    []byte
	doErr   error // no response at all
	readErr error // the body broke off
}

func do(t *testing.T, url, path string, hdr map[string]string, body string) outcome {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return outcome{doErr: err}
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return outcome{status: resp.StatusCode, header: resp.Header, body: b, readErr: rerr}
}

func deltas(evs []event) int {
	n := 0
	for _, e := range evs {
		if e.name == "content_block_delta" && json.Valid([]byte(e.data)) {
			n++
		}
	}
	return n
}

func TestFaultsByHeaderAndModel(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxHold = 100 * time.Millisecond
	s, ts := startSim(t, cfg)
	const prompt = "[sim:tokens=10] faults"
	full := s.Generator().Text(conv(prompt))
	tests := []struct {
		spec  string
		check func(t *testing.T, o outcome)
	}{
		{"429", func(t *testing.T, o outcome) {
			e := decode[anthropicErr](t, o.body)
			if o.status != 429 || o.header.Get("retry-after") != "1" || e.Error.Type != "rate_limit_error" {
				t.Fatalf("%d %v %s", o.status, o.header, o.body)
			}
		}},
		{"429;retry=7", func(t *testing.T, o outcome) {
			if o.status != 429 || o.header.Get("retry-after") != "7" {
				t.Fatalf("%d retry-after %q", o.status, o.header.Get("retry-after"))
			}
		}},
		{"529", func(t *testing.T, o outcome) {
			e := decode[anthropicErr](t, o.body)
			if o.status != 529 || e.Error.Type != "overloaded_error" || e.Error.Message != "Overloaded" {
				t.Fatalf("%d %s", o.status, o.body)
			}
		}},
		{"500", statusType(500, "api_error")},
		{"502", statusType(502, "api_error")},
		{"503", statusType(503, "api_error")},
		{"context-length", func(t *testing.T, o outcome) {
			e := decode[anthropicErr](t, o.body)
			if o.status != 400 || !strings.HasPrefix(e.Error.Message, "prompt is too long: ") || !strings.HasSuffix(e.Error.Message, " tokens > 200000 maximum") {
				t.Fatalf("%d %s", o.status, o.body)
			}
		}},
		{"content-filter", func(t *testing.T, o outcome) {
			e := decode[anthropicErr](t, o.body)
			if o.status != 400 || e.Error.Type != "invalid_request_error" || e.Error.Message != "Output blocked by content filtering policy" {
				t.Fatalf("%d %s", o.status, o.body)
			}
		}},
		{"spend-cap", func(t *testing.T, o outcome) {
			e := decode[anthropicErr](t, o.body)
			if o.status != 429 || o.header.Get("retry-after") != "" || e.Error.Type != "rate_limit_error" || e.Error.Details == nil || e.Error.Details.ErrorCode != "enforced_spend_limit_reached" {
				t.Fatalf("%d %v %s", o.status, o.header, o.body)
			}
		}},
		{"reset", func(t *testing.T, o outcome) {
			if !errors.Is(o.doErr, syscall.ECONNRESET) {
				t.Fatalf("got %v (status %d), want a connection reset", o.doErr, o.status)
			}
		}},
		{"no-response", func(t *testing.T, o outcome) {
			if o.doErr == nil {
				t.Fatalf("got a response (%d)", o.status)
			}
		}},
		{"529-midstream;at=3", func(t *testing.T, o outcome) {
			evs := parseSSE(t, o.body)
			last := evs[len(evs)-1]
			if o.status != 200 || deltas(evs) != 3 || last.name != "error" || !strings.Contains(last.data, `"type":"overloaded_error"`) {
				t.Fatalf("%d %d deltas, last %v", o.status, deltas(evs), last)
			}
		}},
		{"drop-midstream;at=4;cut=20", func(t *testing.T, o outcome) {
			if o.status != 200 || !errors.Is(o.readErr, io.ErrUnexpectedEOF) {
				t.Fatalf("status %d, read error %v: want a body cut short", o.status, o.readErr)
			}
			evs := parseSSE(t, o.body)
			text, complete := anthropicText(t, evs[:len(evs)-1])
			if complete || deltas(evs) != 4 || !strings.HasPrefix(full, text) {
				t.Fatalf("%d deltas, text %q", deltas(evs), text)
			}
			if tail := string(o.body[strings.LastIndex(string(o.body), "\n\n")+2:]); tail != "event: content_block" {
				t.Fatalf("body does not end 20 bytes into the next event: tail %q", tail)
			}
		}},
		{"stall-midstream;at=2", func(t *testing.T, o outcome) {
			evs := parseSSE(t, o.body)
			if o.status != 200 || deltas(evs) != 2 || evs[len(evs)-1].name != "content_block_delta" {
				t.Fatalf("%d %d deltas", o.status, deltas(evs))
			}
		}},
		{"malformed-event;at=2", func(t *testing.T, o outcome) {
			evs := parseSSE(t, o.body)
			bad := 0
			for _, e := range evs {
				if !json.Valid([]byte(e.data)) {
					bad++
				}
			}
			var good []event
			for _, e := range evs {
				if json.Valid([]byte(e.data)) {
					good = append(good, e)
				}
			}
			text, complete := anthropicText(t, good)
			if bad != 1 || !complete || text != full {
				t.Fatalf("%d malformed events, complete %v, text %q", bad, complete, text)
			}
		}},
		{"no-terminal", func(t *testing.T, o outcome) {
			evs := parseSSE(t, o.body)
			text, complete := anthropicText(t, evs)
			if o.readErr != nil || complete || text != full || evs[len(evs)-1].name != "message_delta" {
				t.Fatalf("read error %v, complete %v, last %v", o.readErr, complete, evs[len(evs)-1].name)
			}
		}},
	}
	for _, via := range []string{"header", "model"} {
		for _, tt := range tests {
			t.Run(via+"/"+tt.spec, func(t *testing.T) {
				s.Reset()
				hdr := anthropicHeaders("k")
				model := "claude-sonnet-4-5"
				if via == "header" {
					hdr["x-sim-fault"] = tt.spec
				} else {
					model += "+fault=" + tt.spec
				}
				tt.check(t, do(t, ts.URL, "/v1/messages", hdr, msgBody(model, prompt, 100, true)))
				if err := s.WaitIdle(context.Background()); err != nil {
					t.Fatal(err)
				}
				name, _, _ := strings.Cut(tt.spec, ";")
				log := s.Log()
				if len(log) != 1 || log[0].End != FaultEnd(name) && name != FaultMalformedEvent || !strings.HasPrefix(log[0].Fault, name) || log[0].Model != "claude-sonnet-4-5" {
					t.Fatalf("log %+v", log)
				}
			})
		}
	}
}

func statusType(status int, typ string) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		t.Helper()
		if e := decode[anthropicErr](t, o.body); o.status != status || e.Error.Type != typ {
			t.Fatalf("%d %s, want %d %s", o.status, o.body, status, typ)
		}
	}
}

func TestOpenAIFaults(t *testing.T) {
	s, ts := startSim(t, fastConfig())
	const prompt = "[sim:tokens=8] x"
	tests := []struct {
		spec  string
		check func(t *testing.T, o outcome)
	}{
		{"529", func(t *testing.T, o outcome) {
			e := decode[openAIErr](t, o.body)
			if o.status != 503 || e.Error.Code == nil || *e.Error.Code != "server_is_overloaded" {
				t.Fatalf("%d %s", o.status, o.body)
			}
		}},
		{"spend-cap", func(t *testing.T, o outcome) {
			e := decode[openAIErr](t, o.body)
			if o.status != 429 || e.Error.Type != "insufficient_quota" || *e.Error.Code != "insufficient_quota" || o.header.Get("retry-after") != "" {
				t.Fatalf("%d %s", o.status, o.body)
			}
		}},
		{"529-midstream;at=2", func(t *testing.T, o outcome) {
			evs := parseSSE(t, o.body)
			last := evs[len(evs)-1]
			text, done := openAIText(t, evs)
			if done || !strings.Contains(last.data, `"error":{`) || !strings.Contains(last.data, "server_is_overloaded") || text != strings.Join(s.Generator().Answer(conv(prompt))[:2], "") {
				t.Fatalf("last %q text %q", last.data, text)
			}
		}},
		{"no-terminal", func(t *testing.T, o outcome) {
			evs := parseSSE(t, o.body)
			_, done := openAIText(t, evs)
			if done || !strings.Contains(o.body2(), `"finish_reason":"stop"`) {
				t.Fatalf("done %v body %s", done, o.body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			hdr := openAIHeaders("k")
			hdr["x-sim-fault"] = tt.spec
			tt.check(t, do(t, ts.URL, "/v1/chat/completions", hdr, chatBody("gpt-4o", prompt, 0, true, false)))
		})
	}
}

func (o outcome) body2() string { return string(o.body) }

func TestFaultTimes(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	req := func(spec string) int {
		r := anthropicReq("/v1/messages", "k", msgBody("m", "x", 5, false))
		r.Header.Set("x-sim-fault", spec)
		return serve(s, r).Code
	}
	got := []int{req("529;times=2"), req("529;times=2"), req("529;times=2")}
	if fmt.Sprint(got) != "[529 529 200]" {
		t.Fatalf("times=2 gave %v", got)
	}
	// Specs sharing an id share the count.
	got = []int{req("500;id=job1"), req("503;id=job1"), req("500;id=job2")}
	if fmt.Sprint(got) != "[500 200 500]" {
		t.Fatalf("ids gave %v", got)
	}
	// The default is once; Reset forgets the counts.
	got = []int{req("502"), req("502")}
	s.Reset()
	got = append(got, req("502"))
	if fmt.Sprint(got) != "[502 200 502]" {
		t.Fatalf("default once + reset gave %v", got)
	}
}

func TestRandomFaultsAreDeterministicForASeed(t *testing.T) {
	run := func(seed uint64, s *Server) string {
		if s == nil {
			cfg := fastConfig()
			cfg.Faults = FaultRates{Seed: seed, Rates: map[string]float64{Fault529: 0.2, Fault500: 0.1, Fault529Midstream: 0.2}}
			s = New(cfg)
			defer s.Close()
		}
		var out []string
		for i := range 40 {
			w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", fmt.Sprintf("[sim:tokens=20] %d", i), 100, true)))
			evs := parseSSE(t, w.Body.Bytes())
			out = append(out, fmt.Sprintf("%d/%d", w.Code, deltas(evs)))
		}
		return strings.Join(out, " ")
	}
	a, b := run(42, nil), run(42, nil)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if c := run(43, nil); c == a {
		t.Fatal("different seeds gave the same faults")
	}
	for _, want := range []string{"529/0", "500/0", "200/20"} {
		if !strings.Contains(a, want) {
			t.Fatalf("sequence lacks %s: %s", want, a)
		}
	}
	midstream := false
	for _, o := range strings.Fields(a) {
		if strings.HasPrefix(o, "200/") && o != "200/20" {
			midstream = true
		}
	}
	if !midstream {
		t.Fatalf("no mid-stream fault cut a stream: %s", a)
	}
	// Reset restarts the sequence.
	cfg := fastConfig()
	cfg.Faults = FaultRates{Seed: 42, Rates: map[string]float64{Fault529: 0.2, Fault500: 0.1, Fault529Midstream: 0.2}}
	s := New(cfg)
	defer s.Close()
	run(0, s)
	s.Reset()
	if again := run(0, s); again != a {
		t.Fatalf("after Reset:\n%s\nwant\n%s", again, a)
	}
}

func TestSlowFirstToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(fastConfig())
		defer s.Close()
		tw := &timedWriter{ResponseRecorder: newRecorder(), start: time.Now()}
		r := anthropicReq("/v1/messages", "k", msgBody("m", "[sim:tokens=5]", 100, true))
		r.Header.Set("x-sim-fault", "slow-first-token;delay=2s")
		s.ServeHTTP(tw, r)
		if len(tw.writes) < 2 || tw.writes[0].at != 0 || !strings.Contains(tw.writes[0].data, "message_start") {
			t.Fatalf("headers and message_start not sent at once: %+v", tw.writes)
		}
		if w := tw.writes[1]; w.at != 2*time.Second || !strings.Contains(w.data, "content_block_delta") {
			t.Fatalf("first content at %v (%q), want 2s", w.at, w.data)
		}
		if _, complete := anthropicText(t, parseSSE(t, tw.Body.Bytes())); !complete {
			t.Fatal("incomplete")
		}
	})
}
