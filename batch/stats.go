package batch

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/ratelimit"
)

// Cost is an amount per rate-limit dimension, indexed by
// ratelimit.Dimension (requests, input tokens, output tokens, combined
// tokens, ...).
type Cost [ratelimit.NumDimensions]int64

// Progress is a snapshot of a running batch, delivered to
// Config.OnProgress.
type Progress struct {
	// Total is the number of requests in the workload (valid lines).
	Total int
	// Done is the number with a result: those done by an earlier run plus
	// those recorded by this one.
	Done int
	// Succeeded and Errored count the results recorded by this run.
	Succeeded, Errored int
	// InFlight is the number of requests being attempted now.
	InFlight int
	// Elapsed is the time since the run started sending.
	Elapsed time.Duration
	// OutputTokens is the output received this run (including output of
	// attempts that failed).
	OutputTokens int64
	// OutputTokensPerSecond is the recent output rate.
	OutputTokensPerSecond float64
	// UsefulOutputTokens is the output of the answers recorded as
	// succeeded by this run.
	UsefulOutputTokens int64
	// Binding is the dimension with the highest recent utilisation, and
	// Utilisation that utilisation: the recent draw on the dimension
	// divided by its refill rate (limit / window). Utilisation is -1 while
	// no limit is known.
	Binding     ratelimit.Dimension
	Utilisation float64
	// RateLimited, Retries and Resumes count rate-limit errors received,
	// attempts repeated and streams resumed in place so far.
	RateLimited, Retries, Resumes int
	// ETA estimates the time left from the pace so far; -1 when unknown.
	ETA time.Duration
	// Finished is set on the last Progress of a run.
	Finished bool
}

// DimensionSummary is what a run needed and drew in one dimension of one
// rate-limit budget.
type DimensionSummary struct {
	// ModelClass names the budget (e.g. "claude-sonnet-4").
	ModelClass string
	// Dimension is the rate-limited quantity.
	Dimension ratelimit.Dimension
	// Limit is the learned (or configured) limit per Window.
	Limit int64
	// Needed is what the requests recorded as succeeded by this run
	// needed: one request each, their input tokens, their output tokens
	// (for OpenAI's combined tokens, prompt plus max_tokens, which is what
	// the provider charges).
	Needed int64
	// Drawn is what every attempt of this run drew, failed ones included.
	Drawn int64
	// MinTime is this dimension's share of the theoretical minimum:
	// max(0, Needed - Limit) / (Limit / Window).
	MinTime time.Duration
	// Utilisation is Drawn divided by what the budget could grant during
	// the run: Limit (a full bucket at the start) + Limit/Window x
	// Makespan.
	Utilisation float64
}

// Summary is the account of a run.
type Summary struct {
	// Format is the workload's format and Strategy how it was sent.
	Format   Format
	Strategy Strategy
	// Requests is the number of valid requests in the input.
	Requests int
	// AlreadyDone is the number skipped because the results file already
	// had them.
	AlreadyDone int
	// Succeeded and Errored are the results recorded by this run.
	Succeeded, Errored int
	// Pending is the number left without a result: transient failures
	// beyond Config.MaxAttempts, or the run was cancelled. A rerun with the
	// same results file sends them again.
	Pending int
	// Failures are the Pending requests with the last error each met.
	Failures []Failure
	// Invalid are the input lines skipped (Config.SkipInvalid).
	Invalid []LineError
	// TornBytes is the size of the torn last line truncated from the
	// results file (a previous run was killed while writing it).
	TornBytes int64
	// Start is when the run started sending and Makespan how long it took
	// until the last result.
	Start    time.Time
	Makespan time.Duration
	// Window is the rate-limit window the limits are per.
	Window time.Duration
	// TheoreticalMin is the shortest time any scheduler could have taken
	// for the requests this run completed, under the learned limits:
	// max(BudgetMin, LongestStream).
	TheoreticalMin time.Duration
	// BudgetMin is the largest DimensionSummary.MinTime: the time the
	// binding dimension needs at its refill rate, from a full budget. Zero
	// when no limit is known or the work fits in a full budget.
	BudgetMin time.Duration
	// Binding is the dimension of BudgetMin (BindingClass its budget);
	// meaningful when BudgetMin > 0.
	Binding      ratelimit.Dimension
	BindingClass string
	// LongestStream is the longest time one succeeded response took from
	// its headers to its end: no schedule can finish sooner.
	LongestStream time.Duration
	// Dimensions lists every dimension with a known limit.
	Dimensions []DimensionSummary
	// InputTokens and OutputTokens are the usage of the succeeded results.
	InputTokens, OutputTokens int64
	// Attempts is the number of upstream requests made (retries and
	// continuations included).
	Attempts int
	// RateLimited counts rate-limit errors received (429 responses and
	// mid-stream rate_limit_error events).
	RateLimited int
	// Retries counts attempts repeated, by the Transport or the runner.
	Retries int
	// Resumes counts continuations of interrupted streams the Transport
	// made in place (streamgate.EventResume).
	Resumes int
	// MidStreamFailures counts streams that broke after they had started
	// and had to be sent again from scratch.
	MidStreamFailures int
	// WastedOutputTokens is output produced for attempts whose answer was
	// thrown away.
	WastedOutputTokens int64
}

