package batch

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/cost"
	"github.com/streamgate/streamgate/ratelimit"
)

// PlanConfig configures Estimate.
type PlanConfig struct {
	// Limits are the account's limits per Window for every model class
	// (zero fields unknown).
	Limits streamgate.Limits
	// Window is the limits' window (default one minute).
	Window time.Duration
	// OutputTokens, if positive, is the expected answer length per
	// request (capped by each request's max_tokens); otherwise every
	// answer is assumed to reach max_tokens, an upper bound.
	OutputTokens int64
	// DefaultMaxTokens is assumed for OpenAI requests without max_tokens
	// (default 4096).
	DefaultMaxTokens int64
}

// ClassPlan is the estimate for one model class (one budget).
type ClassPlan struct {
	ModelClass string
	Requests   int
	// Needed is the estimated draw per dimension: requests, input tokens
	// (about four characters a token), output tokens, and the combined
	// tokens (input + output; OpenAI charges input + max_tokens).
	Needed Cost
	// MinTime is the time the binding dimension needs at its refill rate,
	// from a full budget: max over dimensions of MinTime(needed, limit,
	// window).
	MinTime time.Duration
	Binding ratelimit.Dimension
}

// Plan is a dry run's estimate of a workload.
type Plan struct {
	Format   Format
	Requests int
	Limits   streamgate.Limits
	Window   time.Duration
	// UpperBound reports that output was estimated as max_tokens.
	UpperBound bool
	Classes    []ClassPlan
	// Time is the largest ClassPlan.MinTime (classes run in parallel), and
	// Binding and BindingClass say where it comes from.
	Time         time.Duration
	Binding      ratelimit.Dimension
	BindingClass string
}

// Estimate plans w under cfg without sending anything.
func Estimate(w Workload, cfg PlanConfig) Plan {
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.DefaultMaxTokens <= 0 {
		cfg.DefaultMaxTokens = 4096
	}
	p := Plan{Format: w.Format, Requests: len(w.Requests), Limits: cfg.Limits, Window: cfg.Window, UpperBound: cfg.OutputTokens <= 0}
	byClass := map[string]*ClassPlan{}
	for _, r := range w.Requests {
		class := streamgate.DefaultModelClass(providerOf(r.Format), r.Model)
		cp := byClass[class]
		if cp == nil {
			cp = &ClassPlan{ModelClass: class}
			byClass[class] = cp
		}
		api := cost.Messages
		if r.Format == OpenAI {
			api = cost.ChatCompletions
		}
		var in int64
		if parsed, err := cost.Parse(api, r.Body); err == nil {
			in = cost.RawInput(parsed)
		}
		maxOut := r.MaxTokens
		if maxOut <= 0 {
			maxOut = cfg.DefaultMaxTokens
		}
		out := maxOut
		if cfg.OutputTokens > 0 {
			out = min(out, cfg.OutputTokens)
		}
		cp.Requests++
		cp.Needed[ratelimit.Requests]++
		cp.Needed[ratelimit.InputTokens] += in
		cp.Needed[ratelimit.OutputTokens] += out
		if r.Format == OpenAI {
			cp.Needed[ratelimit.Tokens] += in + maxOut
		} else {
			cp.Needed[ratelimit.Tokens] += in + out
		}
	}
	lim := Cost{}
	lim[ratelimit.Requests], lim[ratelimit.InputTokens] = cfg.Limits.Requests, cfg.Limits.InputTokens
	lim[ratelimit.OutputTokens], lim[ratelimit.Tokens] = cfg.Limits.OutputTokens, cfg.Limits.Tokens
	for _, cp := range byClass {
		for d := range ratelimit.NumDimensions {
			if t := MinTime(cp.Needed[d], lim[d], cfg.Window); t > cp.MinTime {
				cp.MinTime, cp.Binding = t, ratelimit.Dimension(d)
			}
		}
		p.Classes = append(p.Classes, *cp)
		if cp.MinTime > p.Time {
			p.Time, p.Binding, p.BindingClass = cp.MinTime, cp.Binding, cp.ModelClass
		}
	}
	sort.Slice(p.Classes, func(i, j int) bool { return p.Classes[i].ModelClass < p.Classes[j].ModelClass })
	return p
}

// WriteText writes the plan for people, with the comparison against the
// provider's asynchronous batch API.
func (p Plan) WriteText(w io.Writer) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "dry run: %d requests (%s format); nothing was sent\n", p.Requests, p.Format)
	fmt.Fprintf(&sb, "limits per %s: %s\n", p.Window, limitsText(p.Limits))
	what := "output at the expected length"
	if p.UpperBound {
		what = "every answer reaching max_tokens (an upper bound; --expected-output sets a typical length)"
	}
	fmt.Fprintf(&sb, "estimated draw, %s:\n", what)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  budget\tdimension\tneeded\tlimit\ttime at the refill rate\n")
	lim := Cost{}
	lim[ratelimit.Requests], lim[ratelimit.InputTokens] = p.Limits.Requests, p.Limits.InputTokens
	lim[ratelimit.OutputTokens], lim[ratelimit.Tokens] = p.Limits.OutputTokens, p.Limits.Tokens
	for _, c := range p.Classes {
		for _, d := range []ratelimit.Dimension{ratelimit.Requests, ratelimit.InputTokens, ratelimit.OutputTokens, ratelimit.Tokens} {
			l := "unknown"
			t := "-"
			if lim[d] > 0 {
				l = fmt.Sprint(lim[d])
				t = round(MinTime(c.Needed[d], lim[d], p.Window)).String()
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", c.ModelClass, d, c.Needed[d], l, t)
		}
	}
	tw.Flush()
	if p.Time > 0 {
		fmt.Fprintf(&sb, "binding dimension: %s (%s); the batch needs at least %s under these limits\n",
			p.Binding, p.BindingClass, round(p.Time))
	} else {
		fmt.Fprintf(&sb, "no dimension binds: the workload fits in a full budget (the time is that of the longest answers)\n")
	}
	api := "Message Batches API"
	if p.Format == OpenAI {
		api = "Batch API"
	}
	fmt.Fprintf(&sb, "\nchoose:\n")
	fmt.Fprintf(&sb, "  streamgate batch:    full price; about %s or more (the minimum above plus ramp-up), results as they complete\n", round(p.Time))
	fmt.Fprintf(&sb, "  provider's %s: about half the price; turnaround up to 24 h, no results until each finishes,\n", api)
	fmt.Fprintf(&sb, "                       and its rate limits are separate from those of live requests\n")
	_, err := io.WriteString(w, sb.String())
	return err
}

func limitsText(l streamgate.Limits) string {
	f := func(n int64) string {
		if n <= 0 {
			return "unknown"
		}
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("requests %s, input tokens %s, output tokens %s, tokens %s",
		f(l.Requests), f(l.InputTokens), f(l.OutputTokens), f(l.Tokens))
}
