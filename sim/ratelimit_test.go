package sim

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// limitedSim returns an unpaced simulator on a fake clock.
func limitedSim(t *testing.T, mod func(*Config)) (*Server, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg := fastConfig()
	cfg.Clock = clk
	if mod != nil {
		mod(&cfg)
	}
	s := New(cfg)
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

func retryAfter(t *testing.T, h http.Header) int64 {
	t.Helper()
	v, err := strconv.ParseInt(h.Get("retry-after"), 10, 64)
	if err != nil {
		t.Fatalf("retry-after %q: %v", h.Get("retry-after"), err)
	}
	return v
}

func TestRateLimitsArePerKey(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) { c.Anthropic.RPM = 2 })
	for i := range 2 {
		if w := serve(s, anthropicReq("/v1/messages", "key-a", msgBody("m", "hi", 5, false))); w.Code != 200 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	if w := serve(s, anthropicReq("/v1/messages", "key-a", msgBody("m", "hi", 5, false))); w.Code != 429 {
		t.Fatalf("third request on key-a: %d", w.Code)
	}
	if w := serve(s, anthropicReq("/v1/messages", "key-b", msgBody("m", "hi", 5, false))); w.Code != 200 {
		t.Fatalf("key-b affected by key-a: %d %s", w.Code, w.Body)
	}
	if got := s.Levels("key-b").Anthropic[ratelimit.Requests]; got != 1 {
		t.Fatalf("key-b requests level %v, want 1", got)
	}
}

func TestRateLimitErrorsNameTheDimension(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		drain  string // prompt of a first request that drains the budget
		prompt string
		dim    string
		msg    string
	}{
		{"rpm", func(c *Config) { c.Anthropic.RPM = 1 }, "hi", "hi", "requests", "of 1 requests per minute"},
		{"itpm", func(c *Config) { c.Anthropic.ITPM = 30 }, strings.Repeat("a ", 20), strings.Repeat("b ", 20), "input_tokens", "of 30 input tokens per minute"},
		{"otpm", func(c *Config) { c.Anthropic.OTPM = 20 }, "[sim:tokens=20]", "hi", "output_tokens", "of 20 output tokens per minute"},
		{"combined", func(c *Config) { c.Anthropic.CombinedTPM, c.Anthropic.TPM = true, 40 }, "[sim:tokens=30]", "hi", "tokens", "of 40 tokens per minute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := limitedSim(t, tt.mod)
			if w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", tt.drain, 100, false))); w.Code != 200 {
				t.Fatalf("draining request: %d %s", w.Code, w.Body)
			}
			w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", tt.prompt, 100, false)))
			if w.Code != 429 {
				t.Fatalf("status %d, want 429", w.Code)
			}
			e := decode[anthropicErr](t, w.Body.Bytes())
			if e.Error.Type != "rate_limit_error" || !strings.Contains(e.Error.Message, tt.msg) || !strings.HasPrefix(e.Error.Message, "This request would exceed the rate limit for your organization") {
				t.Fatalf("body %s, want message with %q", w.Body, tt.msg)
			}
			if retryAfter(t, w.Header()) < 1 {
				t.Fatal("retry-after < 1")
			}
			log := s.Log()
			if last := log[len(log)-1]; last.End != EndRateLimited || last.Dimension != tt.dim || last.Status != 429 {
				t.Fatalf("log record %+v", last)
			}
		})
	}
}