// collector gathers a run's counters from attempt outcomes and, for the
// streamgate strategy, from the Transport's events. Safe for concurrent
// use.
type collector struct {
	mu       sync.Mutex
	naive    bool
	start    time.Time
	window   time.Duration
	attempts int
	rl       int
	retries  int
	resumes  int
	mid      int
	wasted   int64
	liveOut  int64
	useful   int64
	longest  time.Duration
	inFlight int
	done     int
	succ     int
	errd     int
	total    int
	prior    int
	classes  map[string]*classStats
	samples  []sample // recent cumulative draws, for rates
}

type classStats struct {
	limits     Cost // learned (>0) or configured; 0 unknown
	configured Cost
	drawn      Cost
	needed     Cost
}

type sample struct {
	t     time.Time
	drawn map[string]Cost
	out   int64
}

func newCollector(naive bool, window time.Duration) *collector {
	return &collector{naive: naive, window: window, classes: map[string]*classStats{}}
}

// class returns the stats of a model class; requires c.mu held.
func (c *collector) class(name string) *classStats {
	cs := c.classes[name]
	if cs == nil {
		cs = &classStats{}
		c.classes[name] = cs
	}
	return cs
}

// configure sets configured limits for a class (used until headers teach
// the real ones).
func (c *collector) configure(class string, l Cost) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.class(class)
	cs.configured = l
}

// learn adopts the limits a response reported; requires c.mu held.
func (cs *classStats) learn(s *ratelimit.Snapshot) {
	if s == nil {
		return
	}
	for d, b := range s.Buckets {
		if b.Limit > 0 {
			cs.limits[d] = b.Limit
		}
	}
}

func (cs *classStats) limit(d int) int64 {
	if cs.limits[d] > 0 {
		return cs.limits[d]
	}
	return cs.configured[d]
}

// event observes the Transport's events (streamgate strategy).
func (c *collector) event(class string, e streamgate.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case e.Kind == streamgate.EventHeaders:
		c.attempts++
		cs := c.class(class)
		cs.learn(e.Snapshot)
		if e.Status == 429 {
			c.rl++
		}
		if e.Status >= 200 && e.Status <= 299 {
			cs.drawn[ratelimit.Requests]++
		}
	case e.Kind == streamgate.EventRetry:
		c.retries++
	case e.Kind == streamgate.EventResume:
		// The Transport is continuing an interrupted stream in place: the
		// interruption (a mid-stream rate-limit error, say) is healed, and
		// only what never reached the caller is wasted.
		c.resumes++
		c.wasted += max(e.Wasted, 0)
		if e.Class == apierr.RateLimited {
			c.rl++
		}
	}
}

// delta counts one content delta received (live output).
func (c *collector) delta(class string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.liveOut++
	c.class(class).drawn[ratelimit.OutputTokens]++
}

// begin and finish bracket one attempt.
func (c *collector) begin(isRetry bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight++
	if isRetry {
		c.retries++
	}
}

// finish records an attempt's outcome; deltas is the number of deltas
// already counted live for it.
func (c *collector) finish(class string, o outcome, deltas int64, req Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
	cs := c.class(class)
	if o.out >= 0 && o.out != deltas {
		// Correct the live count with the reported usage.
		cs.drawn[ratelimit.OutputTokens] += o.out - deltas
		c.liveOut += o.out - deltas
	}
	if o.in > 0 {
		cs.drawn[ratelimit.InputTokens] += o.in
	}
	if c.naive {
		if o.sent {
			c.attempts++
			cs.learn(o.snap)
			if o.status >= 200 && o.status <= 299 {
				cs.drawn[ratelimit.Requests]++
			}
		}
		if o.rateLimited {
			c.rl++
		}
	} else if o.rateLimited && o.midStream {
		c.rl++ // a mid-stream rate-limit error has no 429 response
	}
	if o.midStream {
		c.mid++
	}
	c.wasted += o.wasted
	if o.result == nil {
		return
	}
	c.done++
	if o.result.Status != Succeeded {
		c.errd++
		return
	}
	c.succ++
	c.longest = max(c.longest, o.streamTime)
	in, out := max(o.in, 0), max(o.out, 0)
	cs.needed[ratelimit.Requests]++
	cs.needed[ratelimit.InputTokens] += in
	cs.needed[ratelimit.OutputTokens] += out
	c.useful += out
	if req.Format == OpenAI {
		cs.needed[ratelimit.Tokens] += in + max(req.MaxTokens, out)
	} else {
		cs.needed[ratelimit.Tokens] += in + out
	}
	if req.Format == OpenAI {
		cs.drawn[ratelimit.Tokens] += in + max(req.MaxTokens, out)
	}
}

