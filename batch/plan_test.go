package batch

import (
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/ratelimit"
)

func TestEstimate(t *testing.T) {
	// Three OpenAI requests of max_tokens 1,000 whose prompts are 40
	// characters (10 tokens) plus 4 tokens of message framing each.
	prompt := strings.Repeat("abcd", 10)
	lines := openAIInput("a", prompt, 1000) + "\n" + openAIInput("b", prompt, 1000) + "\n" + openAIInput("c", prompt, 1000)
	w, err := ParseRequests(strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cfg      PlanConfig
		binding  ratelimit.Dimension
		time     time.Duration
		upper    bool
		neededTk int64
	}{
		{
			// OpenAI charges prompt + max_tokens: 3 x 1,014 = 3,042 tokens
			// against 1,000 a minute: (3,042 - 1,000) / (1,000 / 60 s).
			name:    "tokens bind",
			cfg:     PlanConfig{Limits: streamgate.Limits{Requests: 500, Tokens: 1000}},
			binding: ratelimit.Tokens, time: 122520 * time.Millisecond, upper: true, neededTk: 3042,
		},
		{
			// An expected length does not change what OpenAI charges.
			name:    "expected output",
			cfg:     PlanConfig{Limits: streamgate.Limits{Requests: 500, Tokens: 1000}, OutputTokens: 50},
			binding: ratelimit.Tokens, time: 122520 * time.Millisecond, upper: false, neededTk: 3042,
		},
		{
			// Requests bind: 3 against 1 per 10 s.
			name:    "requests bind",
			cfg:     PlanConfig{Limits: streamgate.Limits{Requests: 1}, Window: 10 * time.Second},
			binding: ratelimit.Requests, time: 20 * time.Second, upper: true, neededTk: 3042,
		},
		{
			name:  "nothing binds",
			cfg:   PlanConfig{Limits: streamgate.Limits{Requests: 500, Tokens: 1_000_000}},
			upper: true, neededTk: 3042,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Estimate(w, tc.cfg)
			if p.Requests != 3 || len(p.Classes) != 1 || p.Classes[0].ModelClass != "gpt-4o" {
				t.Fatalf("plan %+v", p)
			}
			c := p.Classes[0]
			if c.Needed[ratelimit.Tokens] != tc.neededTk || c.Needed[ratelimit.Requests] != 3 || c.Needed[ratelimit.InputTokens] != 42 {
				t.Fatalf("needed %v", c.Needed)
			}
			if p.Time != tc.time || p.UpperBound != tc.upper || (tc.time > 0 && p.Binding != tc.binding) {
				t.Fatalf("time %v binding %v upper %v; want %v %v %v", p.Time, p.Binding, p.UpperBound, tc.time, tc.binding, tc.upper)
			}
			var out strings.Builder
			if err := p.WriteText(&out); err != nil || !strings.Contains(out.String(), "Batch API") {
				t.Fatalf("text %q: %v", out.String(), err)
			}
		})
	}
}