// TestRetryAfterIsNeverTooShort drains the input bucket by different
// amounts and checks, on a fake clock, that a retry just before the true
// wait fails and a retry at retry-after succeeds.
func TestRetryAfterIsNeverTooShort(t *testing.T) {
	for _, drain := range []int{40, 45, 50, 55} {
		t.Run(strconv.Itoa(drain), func(t *testing.T) {
			s, clk := limitedSim(t, func(c *Config) { c.Anthropic.ITPM = 60 }) // 10 tokens/s over 6s
			first := strings.Repeat("w ", drain)
			if w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", first, 5, false))); w.Code != 200 {
				t.Fatalf("first: %d %s", w.Code, w.Body)
			}
			second := strings.Repeat("z ", 20)
			need := float64(InputTokens(conv(second)))
			level := s.Levels("k").Anthropic[ratelimit.InputTokens]
			if level >= need {
				t.Fatalf("level %v already covers %v", level, need)
			}
			wait := time.Duration((need - level) / 10 * float64(time.Second)) // true wait at 10/s
			w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", second, 5, false)))
			if w.Code != 429 {
				t.Fatalf("second: %d", w.Code)
			}
			ra := time.Duration(retryAfter(t, w.Header())) * time.Second
			if ra < wait {
				t.Fatalf("retry-after %v shorter than the true wait %v", ra, wait)
			}
			if ra >= wait+time.Second {
				t.Fatalf("retry-after %v more than a second above the true wait %v", ra, wait)
			}
			clk.Advance(wait - 20*time.Millisecond)
			if w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", second, 5, false))); w.Code != 429 {
				t.Fatalf("retry just before the true wait: %d, want 429", w.Code)
			}
			clk.Advance(ra - wait + 20*time.Millisecond)
			if w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", second, 5, false))); w.Code != 200 {
				t.Fatalf("retry at retry-after: %d %s", w.Code, w.Body)
			}
		})
	}
}

func TestRetryAfterCoversEveryShortDimension(t *testing.T) {
	// Both RPM and ITPM are short; the wait must satisfy the slower one.
	s, clk := limitedSim(t, func(c *Config) { c.Anthropic.RPM, c.Anthropic.ITPM = 1, 60 })
	if w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", strings.Repeat("w ", 50), 5, false))); w.Code != 200 {
		t.Fatal(w.Code)
	}
	w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", strings.Repeat("w ", 50), 5, false)))
	ra := time.Duration(retryAfter(t, w.Header())) * time.Second
	if w.Code != 429 || ra < 6*time.Second {
		t.Fatalf("status %d retry-after %v: RPM 1 per 6s needs 6s", w.Code, ra)
	}
	clk.Advance(ra)
	if w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", strings.Repeat("w ", 50), 5, false))); w.Code != 200 {
		t.Fatalf("after retry-after: %d %s", w.Code, w.Body)
	}
}

func cachedBody(system string, prompt string) string {
	b, _ := json.Marshal(map[string]any{
		"model": "m", "max_tokens": 5,
		"system":   []map[string]any{{"type": "text", "text": system, "cache_control": map[string]string{"type": "ephemeral"}}},
		"messages": []map[string]any{{"role": "user", "content": prompt}},
	})
	return string(b)
}

func TestCacheReadsDoNotCountTowardITPM(t *testing.T) {
	s, clk := limitedSim(t, func(c *Config) { c.Anthropic.ITPM = 100_000 })
	system := strings.Repeat("shared context ", 300)
	sysTokens := CountTokens(system)
	type usage struct {
		Usage struct {
			Input  int `json:"input_tokens"`
			Create int `json:"cache_creation_input_tokens"`
			Read   int `json:"cache_read_input_tokens"`
		} `json:"usage"`
	}
	drawn := func(body string) (usage, float64) {
		before := s.Levels("k").Anthropic[ratelimit.InputTokens]
		w := serve(s, anthropicReq("/v1/messages", "k", body))
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		return decode[usage](t, w.Body.Bytes()), before - s.Levels("k").Anthropic[ratelimit.InputTokens]
	}
	u1, d1 := drawn(cachedBody(system, "first question"))
	if u1.Usage.Create != sysTokens || u1.Usage.Read != 0 {
		t.Fatalf("first request usage %+v, want creation %d", u1.Usage, sysTokens)
	}
	if want := float64(u1.Usage.Input + u1.Usage.Create); math.Abs(d1-want) > 1e-6 {
		t.Fatalf("first request drew %v ITPM, want input+creation %v", d1, want)
	}
	clk.Advance(time.Second)
	before := s.Levels("k").Anthropic[ratelimit.InputTokens]
	u2, _ := drawn(cachedBody(system, "second question"))
	if u2.Usage.Read != sysTokens || u2.Usage.Create != 0 {
		t.Fatalf("second request usage %+v, want read %d", u2.Usage, sysTokens)
	}
	after := s.Levels("k").Anthropic[ratelimit.InputTokens]
	if got, want := before-after, float64(u2.Usage.Input); math.Abs(got-want) > 1e-6 {
		t.Fatalf("second request drew %v ITPM, want only the uncached %v", got, want)
	}
	// After the TTL the prefix is written again.
	clk.Advance(6 * time.Minute)
	if u3, _ := drawn(cachedBody(system, "third")); u3.Usage.Create != sysTokens {
		t.Fatalf("after TTL usage %+v, want creation again", u3.Usage)
	}
}

