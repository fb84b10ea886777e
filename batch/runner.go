package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/cost"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
	"github.com/streamgate/streamgate/timeline"
)

// Strategy is how a run sends its requests.
type Strategy uint8

const (
	// Streamgate sends every request through a streamgate.Transport:
	// admission against the learned budget, retries honouring
	// retry-after, live output charging, resumption. The default.
	Streamgate Strategy = iota
	// Naive is the baseline streamgate is measured against: every request
	// at once on a plain http.Client, no rate-limit headers read, a fixed
	// delay (Config.RetryDelay, default 1s) before retrying a 429, 5xx,
	// 529 or broken stream from scratch, at most Config.MaxAttempts
	// attempts.
	Naive
)

// String returns "streamgate" or "naive".
func (s Strategy) String() string {
	if s == Naive {
		return "naive"
	}
	return "streamgate"
}

// The Streamgate strategy's output reservation: once OutputSamples answers
// of a model have completed, a request reserves the OutputQuantile of
// their lengths (times the safety factor, at most its max_tokens) instead
// of its max_tokens. A batch is many similar requests, so the lengths seen
// predict the next ones; a longer answer is still charged live.
const (
	OutputQuantile = 0.95
	OutputSamples  = 5
)

// Defaults of Config.
const (
	DefaultConcurrency      = 256
	DefaultMaxAttempts      = 5
	DefaultRetryDelay       = time.Second
	DefaultProgressInterval = time.Second
	DefaultAnthropicBaseURL = "https://api.anthropic.com"
	DefaultOpenAIBaseURL    = "https://api.openai.com"
)

// Config configures Run. The zero value of every field means its
// documented default; InPath (or In), OutPath and APIKey are required.
type Config struct {
	// InPath is the input file; In, when non-nil, is read instead; and
	// Workload, when non-nil, is an input already parsed (ParseRequests).
	InPath   string
	In       io.Reader
	Workload *Workload
	// OutPath is the results file: created if missing, else resumed
	// (requests whose custom_id it already has are skipped).
	OutPath string
	// SkipInvalid runs the valid lines of an input with invalid ones
	// (listed in Summary.Invalid) instead of refusing it.
	SkipInvalid bool

	// BaseURL is the API's base URL. Default DefaultAnthropicBaseURL or
	// DefaultOpenAIBaseURL by the input's format.
	BaseURL string
	// APIKey is sent as x-api-key (Anthropic) or a bearer token (OpenAI).
	APIKey string

	// Strategy is how requests are sent (default Streamgate).
	Strategy Strategy
	// Upstream sends the HTTP requests (under the streamgate.Transport for
	// the Streamgate strategy). Default: a clone of http.DefaultTransport.
	Upstream http.RoundTripper
	// Window is the providers' rate-limit window (default one minute; a
	// time-scaled simulator uses less).
	Window time.Duration
	// Limits are configured limits for every model class of the workload,
	// used until response headers report the real ones. Zero fields are
	// unknown.
	Limits streamgate.Limits
	// TransportOptions are extra options for the streamgate.Transport
	// (applied after the runner's own).
	TransportOptions []streamgate.Option

	// Concurrency bounds the requests in flight (default
	// DefaultConcurrency; the Transport's gate decides admission within
	// it). The Naive strategy ignores it: every request at once.
	Concurrency int
	// MaxAttempts bounds the runner's attempts per request (default
	// DefaultMaxAttempts); the Transport's own retries happen inside one
	// attempt. A request still failing after them is left Pending.
	MaxAttempts int
	// RetryDelay is the Naive strategy's fixed retry delay and the
	// Streamgate strategy's base backoff when an attempt fails without a
	// retry-after (default DefaultRetryDelay).
	RetryDelay time.Duration

	// OnProgress, if set, is called with a Progress every
	// ProgressInterval (default DefaultProgressInterval) and once at the
	// end (Progress.Finished).
	OnProgress       func(Progress)
	ProgressInterval time.Duration
	// Timeline, if set, records the run: the Transport's events, budget
	// levels and progress, one sample every ProgressInterval. The caller
	// closes it.
	Timeline *timeline.Recorder
	// Name labels the run in the timeline (default the strategy's name).
	Name string
}

