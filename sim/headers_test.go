package sim

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

func TestHeaderFormats(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) {
		c.Anthropic = AnthropicLimits{RPM: 50, ITPM: 30_000, OTPM: 8_000}
		c.OpenAI = OpenAILimits{RPM: 500, TPM: 30_000}
	})
	w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", strings.Repeat("draw some input ", 200), 500, false)))
	h := w.Header()
	rfc := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	for _, fam := range []string{"requests", "input-tokens", "output-tokens", "tokens"} {
		p := "anthropic-ratelimit-" + fam + "-"
		lim, rem, reset := h.Get(p+"limit"), h.Get(p+"remaining"), h.Get(p+"reset")
		if _, err := strconv.ParseInt(lim, 10, 64); err != nil {
			t.Errorf("%slimit %q", p, lim)
		}
		r, err := strconv.ParseInt(rem, 10, 64)
		if err != nil || fam != "requests" && r%1000 != 0 {
			t.Errorf("%sremaining %q not a whole thousand", p, rem)
		}
		if !rfc.MatchString(reset) {
			t.Errorf("%sreset %q not RFC 3339 seconds", p, reset)
		}
	}
	if h.Get("anthropic-ratelimit-tokens-limit") != "38000" || h.Get("anthropic-ratelimit-requests-remaining") != "49" {
		t.Errorf("tokens limit %q, requests remaining %q", h.Get("anthropic-ratelimit-tokens-limit"), h.Get("anthropic-ratelimit-requests-remaining"))
	}
	if !strings.HasPrefix(h.Get("request-id"), "req_011C") || len(h.Get("request-id")) != 28 {
		t.Errorf("request-id %q", h.Get("request-id"))
	}

	w = serve(s, openAIReq("k", chatBody("gpt-4o", "hello", 100, false, false)))
	h = w.Header()
	dur := regexp.MustCompile(`^(\d+h)?(\d+m)?(\d+(\.\d+)?(ms|s))?$|^0s$`)
	for _, k := range []string{"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"} {
		if v := h.Get(k); !dur.MatchString(v) {
			t.Errorf("%s %q is not a Go duration", k, v)
		} else if _, err := time.ParseDuration(v); err != nil {
			t.Errorf("%s %q: %v", k, v, err)
		}
	}
	for _, k := range []string{"x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"} {
		if _, err := strconv.ParseInt(h.Get(k), 10, 64); err != nil {
			t.Errorf("%s %q", k, h.Get(k))
		}
	}
	if h.Get("x-ratelimit-remaining-requests") != "499" || !strings.HasPrefix(h.Get("x-request-id"), "req_") {
		t.Errorf("remaining-requests %q x-request-id %q", h.Get("x-ratelimit-remaining-requests"), h.Get("x-request-id"))
	}
}

