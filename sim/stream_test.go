package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

func TestAnthropicStreamFormat(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	prompt := "[sim:tokens=30] describe the river"
	w := serve(s, anthropicReq("/v1/messages", "k", msgBody("claude-sonnet-4-5", prompt, 100, true)))
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("content-type"), "text/event-stream") {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	evs := parseSSE(t, w.Body.Bytes())
	var names []string
	for _, e := range evs {
		names = append(names, e.name)
		var typ struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(e.data), &typ); err != nil || typ.Type != e.name {
			t.Fatalf("event %q data %q: type %q, err %v", e.name, e.data, typ.Type, err)
		}
	}
	want := []string{"message_start", "content_block_start", "ping"}
	for range 30 {
		want = append(want, "content_block_delta")
	}
	want = append(want, "content_block_stop", "message_delta", "message_stop")
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v\nwant %v", names, want)
	}
	var start struct {
		Message struct {
			ID    string `json:"id"`
			Model string `json:"model"`
			Role  string `json:"role"`
			Usage struct {
				Input  int `json:"input_tokens"`
				Output int `json:"output_tokens"`
			} `json:"usage"`
		} `json:"message"`
	}
	_ = json.Unmarshal([]byte(evs[0].data), &start)
	if start.Message.Usage.Input != InputTokens(conv(prompt)) || start.Message.Usage.Output != 1 ||
		start.Message.Model != "claude-sonnet-4-5" || start.Message.Role != "assistant" || !strings.HasPrefix(start.Message.ID, "msg_") {
		t.Fatalf("message_start %s", evs[0].data)
	}
	var delta struct {
		Delta struct {
			StopReason string `json:"stop_reason"`
		} `json:"delta"`
		Usage struct {
			Output int `json:"output_tokens"`
		} `json:"usage"`
	}
	_ = json.Unmarshal([]byte(evs[len(evs)-2].data), &delta)
	if delta.Delta.StopReason != "end_turn" || delta.Usage.Output != 30 {
		t.Fatalf("message_delta %s", evs[len(evs)-2].data)
	}
	text, complete := anthropicText(t, evs)
	if !complete || text != s.Generator().Text(conv(prompt)) {
		t.Fatalf("text %q complete %v", text, complete)
	}
	if rec := s.Log()[0]; rec.End != EndComplete || rec.OutputTokens != 30 || !rec.Stream || rec.Status != 200 {
		t.Fatalf("record %+v", rec)
	}
}

func TestMaxTokensCutsTheAnswer(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	prompt := "[sim:tokens=50] long answer"
	full := s.Generator().Answer(conv(prompt))
	t.Run("anthropic stream", func(t *testing.T) {
		w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", prompt, 12, true)))
		evs := parseSSE(t, w.Body.Bytes())
		text, complete := anthropicText(t, evs)
		if !complete || text != strings.Join(full[:12], "") || !strings.Contains(evs[len(evs)-2].data, `"stop_reason":"max_tokens"`) {
			t.Fatalf("text %q, delta %s", text, evs[len(evs)-2].data)
		}
	})
	t.Run("anthropic whole", func(t *testing.T) {
		w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", prompt, 12, false)))
		type message struct {
			Type       string `json:"type"`
			StopReason string `json:"stop_reason"`
			Content    []struct {
				Type, Text string
			} `json:"content"`
			Usage struct {
				Output int `json:"output_tokens"`
			} `json:"usage"`
		}
		m := decode[message](t, w.Body.Bytes())
		if m.Type != "message" || m.StopReason != "max_tokens" || m.Usage.Output != 12 || len(m.Content) != 1 || m.Content[0].Text != strings.Join(full[:12], "") {
			t.Fatalf("%s", w.Body)
		}
	})
	t.Run("openai stream", func(t *testing.T) {
		w := serve(s, openAIReq("k", chatBody("gpt", prompt, 12, true, false)))
		evs := parseSSE(t, w.Body.Bytes())
		text, done := openAIText(t, evs)
		if !done || text != strings.Join(full[:12], "") || !strings.Contains(evs[len(evs)-2].data, `"finish_reason":"length"`) {
			t.Fatalf("text %q, last %s", text, evs[len(evs)-2].data)
		}
	})
}