func (c Config) withDefaults(f Format) Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultAnthropicBaseURL
		if f == OpenAI {
			c.BaseURL = DefaultOpenAIBaseURL
		}
	}
	if c.Window <= 0 {
		c.Window = time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.Name == "" {
		c.Name = c.Strategy.String()
	}
	return c
}

// Errors of Run's configuration.
var (
	// ErrNoOutput means Config.OutPath is empty.
	ErrNoOutput = errors.New("batch: no results file")
	// ErrNoAPIKey means Config.APIKey is empty and there is work to do.
	ErrNoAPIKey = errors.New("batch: no API key")
	// ErrFormatMismatch means the results file holds lines of another
	// format than the input.
	ErrFormatMismatch = errors.New("batch: results file format differs from the input's")
	// ErrIncomplete is returned (wrapped) by Run when requests are left
	// Pending: rerun with the same results file to finish them.
	ErrIncomplete = errors.New("batch: requests left without a result")
)

// Failure is a request left Pending, with the last error it met.
type Failure struct {
	CustomID string
	Line     int
	Err      error
}

// ReadWorkload reads the input of cfg (Workload, In or InPath).
func ReadWorkload(cfg Config) (Workload, error) {
	if cfg.Workload != nil {
		return *cfg.Workload, nil
	}
	if cfg.In != nil {
		return ParseRequests(cfg.In)
	}
	f, err := os.Open(cfg.InPath)
	if err != nil {
		return Workload{}, fmt.Errorf("batch: opening input: %w", err)
	}
	defer f.Close()
	return ParseRequests(f)
}

// Run runs the batch described by cfg until every request has a result,
// ctx is done, or a request exhausts its attempts; see the package
// documentation for the guarantees. The Summary is valid (as far as the
// run got) whatever the error. An input with invalid lines returns an
// *InputError before anything is sent, unless cfg.SkipInvalid; requests
// left without a result return an error wrapping ErrIncomplete, with
// Summary.Failures saying why.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	wl, err := ReadWorkload(cfg)
	if err != nil {
		return Summary{}, err
	}
	cfg = cfg.withDefaults(wl.Format)
	sum := Summary{Format: wl.Format, Strategy: cfg.Strategy, Requests: len(wl.Requests), Window: cfg.Window}
	if len(wl.Invalid) > 0 {
		if !cfg.SkipInvalid {
			return sum, &InputError{Lines: wl.Invalid}
		}
		sum.Invalid = wl.Invalid
	}
	if cfg.OutPath == "" {
		return sum, ErrNoOutput
	}
	out, rf, err := openOutFile(cfg.OutPath)
	if err != nil {
		return sum, err
	}
	defer out.close()
	sum.TornBytes = rf.Torn
	if rf.Format != FormatUnknown && wl.Format != FormatUnknown && rf.Format != wl.Format {
		return sum, fmt.Errorf("%w: %s results, %s input", ErrFormatMismatch, rf.Format, wl.Format)
	}
	done := rf.Done()
	var todo []Request
	for _, r := range wl.Requests {
		if _, ok := done[r.CustomID]; ok {
			sum.AlreadyDone++
		} else {
			todo = append(todo, r)
		}
	}
	r := &run{cfg: cfg, out: out, col: newCollector(cfg.Strategy == Naive, cfg.Window), format: wl.Format, wake: make(chan struct{}, 1)}
	r.col.total, r.col.prior = len(wl.Requests), sum.AlreadyDone
	if len(todo) == 0 {
		r.col.summary(&sum)
		return sum, nil
	}
	if cfg.APIKey == "" {
		return sum, ErrNoAPIKey
	}
	err = r.execute(ctx, todo, &sum)
	return sum, err
}

// run is one execution of Run.
type run struct {
	cfg    Config
	out    *outFile
	col    *collector
	format Format
	ep     endpoint
	client *http.Client
	tr     *streamgate.Transport

	// active counts requests handed to workers and not finished; wake is
	// signalled when it drops or admission progresses.
	active atomic.Int64
	wake   chan struct{}

	mu       sync.Mutex
	failures []Failure
	fatal    error
}

// QueueAhead is how many requests the Streamgate strategy keeps waiting in
// the Transport's gate beyond those it has admitted: enough that the gate
// always has the next request at hand, few enough that each request's cost
// is estimated (when it enters the gate) shortly before its admission,
// with what the Transport has learned by then.
const QueueAhead = 4