// TestHeadersParseBackToTrueLevels sends requests that leave the buckets
// at many levels and checks that ratelimit.Parse recovers the simulator's
// true levels within the documented rounding: a thousand for Anthropic
// token families (nearest thousand, so within 500 plus the floor), one for
// requests and OpenAI, and a reset no earlier than the true full time and
// less than a second (Anthropic) or a millisecond (OpenAI) after it.
func TestHeadersParseBackToTrueLevels(t *testing.T) {
	s, clk := limitedSim(t, func(c *Config) {
		c.Window = 60 * time.Second
		c.Anthropic = AnthropicLimits{RPM: 50, ITPM: 30_000, OTPM: 8_000}
		c.OpenAI = OpenAILimits{RPM: 500, TPM: 30_000}
	})
	type step struct {
		name string
		req  func() *http.Request
		p    ratelimit.Provider
	}
	var steps []step
	for i := range 12 {
		in := strings.Repeat("lorem ipsum ", 37*i+5)
		out := 97*i + 13
		steps = append(steps,
			step{fmt.Sprintf("anthropic %d", i), func() *http.Request {
				return anthropicReq("/v1/messages", "k", msgBody("m", fmt.Sprintf("[sim:tokens=%d] %s", out, in), 2000, false))
			}, ratelimit.Anthropic},
			step{fmt.Sprintf("count_tokens %d", i), func() *http.Request {
				return anthropicReq("/v1/messages/count_tokens", "k", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
			}, ratelimit.Anthropic},
			step{fmt.Sprintf("openai %d", i), func() *http.Request {
				return openAIReq("k", chatBody("gpt", fmt.Sprintf("[sim:tokens=%d] %s", out, in), out+50*i, false, false))
			}, ratelimit.OpenAI},
		)
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Advance(1700 * time.Millisecond)
			w := serve(s, st.req())
			now := clk.Now()
			snap := ratelimit.Parse(w.Header(), now)
			if snap.Provider != st.p {
				t.Fatalf("provider %v", snap.Provider)
			}
			lv := s.Levels("k")
			truth := lv.Anthropic
			if st.p == ratelimit.OpenAI {
				truth = lv.OpenAI
			}
			check := func(d ratelimit.Dimension, level float64, limit int64, tol float64, resetTol time.Duration) {
				b := snap.Buckets[d]
				if b.Limit != limit {
					t.Errorf("%v limit %d, want %d", d, b.Limit, limit)
				}
				if math.Abs(float64(b.Remaining)-math.Max(level, 0)) > tol {
					t.Errorf("%v remaining %d, true level %.2f (tolerance %v)", d, b.Remaining, level, tol)
				}
				rate := float64(limit) / 60
				full := now.Add(time.Duration((float64(limit) - level) / rate * float64(time.Second)))
				if b.Reset.Before(full.Add(-time.Microsecond)) || b.Reset.After(full.Add(resetTol)) {
					t.Errorf("%v reset %v, true full at %v", d, b.Reset, full)
				}
			}
			if st.p == ratelimit.OpenAI {
				check(ratelimit.Requests, truth[ratelimit.Requests], 500, 1, time.Millisecond)
				check(ratelimit.Tokens, truth[ratelimit.Tokens], 30_000, 1, time.Millisecond)
				return
			}
			check(ratelimit.Requests, truth[ratelimit.Requests], 50, 1, time.Second)
			check(ratelimit.InputTokens, truth[ratelimit.InputTokens], 30_000, 501, time.Second)
			check(ratelimit.OutputTokens, truth[ratelimit.OutputTokens], 8_000, 501, time.Second)
			if g := snap.Buckets[ratelimit.OutputTokens].Granularity; g != 1000 {
				t.Errorf("granularity %d", g)
			}
			// tokens = input + output: full when the slower of the two is.
			b := snap.Buckets[ratelimit.Tokens]
			sum := math.Max(truth[ratelimit.InputTokens], 0) + math.Max(truth[ratelimit.OutputTokens], 0)
			if b.Limit != 38_000 || math.Abs(float64(b.Remaining)-sum) > 502 {
				t.Errorf("tokens %d/%d, true %.1f", b.Remaining, b.Limit, sum)
			}
		})
	}
}

func TestRateLimitHeadersOn429AndCountTokens(t *testing.T) {
	s, _ := limitedSim(t, func(c *Config) { c.Anthropic.RPM = 1 })
	serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "x", 5, false)))
	w := serve(s, anthropicReq("/v1/messages", "k", msgBody("m", "x", 5, false)))
	if w.Code != 429 || w.Header().Get("anthropic-ratelimit-requests-remaining") != "0" || w.Header().Get("anthropic-ratelimit-output-tokens-limit") == "" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	w = serve(s, anthropicReq("/v1/messages/count_tokens", "k", `{"model":"m","messages":[{"role":"user","content":"hello there"}]}`))
	if w.Code != 200 || w.Body.String() != fmt.Sprintf(`{"input_tokens":%d}`, InputTokens(conv("hello there"))) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w.Header().Get("anthropic-ratelimit-requests-remaining") != "0" {
		t.Fatal("count_tokens must report, not draw, the Messages buckets")
	}
}