func TestCombinedTPMDrawsInputAndOutputFromOneBucket(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) { c.Anthropic.CombinedTPM, c.Anthropic.TPM = true, 10_000 })
	prompt := "[sim:tokens=40] go"
	w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", prompt, 100, false)))
	if w.Code != 200 {
		t.Fatal(w.Code)
	}
	lv := s.Levels("k").Anthropic
	if lv[ratelimit.InputTokens] != -1 || lv[ratelimit.OutputTokens] != -1 {
		t.Fatalf("separate buckets present in combined mode: %v", lv)
	}
	if want := 10_000 - float64(InputTokens(conv(prompt))+40); math.Abs(lv[ratelimit.Tokens]-want) > 1e-6 {
		t.Fatalf("tokens level %v, want %v", lv[ratelimit.Tokens], want)
	}
	if w.Header().Get("anthropic-ratelimit-input-tokens-limit") != "" || w.Header().Get("anthropic-ratelimit-tokens-limit") != "10000" {
		t.Fatalf("headers %v", w.Header())
	}
}

func TestOpenAITPMChargesMaxTokensUpFrontWithoutRefund(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) { c.OpenAI.TPM = 10_000 })
	prompt := "[sim:tokens=10] hello"
	w := serve(s, openAIReq("k", chatBody("gpt-4o", prompt, 500, false, false)))
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	want := 10_000 - float64(InputTokens(conv(prompt))+500)
	if got := s.Levels("k").OpenAI[ratelimit.Tokens]; math.Abs(got-want) > 1e-6 {
		t.Fatalf("TPM level %v, want %v (prompt + max_tokens, no refund)", got, want)
	}
	// A request whose prompt+max_tokens does not fit is rejected in OpenAI's words.
	w = serve(s, openAIReq("k", chatBody("gpt-4o", prompt, 9_900, false, false)))
	e := decode[openAIErr](t, w.Body.Bytes())
	if w.Code != 429 || e.Error.Type != "tokens" || e.Error.Code == nil || *e.Error.Code != "rate_limit_exceeded" ||
		!strings.Contains(e.Error.Message, "on tokens per min (TPM): Limit 10000, Used ") || !strings.Contains(e.Error.Message, "Please try again in ") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w.Header().Get("x-ratelimit-limit-tokens") != "10000" || w.Header().Get("retry-after") == "" {
		t.Fatalf("headers %v", w.Header())
	}
	// A request larger than the whole limit can never run: OpenAI says so.
	w = serve(s, openAIReq("k", chatBody("gpt-4o", prompt, 20_000, false, false)))
	e = decode[openAIErr](t, w.Body.Bytes())
	if w.Code != 429 || !strings.HasPrefix(e.Error.Message, "Request too large for gpt-4o in organization org-") || !strings.Contains(e.Error.Message, "Limit 10000, Requested ") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestOpenAILiveOutputDrawsAsItStreams(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) { c.OpenAI.TPM, c.OpenAI.LiveOutput = 10_000, true })
	prompt := "[sim:tokens=25] hello"
	if w := serve(s, openAIReq("k", chatBody("gpt-4o", prompt, 500, false, false))); w.Code != 200 {
		t.Fatal(w.Code)
	}
	want := 10_000 - float64(InputTokens(conv(prompt))+25)
	if got := s.Levels("k").OpenAI[ratelimit.Tokens]; math.Abs(got-want) > 1e-6 {
		t.Fatalf("TPM level %v, want %v (prompt + output actually produced)", got, want)
	}
}

func TestUnlimitedRemovesBucketAndHeaders(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) { c.Anthropic.ITPM = Unlimited })
	w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "hi", 5, false)))
	if w.Code != 200 || w.Header().Get("anthropic-ratelimit-input-tokens-limit") != "" || w.Header().Get("anthropic-ratelimit-tokens-limit") != "" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if w.Header().Get("anthropic-ratelimit-output-tokens-limit") == "" {
		t.Fatal("output family missing")
	}
}