// canSubmit reports whether another request may be started.
func (r *run) canSubmit(concurrency int) bool {
	n := int(r.active.Load())
	if n >= concurrency {
		return false
	}
	if r.tr == nil {
		return true
	}
	running := 0
	for _, st := range r.tr.Keys() {
		running += st.InFlight
	}
	return n < running+QueueAhead
}

// signal wakes the feeder without blocking.
func (r *run) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *run) execute(ctx context.Context, todo []Request, sum *Summary) error {
	cfg := r.cfg
	upstream := cfg.Upstream
	if upstream == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 512
		defer t.CloseIdleConnections()
		upstream = t
	}
	r.ep = endpoint{format: r.format, baseURL: cfg.BaseURL, apiKey: cfg.APIKey, naive: cfg.Strategy == Naive}
	classes := map[string]bool{}
	for _, q := range todo {
		classes[streamgate.DefaultModelClass(providerOf(q.Format), q.Model)] = true
	}
	lim := Cost{}
	lim[ratelimit.Requests], lim[ratelimit.InputTokens] = cfg.Limits.Requests, cfg.Limits.InputTokens
	lim[ratelimit.OutputTokens], lim[ratelimit.Tokens] = cfg.Limits.OutputTokens, cfg.Limits.Tokens
	for c := range classes {
		r.col.configure(c, lim)
	}
	concurrency := cfg.Concurrency
	if cfg.Strategy == Naive {
		concurrency = len(todo)
		r.client = &http.Client{Transport: upstream}
	} else {
		opts := []streamgate.Option{
			streamgate.WithBase(upstream),
			streamgate.WithWindow(cfg.Window),
			streamgate.WithGate(gate.Config{MaxQueue: max(gate.DefaultMaxQueue, 2*concurrency)}),
			streamgate.WithObserver(func(e streamgate.Event) {
				r.col.event(e.Key.ModelClass, e)
				if e.Kind == streamgate.EventAdmitted || e.Kind == streamgate.EventHeaders {
					r.signal()
				}
				if cfg.Timeline != nil {
					cfg.Timeline.Event(cfg.Name, e)
				}
			}),
		}
		if cfg.Limits != (streamgate.Limits{}) {
			for c := range classes {
				opts = append(opts, streamgate.WithLimits(providerOf(r.format), c, cfg.Limits))
			}
		}
		opts = append(opts, streamgate.WithOutputPolicy(cost.ReserveQuantile, OutputQuantile, OutputSamples))
		opts = append(opts, cfg.TransportOptions...)
		r.tr = streamgate.NewTransport(opts...)
		defer r.tr.Close()
		r.client = &http.Client{Transport: r.tr}
	}
	concurrency = min(concurrency, len(todo))

	start := time.Now()
	r.col.start = start
	sum.Start = start
	if cfg.Timeline != nil {
		cfg.Timeline.Run(timeline.RunInfo{Name: cfg.Name, Start: start, Window: cfg.Window, Total: len(todo) + sum.AlreadyDone, Strategy: cfg.Strategy.String()})
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	jobs := make(chan Request)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range jobs {
				r.do(runCtx, q, cancel)
				r.active.Add(-1)
				r.signal()
			}
		}()
	}
	stopProgress := r.startProgress(start)
feed:
	for _, q := range todo {
		for !r.canSubmit(concurrency) {
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-r.wake:
			case <-t.C:
			case <-runCtx.Done():
				t.Stop()
				break feed
			}
			t.Stop()
		}
		r.active.Add(1)
		select {
		case jobs <- q:
		case <-runCtx.Done():
			r.active.Add(-1)
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	end := time.Now()
	stopProgress(end)
	sum.Makespan = end.Sub(start)
	r.col.summary(sum)
	sum.Pending = len(todo) - sum.Succeeded - sum.Errored
	r.mu.Lock()
	defer r.mu.Unlock()
	sum.Failures = r.failures
	if cfg.Timeline != nil {
		if err := cfg.Timeline.Flush(); err != nil && r.fatal == nil {
			r.fatal = err
		}
	}
	switch {
	case r.fatal != nil:
		return r.fatal
	case sum.Pending > 0 && ctx.Err() != nil:
		return fmt.Errorf("%w: %d pending: %w", ErrIncomplete, sum.Pending, ctx.Err())
	case sum.Pending > 0:
		return fmt.Errorf("%w: %d pending after %d attempts each; rerun to resume", ErrIncomplete, sum.Pending, cfg.MaxAttempts)
	}
	return nil
}

