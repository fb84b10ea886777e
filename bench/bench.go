// Package bench measures scheduling strategies side by side against the
// simulator: the same workload, the same limits, a fresh simulator per run.
// It reports what docs/BENCHMARKS.md publishes: makespan as a ratio of the
// theoretical minimum, 429s per 1,000 requests, mid-stream failures,
// truncated successes and wasted output tokens.
package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/streamgate/streamgate/sim"
)

// Request is one request of a workload.
type Request struct {
	Prompt    string
	MaxTokens int
	// Want is the complete answer the simulator will give.
	Want string
	// Tokens is the answer's length in output tokens.
	Tokens int
}

// Scenario is a workload and the upstream it runs against.
type Scenario struct {
	Name     string
	Sim      sim.Config
	Requests []Request
}

// Outcome is what a strategy reports for one request.
type Outcome struct {
	// Text is what the caller ended up with.
	Text string
	// Err is the error the caller saw (nil = the caller believes it
	// succeeded).
	Err error
	// Latency is from submission to the end of the response.
	Latency time.Duration
}

// Strategy is a way of sending a workload.
type Strategy interface {
	Name() string
	// Run sends every request to the simulator at baseURL with apiKey and
	// returns one Outcome per request, in order.
	Run(ctx context.Context, baseURL, apiKey string, sc Scenario) []Outcome
}

// Result is one strategy's measurement on one scenario.
type Result struct {
	Scenario  string `json:"scenario"`
	Strategy  string `json:"strategy"`
	Requests  int    `json:"requests"`
	Completed int    `json:"completed"`
	// Failed counts requests that ended in an error the caller saw.
	Failed int `json:"failed"`
	// TruncatedSuccesses counts requests the caller believed succeeded but
	// whose text is not the complete answer.
	TruncatedSuccesses int           `json:"truncated_successes"`
	Makespan           time.Duration `json:"makespan_ns"`
	TheoreticalMin     time.Duration `json:"theoretical_min_ns"`
	// Ratio is Makespan / TheoreticalMin.
	Ratio float64 `json:"ratio"`
	// Upstream429 counts 429 responses and Per1000 per 1,000 requests.
	Upstream429 int     `json:"upstream_429"`
	Per1000     float64 `json:"upstream_429_per_1000"`
	// MidStream counts streams the upstream cut with a rate-limit error.
	MidStream int `json:"midstream_rate_limited"`
	// Attempts is upstream requests per workload request.
	Attempts float64 `json:"attempts_per_request"`
	// UsefulOutput is the output tokens of completed answers; Wasted is
	// every other output token the upstream generated.
	UsefulOutput int64   `json:"useful_output_tokens"`
	WastedOutput int64   `json:"wasted_output_tokens"`
	WastedPct    float64 `json:"wasted_output_pct"`
	// Goodput is useful output tokens per window as a share of the output
	// limit.
	Goodput  float64       `json:"goodput"`
	P50, P99 time.Duration `json:"-"`
}

// TheoreticalMin is the least time any scheduler needs for sc: every
// dimension starts full, then refills at limit/window, so a dimension
// needing N units with limit L takes max(0, N-L)/(L/window); and no run
// can be shorter than its longest single stream at the simulator's pace.
func TheoreticalMin(sc Scenario) time.Duration {
	cfg := sc.Sim
	window := cfg.Window
	if window <= 0 {
		window = time.Minute
	}
	var in, out int64
	longest := 0
	for _, r := range sc.Requests {
		in += int64(sim.InputTokens(conv(r.Prompt)))
		out += int64(r.Tokens)
		longest = max(longest, r.Tokens)
	}
	need := func(n, limit int64) time.Duration {
		if limit <= 0 || n <= limit {
			return 0
		}
		return time.Duration(float64(n-limit) / float64(limit) * float64(window))
	}
	d := max(need(int64(len(sc.Requests)), cfg.Anthropic.RPM), need(in, cfg.Anthropic.ITPM), need(out, cfg.Anthropic.OTPM))
	tps := cfg.TokensPerSecond
	if tps == 0 {
		tps = 100
	}
	if tps > 0 {
		d = max(d, cfg.FirstTokenDelay+time.Duration(float64(longest)/tps*float64(time.Second)))
	}
	return d
}

func conv(prompt string) sim.Conversation {
	return sim.Conversation{Messages: []sim.Message{{Role: "user", Text: prompt}}}
}

// Run measures st on sc against a fresh simulator on a real socket.
func Run(ctx context.Context, sc Scenario, st Strategy) (Result, error) {
	srv := sim.New(sc.Sim)
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	start := time.Now()
	outs := st.Run(ctx, ts.URL, "sk-bench-"+st.Name(), sc)
	makespan := time.Since(start)
	if len(outs) != len(sc.Requests) {
		return Result{}, fmt.Errorf("bench: strategy %s returned %d outcomes for %d requests", st.Name(), len(outs), len(sc.Requests))
	}
	res := Result{Scenario: sc.Name, Strategy: st.Name(), Requests: len(sc.Requests), Makespan: makespan, TheoreticalMin: TheoreticalMin(sc)}
	lat := make([]time.Duration, 0, len(outs))
	for i, o := range outs {
		lat = append(lat, o.Latency)
		switch {
		case o.Err != nil:
			res.Failed++
		case o.Text != sc.Requests[i].Want:
			res.TruncatedSuccesses++
		default:
			res.Completed++
			res.UsefulOutput += int64(sc.Requests[i].Tokens)
		}
	}
	var generated int64
	log := srv.Log()
	for _, rec := range log {
		if rec.Endpoint != "messages" {
			continue
		}
		generated += int64(rec.OutputTokens)
		if rec.Status == 429 {
			res.Upstream429++
		}
		if rec.End == sim.EndRateLimitedMidstream {
			res.MidStream++
		}
	}
	res.Attempts = float64(len(log)) / float64(len(sc.Requests))
	res.WastedOutput = max(generated-res.UsefulOutput, 0)
	if generated > 0 {
		res.WastedPct = 100 * float64(res.WastedOutput) / float64(generated)
	}
	res.Per1000 = 1000 * float64(res.Upstream429) / float64(len(sc.Requests))
	if res.TheoreticalMin > 0 {
		res.Ratio = float64(res.Makespan) / float64(res.TheoreticalMin)
	}
	if w, otpm := sc.Sim.Window, sc.Sim.Anthropic.OTPM; w > 0 && otpm > 0 && makespan > 0 {
		res.Goodput = float64(res.UsefulOutput) / makespan.Seconds() / (float64(otpm) / w.Seconds())
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.P50 = lat[n/2]
		res.P99 = lat[min(n-1, n*99/100)]
	}
	return res, nil
}
