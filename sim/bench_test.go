package sim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkConcurrentStreams opens SIM_BENCH_STREAMS (default 1000)
// concurrent streams of 100 tokens at 50 tokens/s (2 s each) against one
// simulator on an httptest server, reads every stream to the end and checks
// it is complete. It reports the concurrency reached, the wall time per
// round (ideal: 2 s plus scheduling) and the events delivered per second.
// SIM_BENCH_FLUSH sets Config.FlushInterval (default 100ms). The clients
// run in the same process, so the figure includes their cost too.
//
//	SIM_BENCH_STREAMS=5000 go test -run '^$' -bench ConcurrentStreams -benchtime 1x ./sim
func BenchmarkConcurrentStreams(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("SIM_BENCH_STREAMS")); err == nil && v > 0 {
		n = v
	}
	flush := 100 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv("SIM_BENCH_FLUSH")); err == nil && d > 0 {
		flush = d
	}
	cfg := Config{
		Window:          time.Minute,
		TokensPerSecond: 50,
		FlushInterval:   flush,
		Anthropic:       AnthropicLimits{RPM: Unlimited, ITPM: Unlimited, OTPM: Unlimited},
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close()
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	const tokens = 100
	body := msgBody("claude-sonnet-4-5", fmt.Sprintf("[sim:tokens=%d] bench", tokens), 1000, true)
	b.ReportAllocs()
	b.ResetTimer()
	var events atomic.Int64
	start := time.Now()
	for range b.N {
		var wg sync.WaitGroup
		var failed atomic.Int64
		ready := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-ready
				got, err := oneStream(client, ts.URL, fmt.Sprintf("key-%d", i%16), body)
				if err != nil || got != tokens {
					failed.Add(1)
				}
				events.Add(int64(got))
			})
		}
		close(ready)
		wg.Wait()
		if f := failed.Load(); f > 0 {
			b.Fatalf("%d of %d streams failed", f, n)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(n), "streams")
	b.ReportMetric(float64(s.Stats().Totals.PeakActiveStreams), "peak_concurrent")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/round")
	b.ReportMetric(float64(events.Load())/elapsed.Seconds(), "tokens/s")
}

// oneStream reads a Messages stream and returns its delta count, or an
// error if it did not end with message_stop.
func oneStream(c *http.Client, url, key, body string) (int, error) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	for k, v := range anthropicHeaders(key) {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	deltas, stopped := 0, false
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("event: content_block_delta")) {
			deltas++
		} else if bytes.HasPrefix(line, []byte("event: message_stop")) {
			stopped = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return deltas, err
		}
	}
	if !stopped {
		return deltas, fmt.Errorf("no message_stop")
	}
	return deltas, nil
}

// BenchmarkAnswer measures composing one 400-token answer.
func BenchmarkAnswer(b *testing.B) {
	g := Generator{}
	c := conv("[sim:tokens=400] a benchmark prompt")
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Answer(c)
	}
}

// BenchmarkCountTokens measures the tokenizer on 4 KiB of mixed text.
func BenchmarkCountTokens(b *testing.B) {
	text := strings.Repeat("The café on 東京 street sells 42 crêpes 🚀 daily.\n", 80)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		_ = CountTokens(text)
	}
}

// BenchmarkUnpacedMessage measures one whole unpaced request in-process.
func BenchmarkUnpacedMessage(b *testing.B) {
	cfg := fastConfig()
	cfg.Anthropic = AnthropicLimits{RPM: Unlimited, ITPM: Unlimited, OTPM: Unlimited}
	s := New(cfg)
	defer s.Close()
	body := msgBody("m", "[sim:tokens=200] x", 1000, true)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, anthropicReq("/v1/messages", "k", body))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