// progress computes a Progress at now and records a rate sample.
func (c *collector) progress(now time.Time) Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := Progress{
		Total: c.total, Done: c.prior + c.done, Succeeded: c.succ, Errored: c.errd,
		InFlight: c.inFlight, Elapsed: now.Sub(c.start), OutputTokens: c.liveOut, UsefulOutputTokens: c.useful,
		RateLimited: c.rl, Retries: c.retries, Resumes: c.resumes, ETA: -1, Utilisation: -1,
	}
	s := sample{t: now, out: c.liveOut, drawn: map[string]Cost{}}
	for name, cs := range c.classes {
		d := cs.drawn
		// The combined tokens dimension counts input and output.
		d[ratelimit.Tokens] = max(d[ratelimit.Tokens], d[ratelimit.InputTokens]+d[ratelimit.OutputTokens])
		s.drawn[name] = d
	}
	c.samples = append(c.samples, s)
	// Keep about ten seconds (or a sixth of the window) of samples.
	span := max(10*time.Second, c.window/6)
	for len(c.samples) > 2 && now.Sub(c.samples[1].t) >= span {
		c.samples = c.samples[1:]
	}
	old := c.samples[0]
	if dt := now.Sub(old.t).Seconds(); dt > 0 {
		p.OutputTokensPerSecond = float64(s.out-old.out) / dt
		for name, cs := range c.classes {
			for d := range ratelimit.NumDimensions {
				l := cs.limit(d)
				if l <= 0 || c.window <= 0 {
					continue
				}
				rate := float64(l) / c.window.Seconds()
				u := float64(s.drawn[name][d]-old.drawn[name][d]) / dt / rate
				if u > p.Utilisation {
					p.Utilisation, p.Binding = u, ratelimit.Dimension(d)
				}
			}
		}
	}
	if c.done > 0 && p.Done < p.Total {
		per := p.Elapsed.Seconds() / float64(c.done)
		p.ETA = time.Duration(per * float64(p.Total-p.Done) * float64(time.Second))
	} else if p.Done >= p.Total {
		p.ETA = 0
	}
	return p
}

// summary fills the counters of s at the end of a run.
func (c *collector) summary(s *Summary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.Succeeded, s.Errored = c.succ, c.errd
	s.Attempts, s.RateLimited, s.Retries, s.Resumes = c.attempts, c.rl, c.retries, c.resumes
	s.MidStreamFailures, s.WastedOutputTokens = c.mid, c.wasted
	s.Window = c.window
	s.LongestStream = c.longest
	names := make([]string, 0, len(c.classes))
	for n := range c.classes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		cs := c.classes[name]
		s.InputTokens += cs.needed[ratelimit.InputTokens]
		s.OutputTokens += cs.needed[ratelimit.OutputTokens]
		for d := range ratelimit.NumDimensions {
			l := cs.limit(d)
			if l <= 0 {
				continue
			}
			drawn := cs.drawn[d]
			if ratelimit.Dimension(d) == ratelimit.Tokens {
				drawn = max(drawn, cs.drawn[ratelimit.InputTokens]+cs.drawn[ratelimit.OutputTokens])
			}
			ds := DimensionSummary{
				ModelClass: name, Dimension: ratelimit.Dimension(d), Limit: l,
				Needed: cs.needed[d], Drawn: drawn,
				MinTime: MinTime(cs.needed[d], l, c.window),
			}
			if avail := float64(l) + float64(l)*s.Makespan.Seconds()/c.window.Seconds(); avail > 0 {
				ds.Utilisation = float64(drawn) / avail
			}
			s.Dimensions = append(s.Dimensions, ds)
			if ds.MinTime > s.BudgetMin {
				s.BudgetMin, s.Binding, s.BindingClass = ds.MinTime, ds.Dimension, name
			}
		}
	}
	s.TheoreticalMin = max(s.BudgetMin, s.LongestStream)
}

// MinTime is the shortest time in which a budget of limit per window,
// full at the start, can grant need: max(0, need - limit) divided by the
// refill rate limit/window. It is the formula of Summary.TheoreticalMin.
func MinTime(need, limit int64, window time.Duration) time.Duration {
	if limit <= 0 || window <= 0 || need <= limit {
		return 0
	}
	sec := float64(need-limit) / (float64(limit) / window.Seconds())
	if sec > math.MaxInt64/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(sec * float64(time.Second))
}