// startProgress reports progress every interval until the returned stop
// function is called (with the end time).
func (r *run) startProgress(start time.Time) func(time.Time) {
	cfg := r.cfg
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sample := func(now time.Time, final bool) {
		p := r.col.progress(now)
		p.Finished = final
		if cfg.OnProgress != nil {
			cfg.OnProgress(p)
		}
		if tl := cfg.Timeline; tl != nil {
			tl.Progress(now, timeline.ProgressInfo{Name: cfg.Name, Done: p.Done, Total: p.Total, OutputTokens: p.OutputTokens, UsefulTokens: p.UsefulOutputTokens, InFlight: p.InFlight})
			r.sampleBudget(tl, now)
		}
	}
	sample(start, false)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(cfg.ProgressInterval)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tk.C:
				sample(now, false)
			}
		}
	}()
	return func(end time.Time) {
		close(stop)
		wg.Wait()
		sample(end, true)
	}
}

// sampleBudget records the Transport's view of every budget.
func (r *run) sampleBudget(tl *timeline.Recorder, now time.Time) {
	if r.tr == nil {
		return
	}
	for k := range r.tr.Keys() {
		v, err := r.tr.Budget().View(context.Background(), k)
		if err == nil {
			tl.Budget(now, r.cfg.Name, k.ModelClass, v)
		}
	}
}

// do runs one request to a result, or until its attempts are exhausted.
func (r *run) do(ctx context.Context, q Request, abort context.CancelFunc) {
	class := streamgate.DefaultModelClass(providerOf(q.Format), q.Model)
	body, err := streamBody(q)
	if err != nil {
		r.fail(q, err)
		return
	}
	var last error
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			r.fail(q, errors.Join(last, ctx.Err()))
			return
		}
		r.col.begin(attempt > 1)
		var deltas int64
		o := r.ep.attempt(ctx, r.client, q, body, func(a assembler) {
			for n := a.streamed(); deltas < n; deltas++ {
				r.col.delta(class)
			}
		})
		if o.result != nil {
			if err := r.out.append(*o.result); err != nil {
				r.mu.Lock()
				if r.fatal == nil {
					r.fatal = err
				}
				r.mu.Unlock()
				abort()
				o.result, o.err = nil, err
			}
		}
		r.col.finish(class, o, deltas, q)
		if r.cfg.Strategy == Naive && r.cfg.Timeline != nil && o.sent {
			r.cfg.Timeline.Event(r.cfg.Name, naiveEvent(q, o, attempt))
		}
		if o.result != nil {
			return
		}
		last = o.err
		if attempt >= r.cfg.MaxAttempts || ctx.Err() != nil {
			r.fail(q, last)
			return
		}
		if err := sleep(ctx, r.delay(attempt, o)); err != nil {
			r.fail(q, errors.Join(last, err))
			return
		}
	}
}

// naiveEvent describes a naive attempt as the Event a Transport would
// have emitted at its end, for the timeline.
func naiveEvent(q Request, o outcome, attempt int) streamgate.Event {
	e := streamgate.Event{Kind: streamgate.EventCompleted, Time: time.Now(), Model: q.Model, Attempt: attempt,
		Status: o.status, InputTokens: o.in, OutputTokens: o.out}
	if o.result == nil || o.result.Status != Succeeded {
		e.Kind, e.Err = streamgate.EventFailed, o.err
		if o.rateLimited {
			e.Class = apierr.RateLimited
		}
	}
	return e
}

// delay is the wait before attempt n+1 after a failed attempt n.
func (r *run) delay(n int, o outcome) time.Duration {
	if r.cfg.Strategy == Naive {
		return r.cfg.RetryDelay
	}
	if o.retryAfter > 0 {
		return o.retryAfter
	}
	if o.midStream {
		// The Transport's gate paces the new attempt.
		return 0
	}
	d := r.cfg.RetryDelay << min(n-1, 16)
	return min(d, r.cfg.Window)
}

func (r *run) fail(q Request, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, Failure{CustomID: q.CustomID, Line: q.Line, Err: err})
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
