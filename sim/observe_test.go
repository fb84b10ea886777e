package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgate/streamgate/fingerprint"
	"github.com/streamgate/streamgate/ratelimit"
)

func TestLogRecordsEveryRequest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sim.jsonl")
	cfg := fastConfig()
	cfg.LogPath = path
	cfg.Anthropic.RPM = 2
	s, ts := startSim(t, cfg)
	do(t, ts.URL, "/v1/messages", anthropicHeaders("key-1"), msgBody("claude-x", "[sim:tokens=7] a", 100, true))
	do(t, ts.URL, "/v1/messages", anthropicHeaders("key-1"), msgBody("claude-x", "[sim:tokens=7] a", 3, false))
	do(t, ts.URL, "/v1/messages", anthropicHeaders("key-1"), msgBody("claude-x", "[sim:tokens=7] a", 3, false))
	do(t, ts.URL, "/v1/chat/completions", openAIHeaders("key-2"), chatBody("gpt", "hi", 10, true, true))
	do(t, ts.URL, "/v1/messages", map[string]string{"anthropic-version": "2023-06-01"}, `{}`)
	if err := s.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := s.Log()
	want := []struct {
		key, endpoint, end string
		status, out        int
		stream             bool
	}{
		{fingerprint.Of("key-1"), "messages", EndComplete, 200, 7, true},
		{fingerprint.Of("key-1"), "messages", EndMaxTokens, 200, 3, false},
		{fingerprint.Of("key-1"), "messages", EndRateLimited, 429, 0, false},
		{fingerprint.Of("key-2"), "chat_completions", EndMaxTokens, 200, 10, true},
		{fingerprint.Of(""), "messages", EndRejected, 401, 0, false},
	}
	if len(log) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(log), len(want), log)
	}
	for i, w := range want {
		r := log[i]
		if r.Key != w.key || r.Endpoint != w.endpoint || r.End != w.end || r.Status != w.status || r.OutputTokens != w.out || r.Stream != w.stream {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
		if r.RequestID == "" || r.Time.IsZero() {
			t.Errorf("record %d lacks id or time", i)
		}
		if strings.Contains(r.Key, "key-") {
			t.Errorf("record %d leaks the key", i)
		}
	}
	if log[0].InputTokens != InputTokens(conv("[sim:tokens=7] a")) || log[0].Model != "claude-x" {
		t.Errorf("record 0 %+v", log[0])
	}
	if log[2].RetryAfter < 1 || log[2].Dimension != "requests" {
		t.Errorf("429 record %+v", log[2])
	}

	// The same records as JSONL, in memory and in the file.
	var buf bytes.Buffer
	if err := s.WriteLogJSONL(&buf); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"WriteLogJSONL": buf.Bytes(), "LogPath": file} {
		var got []Record
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: line %q: %v", name, sc.Text(), err)
			}
			got = append(got, r)
		}
		if len(got) != len(log) {
			t.Fatalf("%s: %d lines, want %d", name, len(got), len(log))
		}
		for i := range got {
			if got[i].RequestID != log[i].RequestID || got[i].End != log[i].End || !got[i].Time.Equal(log[i].Time) {
				t.Errorf("%s line %d = %+v, want %+v", name, i, got[i], log[i])
			}
		}
	}
}

func TestLogIsBounded(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxLogRecords = 3
	s := New(cfg)
	defer s.Close()
	var ids []string
	for range 5 {
		w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "x", 2, false)))
		ids = append(ids, w.Header().Get("request-id"))
	}
	log := s.Log()
	if len(log) != 3 || log[0].RequestID != ids[2] || log[2].RequestID != ids[4] {
		t.Fatalf("log %+v, want the last three of %v", log, ids)
	}
}

func TestLogPathErrorIsReported(t *testing.T) {
	cfg := fastConfig()
	cfg.LogPath = filepath.Join(t.TempDir(), "missing-dir", "x.jsonl")
	s := New(cfg)
	if s.Err() == nil {
		t.Fatal("Err() nil for an unopenable log path")
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close() nil for an unopenable log path")
	}
}

func TestStatsAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.StatsInterval = 100 * time.Millisecond
		cfg.StatsSamples = 4
		cfg.Anthropic.OTPM = 60 // 10 per second
		s := New(cfg)
		defer s.Close()
		serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "[sim:tokens=9] hi", 100, true)))
		r := anthropicReq("/v1/messages", "k", msgBody("m", "hi", 100, true))
		r.Header.Set("x-sim-fault", "529")
		serve(s, r)
		time.Sleep(time.Second) // ten sampling ticks
		synctest.Wait()         // the tick at 1s is recorded
		get := func(path string) []byte {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			if w.Code != 200 {
				t.Fatalf("GET %s: %d", path, w.Code)
			}
			return w.Body.Bytes()
		}
		st := decode[Stats](t, get("/sim/stats"))
		tot := st.Totals
		if tot.Requests != 2 || tot.ByStatus["200"] != 1 || tot.ByStatus["529"] != 1 || tot.ByEnd[EndComplete] != 1 ||
			tot.ByEnd[FaultEnd(Fault529)] != 1 || tot.ByFault[Fault529] != 1 || tot.OutputTokens != 9 ||
			tot.ActiveStreams != 0 || tot.PeakActiveStreams != 1 {
			t.Fatalf("totals %+v", tot)
		}
		if len(st.Keys) != 1 || st.Keys[0].Key != fingerprint.Of("k") || st.Keys[0].Provider != "anthropic" || len(st.Keys[0].Buckets) != 3 {
			t.Fatalf("keys %+v", st.Keys)
		}
		for _, b := range st.Keys[0].Buckets {
			if len(b.Series) != 4 {
				t.Fatalf("%s series has %d samples, want the ring's 4", b.Dimension, len(b.Series))
			}
			for i := 1; i < len(b.Series); i++ {
				if got := b.Series[i].T.Sub(b.Series[i-1].T); got != 100*time.Millisecond {
					t.Fatalf("samples %v apart", got)
				}
			}
			if b.Dimension == "output_tokens" {
				// 9 tokens drawn at 0s refill at 10/s: 58 at 0.7s, full from 0.9s.
				want := []float64{58, 59, 60, 60}
				for i, smp := range b.Series {
					if math.Abs(smp.Level-want[i]) > 1e-9 {
						t.Fatalf("output series %+v, want levels %v", b.Series, want)
					}
				}
			}
		}
		// POST /sim/reset clears it all: buckets start full, no log, no totals.
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/sim/reset", nil))
		if w.Code != http.StatusNoContent {
			t.Fatalf("reset: %d", w.Code)
		}
		if st := s.Stats(); st.Totals.Requests != 0 || len(st.Keys) != 0 || len(s.Log()) != 0 {
			t.Fatalf("after reset: %+v, log %d", st, len(s.Log()))
		}
		// GET /sim/log is JSONL.
		serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "x", 3, false)))
		body := get("/sim/log")
		if lines := strings.Split(strings.TrimSpace(string(body)), "\n"); len(lines) != 1 || !json.Valid([]byte(lines[0])) {
			t.Fatalf("/sim/log %q", body)
		}
	})
}

func TestLevelsOfUnusedKeyAreFull(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	lv := s.Levels("never-used")
	if lv.Anthropic[ratelimit.Requests] != 1000 || lv.Anthropic[ratelimit.Tokens] != -1 || lv.OpenAI[ratelimit.Tokens] != 1_000_000 || lv.OpenAI[ratelimit.InputTokens] != -1 {
		t.Fatalf("levels %+v", lv)
	}
	if len(s.Stats().Keys) != 0 {
		t.Fatal("Levels created an account")
	}
}

func TestAccelerationLimit(t *testing.T) {
	clk := newFakeClock()
	cfg := fastConfig()
	cfg.Clock = clk
	cfg.Acceleration = &Acceleration{Floor: 2, Factor: 2, Interval: time.Second}
	s, ts := startSim(t, cfg)
	held := 0
	hold := func() {
		held++
		hdr := anthropicHeaders("k")
		hdr["x-sim-fault"] = fmt.Sprintf("stall-midstream;at=0;id=hold-%d", held)
		resp := post(t, ts.URL, "/v1/messages", hdr, msgBody("m", "x", 10, true))
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 {
			t.Fatalf("held stream got %d", resp.StatusCode)
		}
	}
	hold()
	hold()
	// A third concurrent request exceeds the floor with no history.
	w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "x", 10, false)))
	e := decode[anthropicErr](t, w.Body.Bytes())
	if w.Code != 429 || e.Error.Type != "rate_limit_error" || !strings.Contains(e.Error.Message, "acceleration") || w.Header().Get("retry-after") != "1" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	// After an interval at concurrency 2, up to 4 are allowed.
	clk.Advance(time.Second)
	hold()
	hold()
	if w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "x", 10, false))); w.Code != 429 {
		t.Fatalf("fifth concurrent request: %d, want 429", w.Code)
	}
	// Other keys are not affected.
	if w := serve(s, anthropicReq("/v1/messages", "other", msgBody("m", "x", 10, false))); w.Code != 200 {
		t.Fatalf("other key: %d", w.Code)
	}
}
