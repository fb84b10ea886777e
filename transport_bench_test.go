package streamgate

import (
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/cost"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
)

// BenchmarkRoundTripOverhead measures what the Transport adds to one
// streaming request: parse and estimate the body, admit through the gate
// and budget, observe the headers, and pass a short complete stream
// through its event parser, against an in-memory upstream.
func BenchmarkRoundTripOverhead(b *testing.B) {
	stream := anthropicEvents("one two three four five six seven eight", true)
	upstream := roundTripFunc(func(*http.Request) (*http.Response, error) {
		r := sseResponse(stream)
		r.Header.Set("Anthropic-Ratelimit-Output-Tokens-Limit", "1000000000")
		r.Header.Set("Anthropic-Ratelimit-Output-Tokens-Remaining", "1000000000")
		r.Header.Set("Anthropic-Ratelimit-Requests-Limit", "1000000000")
		r.Header.Set("Anthropic-Ratelimit-Requests-Remaining", "1000000000")
		return r, nil
	})
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"direct", upstream},
		// Pacing off: this measures the work per request, not the
		// opening-rate ramp.
		{"streamgate", NewTransport(WithBase(upstream), WithGate(gate.Config{
			InitialOpenRate: math.Inf(1), MaxOpenRate: math.Inf(1), InitialConcurrency: 64,
		}))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				req, _ := http.NewRequestWithContext(context.Background(), "POST", "http://upstream.test/v1/messages", strings.NewReader(reqBody))
				req.Header.Set("X-Api-Key", "sk-bench")
				resp, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkAdmission measures admission alone: estimate the cost, wait in
// the gate, reserve in the budget, then settle and release.
func BenchmarkAdmission(b *testing.B) {
	tr := NewTransport(WithGate(gate.Config{InitialOpenRate: math.Inf(1), MaxOpenRate: math.Inf(1), InitialConcurrency: 64}))
	req, _ := http.NewRequest("POST", "http://upstream.test/v1/messages", strings.NewReader(reqBody))
	req.Header.Set("X-Api-Key", "sk-bench")
	parsed, err := cost.Parse(cost.Messages, []byte(reqBody))
	if err != nil {
		b.Fatal(err)
	}
	c := &call{t: tr, req: req, ctx: context.Background(), ep: AnthropicMessages, parsed: parsed}
	c.key = budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_bench", ModelClass: "claude-sonnet-4"}
	c.ks = tr.keyState(c.ctx, c.key)
	b.ReportAllocs()
	for b.Loop() {
		res, ticket, err := c.admit(false)
		if err != nil {
			b.Fatal(err)
		}
		c.settle(res, 10, 20)
		ticket.Release()
	}
}