func TestOpenAIStreamFormats(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	prompt := "[sim:tokens=20] hi"
	want := s.Generator().Text(conv(prompt))
	for _, usage := range []bool{false, true} {
		t.Run(map[bool]string{false: "without usage", true: "with include_usage"}[usage], func(t *testing.T) {
			w := serve(s, openAIReq("k", chatBody("gpt-4o-mini", prompt, 0, true, usage)))
			evs := parseSSE(t, w.Body.Bytes())
			text, done := openAIText(t, evs)
			if !done || text != want {
				t.Fatalf("text %q done %v", text, done)
			}
			finishes := 0
			for i, e := range evs {
				if e.name != "" {
					t.Fatalf("OpenAI events must be unnamed, got %q", e.name)
				}
				if e.data == "[DONE]" {
					if i != len(evs)-1 {
						t.Fatal("[DONE] not last")
					}
					continue
				}
				var c struct {
					Object  string `json:"object"`
					Model   string `json:"model"`
					Choices []struct {
						FinishReason *string `json:"finish_reason"`
					} `json:"choices"`
					Usage *struct {
						Prompt     int `json:"prompt_tokens"`
						Completion int `json:"completion_tokens"`
						Total      int `json:"total_tokens"`
					} `json:"usage"`
				}
				raw := map[string]json.RawMessage{}
				if err := json.Unmarshal([]byte(e.data), &c); err != nil || json.Unmarshal([]byte(e.data), &raw) != nil {
					t.Fatalf("chunk %q: %v", e.data, err)
				}
				if c.Object != "chat.completion.chunk" || c.Model != "gpt-4o-mini" {
					t.Fatalf("chunk %s", e.data)
				}
				_, hasUsage := raw["usage"]
				if hasUsage != usage {
					t.Fatalf("usage key present=%v in %s", hasUsage, e.data)
				}
				for _, ch := range c.Choices {
					if ch.FinishReason != nil {
						finishes++
						if *ch.FinishReason != "stop" {
							t.Fatalf("finish_reason %q", *ch.FinishReason)
						}
					}
				}
				if c.Usage != nil {
					if len(c.Choices) != 0 || i != len(evs)-2 {
						t.Fatalf("usage chunk must have no choices and precede [DONE]: %s", e.data)
					}
					if c.Usage.Prompt != InputTokens(conv(prompt)) || c.Usage.Completion != 20 || c.Usage.Total != c.Usage.Prompt+20 {
						t.Fatalf("usage %+v", *c.Usage)
					}
				}
			}
			if finishes != 1 {
				t.Fatalf("%d finish_reason chunks", finishes)
			}
		})
	}
}

func TestOpenAIWhole(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	prompt := "[sim:tokens=15] hi"
	w := serve(s, openAIReq("k", chatBody("gpt-4o", prompt, 0, false, false)))
	var c struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role, Content string
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if c.Object != "chat.completion" || len(c.Choices) != 1 || c.Choices[0].Message.Content != s.Generator().Text(conv(prompt)) ||
		c.Choices[0].FinishReason != "stop" || c.Usage.Completion != 15 || c.Usage.Prompt != InputTokens(conv(prompt)) {
		t.Fatalf("%s", w.Body)
	}
}

// predictCut simulates the documented OTPM rule: token j is due j/v seconds
// after the start, the bucket refills at r per second up to limit, and a
// token is sent when at least one whole token is available at its due time.
func predictCut(level, limit, r, v float64, n int) int {
	sent := 0
	for j := range n {
		if j > 0 {
			level = min(limit, level+r/v)
		}
		if level+1e-6 < 1 {
			return sent
		}
		level--
		sent++
	}
	return sent
}

func TestOTPMRunsDryMidStreamAtThePredictedToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{
			Window:          10 * time.Second,
			Anthropic:       AnthropicLimits{RPM: 1000, ITPM: 1_000_000, OTPM: 1000}, // 100/s
			TokensPerSecond: 250,
			FlushInterval:   4 * time.Millisecond, // one token per wake
		}
		s := New(cfg)
		defer s.Close()
		// Drain part of the budget with a first answer.
		if w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "[sim:tokens=700]", 1000, true))); w.Code != 200 {
			t.Fatal(w.Code)
		}
		time.Sleep(1234 * time.Millisecond)
		l0 := s.Levels("k").Anthropic[ratelimit.OutputTokens]
		want := predictCut(l0, 1000, 100, 250, 4000)
		if want < 100 || want >= 4000 {
			t.Fatalf("bad scenario: predicted cut %d from level %v", want, l0)
		}
		start := time.Now()
		w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "[sim:tokens=4000] long", 5000, true)))
		evs := parseSSE(t, w.Body.Bytes())
		deltas := 0
		for _, e := range evs {
			if e.name == "content_block_delta" {
				deltas++
			}
		}
		last := evs[len(evs)-1]
		text, complete := anthropicText(t, evs)
		if complete || last.name != "error" {
			t.Fatalf("stream ended with %q (complete %v), want an error event", last.name, complete)
		}
		e := decode[anthropicErr](t, []byte(last.data))
		if e.Type != "error" || e.Error.Type != "rate_limit_error" || !strings.Contains(e.Error.Message, "of 1,000 output tokens per minute") {
			t.Fatalf("error event %s", last.data)
		}
		if deltas != want {
			t.Fatalf("cut after %d tokens, predicted %d (start level %.3f)", deltas, want, l0)
		}
		full := s.Generator().Text(conv("[sim:tokens=4000] long"))
		if !strings.HasPrefix(full, text) {
			t.Fatal("partial text is not a prefix of the answer")
		}
		// The cut happens when token `want` falls due.
		if got, due := time.Since(start), time.Duration(float64(want)/250*float64(time.Second)); got != due {
			t.Fatalf("cut at %v, want %v", got, due)
		}
		log := s.Log()
		rec := log[len(log)-1]
		if rec.End != EndRateLimitedMidstream || rec.OutputTokens != want || rec.Dimension != "output_tokens" || rec.Status != 200 {
			t.Fatalf("record %+v", rec)
		}
	})
}

func TestStreamPacingAndBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.TokensPerSecond = 100
		cfg.FirstTokenDelay = 300 * time.Millisecond
		cfg.FlushInterval = 50 * time.Millisecond
		s := New(cfg)
		defer s.Close()
		fw := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
		start := time.Now()
		s.ServeHTTP(fw, anthropicReq("/v1/messages", "k", msgBody("m", "[sim:tokens=50]", 100, true)))
		// Wakes are 50ms apart from the first token at 300ms; token 49,
		// due at 300ms + 490ms, goes out with the wake at 800ms.
		if got := time.Since(start); got != 800*time.Millisecond {
			t.Fatalf("stream took %v, want 800ms", got)
		}
		// 50 tokens at 5 per 50ms flush, plus the prelude and the end: far
		// fewer writes than tokens.
		if fw.flushes < 10 || fw.flushes > 14 {
			t.Fatalf("%d flushes for 50 tokens at 5 per flush", fw.flushes)
		}
		text, complete := anthropicText(t, parseSSE(t, fw.Body.Bytes()))
		if !complete || text != s.Generator().Text(conv("[sim:tokens=50]")) {
			t.Fatal("incomplete or wrong text")
		}
	})
}

type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() {
	f.flushes++
	f.ResponseRecorder.Flush()
}

func TestClientGoneStopsDrawingOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.TokensPerSecond = 100
		cfg.FlushInterval = 10 * time.Millisecond
		cfg.Anthropic.OTPM = 6000 // 1000/s over 6s
		s := New(cfg)
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		r := anthropicReq("/v1/messages", "k", msgBody("m", "[sim:tokens=1000]", 2000, true)).WithContext(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(255 * time.Millisecond)
			cancel()
		})
		serve(s, r)
		wg.Wait()
		rec := s.Log()[0]
		if rec.End != EndClientGone || rec.OutputTokens != 26 {
			t.Fatalf("record %+v, want client_gone after 26 tokens", rec)
		}
		l1 := s.Levels("k").Anthropic[ratelimit.OutputTokens]
		time.Sleep(time.Second)
		l2 := s.Levels("k").Anthropic[ratelimit.OutputTokens]
		if want := min(6000, l1+1000); l2 != want {
			t.Fatalf("level went %v -> %v, want %v: output still drawn after the client left", l1, l2, want)
		}
	})
}

func TestServerCloseEndsOpenStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fastConfig()
		cfg.TokensPerSecond = 10
		s := New(cfg)
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(time.Second)
			_ = s.Close()
		})
		w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "[sim:tokens=1000]", 2000, true)))
		wg.Wait()
		if _, complete := anthropicText(t, parseSSE(t, w.Body.Bytes())); complete {
			t.Fatal("stream complete despite Close")
		}
		if rec := s.Log()[0]; rec.End != EndServerClosed {
			t.Fatalf("record %+v", rec)
		}
	})
}

func TestNonStreamingRunsDryWith429(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) { c.Anthropic.OTPM = 30 })
	w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "[sim:tokens=50]", 100, false)))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("retry-after") == "" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if rec := s.Log()[0]; rec.End != EndRateLimitedMidstream || rec.OutputTokens != 30 {
		t.Fatalf("record %+v", rec)
	}
}

func TestOpenAILiveOutputCutIsAnErrorChunk(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) { c.OpenAI.TPM, c.OpenAI.LiveOutput = 100, true })
	prompt := "[sim:tokens=300] go"
	w := serve(s, openAIReq("k", chatBody("gpt-4o", prompt, 1000, true, true)))
	evs := parseSSE(t, w.Body.Bytes())
	text, done := openAIText(t, evs)
	// The clock does not move: the prompt is taken at admission and every
	// whole token left is sent.
	want := 100 - InputTokens(conv(prompt))
	full := s.Generator().Answer(conv(prompt))
	if done || text != strings.Join(full[:want], "") {
		t.Fatalf("done %v, text %q; want the first %d tokens", done, text, want)
	}
	e := decode[openAIErr](t, []byte(evs[len(evs)-1].data))
	if e.Error.Type != "tokens" || e.Error.Code == nil || *e.Error.Code != "rate_limit_exceeded" || !strings.Contains(e.Error.Message, "on tokens per min (TPM): Limit 100") {
		t.Fatalf("last chunk %s", evs[len(evs)-1].data)
	}
}
