package streamgate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/cost"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
	"github.com/streamgate/streamgate/retry"
)

// Request headers streamgate reads and removes before forwarding.
const (
	// HeaderPriority chooses the admission priority: "interactive" (the
	// default) or "batch".
	HeaderPriority = "X-Streamgate-Priority"
	// HeaderResume set to "off" turns resuming interrupted streams off for
	// one request.
	HeaderResume = "X-Streamgate-Resume"
)

// Transport is an http.RoundTripper that schedules LLM API requests against
// the rate-limit budget of the key they carry. Requests it does not
// recognise (see Classify) pass through unchanged.
//
// A Transport is safe for concurrent use. Make one with NewTransport; the
// zero value is not usable. Close releases its gates.
type Transport struct {
	cfg         config
	budget      *budget.Budget
	est         *cost.Estimator
	policy      retry.Policy
	retryBudget *retry.Budget
	nextID      atomic.Uint64

	mu   sync.Mutex
	keys map[budget.Key]*keyState
}

var _ http.RoundTripper = (*Transport)(nil)

// keyState is the Transport's per-budget-key scheduling state.
type keyState struct {
	key  budget.Key
	gate *gate.Gate

	mu         sync.Mutex
	limitsSeen bool
	outputRate float64 // learned output limit per second, 0 if unknown
	streamRate float64 // EWMA of one stream's output tokens per second
}

// NewTransport returns a Transport configured by opts.
func NewTransport(opts ...Option) *Transport {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.gate == (gate.Config{}) {
		cfg.gate = scaledGate(cfg.window)
	}
	store := cfg.store
	if store == nil {
		store = budget.NewMemory(budget.WithWindow(cfg.window))
	}
	t := &Transport{
		cfg:    cfg,
		budget: budget.New(store),
		est:    cost.NewEstimator(cfg.estimatorOpts...),
		policy: cfg.policy,
		keys:   make(map[budget.Key]*keyState),
	}
	if cfg.retryRatio > 0 {
		t.retryBudget = retry.NewBudget(cfg.retryRatio, DefaultRetryAllowance)
	}
	t.policy.Budget = t.retryBudget
	return t
}

// scaledGate returns the default gate configuration with its opening-rate
// ramp scaled to the rate-limit window: a simulator whose "minute" is 6s
// runs ten times faster, and so may the ramp.
func scaledGate(window time.Duration) gate.Config {
	scale := 1.0
	if window > 0 && window < budget.DefaultWindow {
		scale = float64(budget.DefaultWindow) / float64(window)
	}
	return gate.Config{
		InitialOpenRate: gate.DefaultInitialOpenRate * scale,
		MinOpenRate:     gate.DefaultMinOpenRate * scale,
		MaxOpenRate:     gate.DefaultMaxOpenRate * scale,
	}
}

// Budget returns the budget the Transport schedules against (for status
// views and tests).
func (t *Transport) Budget() *budget.Budget { return t.budget }

// Estimator returns the Transport's cost estimator.
func (t *Transport) Estimator() *cost.Estimator { return t.est }

// Keys returns the budget keys the Transport has seen, with their gate
// statistics.
func (t *Transport) Keys() map[budget.Key]gate.Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[budget.Key]gate.Stats, len(t.keys))
	for k, ks := range t.keys {
		out[k] = ks.gate.Stats()
	}
	return out
}

// Close closes every gate: waiting requests fail with gate.ErrClosed.
// Streams already admitted run to their end.
func (t *Transport) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ks := range t.keys {
		ks.gate.Close()
	}
}

// keyState returns the state for key, creating it (and applying configured
// limits) on first use.
func (t *Transport) keyState(ctx context.Context, key budget.Key) *keyState {
	t.mu.Lock()
	ks := t.keys[key]
	if ks != nil {
		t.mu.Unlock()
		return ks
	}
	ks = &keyState{key: key, gate: gate.New(t.cfg.gate)}
	t.keys[key] = ks
	t.mu.Unlock()
	if l, ok := t.cfg.limits[key.Provider.String()+"/"+key.ModelClass]; ok {
		lim := budget.UnknownCost()
		set := func(d ratelimit.Dimension, v int64) {
			if v > 0 {
				lim[d] = v
			}
		}
		set(ratelimit.Requests, l.Requests)
		set(ratelimit.InputTokens, l.InputTokens)
		set(ratelimit.OutputTokens, l.OutputTokens)
		set(ratelimit.Tokens, l.Tokens)
		if err := t.budget.SetLimits(ctx, key, lim); err == nil {
			ks.limitsSeen = true
			ks.gate.SetConcurrency(math.MaxInt32)
		}
	}
	return ks
}

// learn adapts the key's concurrency limit after a response: once limits
// are known the budget does the limiting, bounded by what the output rate
// can sustain at the observed per-stream speed.
func (t *Transport) learn(ks *keyState, snap ratelimit.Snapshot, window time.Duration) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	known := false
	for _, b := range snap.Buckets {
		if b.Limit > 0 {
			known = true
		}
	}
	if !known && !ks.limitsSeen {
		return
	}
	ks.limitsSeen = true
	if b := snap.Buckets[ratelimit.OutputTokens]; b.Limit > 0 && window > 0 {
		ks.outputRate = float64(b.Limit) / window.Seconds()
	} else if b := snap.Buckets[ratelimit.Tokens]; b.Limit > 0 && window > 0 && ks.outputRate == 0 {
		ks.outputRate = float64(b.Limit) / window.Seconds()
	}
	ks.gate.SetConcurrency(ks.concurrencyLocked())
}

// concurrencyLocked requires ks.mu held.
func (ks *keyState) concurrencyLocked() int {
	if ks.outputRate <= 0 || ks.streamRate <= 0 {
		return math.MaxInt32 // clamped by the gate's MaxConcurrency
	}
	// Enough streams to draw the whole output rate, with headroom for
	// streams waiting on their first token.
	return int(math.Ceil(1.5*ks.outputRate/ks.streamRate)) + 1
}

// observeStreamRate records one completed stream's output speed.
func (ks *keyState) observeStreamRate(tokens int64, d time.Duration) {
	if tokens < 20 || d <= 0 {
		return
	}
	r := float64(tokens) / d.Seconds()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.streamRate == 0 {
		ks.streamRate = r
	} else {
		ks.streamRate = 0.2*r + 0.8*ks.streamRate
	}
	if ks.limitsSeen {
		ks.gate.SetConcurrency(ks.concurrencyLocked())
	}
}

// eachGate calls f for every gate of provider p.
func (t *Transport) eachGate(p ratelimit.Provider, f func(*gate.Gate)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, ks := range t.keys {
		if k.Provider == p {
			f(ks.gate)
		}
	}
}

func (t *Transport) emit(e Event) {
	if t.cfg.observer != nil {
		t.cfg.observer(e)
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ep := Classify(req)
	if ep == PassThrough || ep == AnthropicCountTokens {
		return t.cfg.base.RoundTrip(req)
	}
	body, err := readRequestBody(req, t.cfg.maxRequest)
	if err != nil {
		return nil, err
	}
	parsed, perr := cost.Parse(ep.api(), body)
	if perr != nil {
		// The provider will reject it with its own error; forward once.
		return t.cfg.base.RoundTrip(withBody(req, req.Context(), body))
	}
	c := &call{
		t:        t,
		req:      req,
		ctx:      req.Context(),
		ep:       ep,
		body:     body,
		parsed:   parsed,
		id:       t.nextID.Add(1),
		start:    time.Now(),
		priority: priorityOf(req),
	}
	c.key = budget.Key{
		Provider:    ep.provider(),
		Fingerprint: apiKeyFingerprint(req.Header),
		ModelClass:  t.cfg.modelClass(ep.provider(), parsed.Model),
	}
	c.ks = t.keyState(c.ctx, c.key)
	c.estimate = t.est.Estimate(parsed)
	c.sdkRetry = sdkRetryCount(req.Header) > 0
	return c.run()
}

// readRequestBody buffers the request body (the Transport must be able to
// send it again) up to max bytes.
func readRequestBody(req *http.Request, max int64) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(io.LimitReader(req.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("streamgate: reading request body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrRequestTooLarge, max)
	}
	return b, nil
}

// withBody clones req for one attempt with a fresh copy of body and
// streamgate's own headers removed.
func withBody(req *http.Request, ctx context.Context, body []byte) *http.Request {
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	r.Header.Del(HeaderPriority)
	r.Header.Del(HeaderResume)
	return r
}

type priorityKey struct{}

// WithPriority returns a context that gives requests made with it the
// admission priority p (the X-Streamgate-Priority header wins).
func WithPriority(ctx context.Context, p gate.Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

func priorityOf(req *http.Request) gate.Priority {
	switch strings.ToLower(strings.TrimSpace(req.Header.Get(HeaderPriority))) {
	case "batch":
		return gate.Batch
	case "interactive":
		return gate.Interactive
	}
	if p, ok := req.Context().Value(priorityKey{}).(gate.Priority); ok {
		return p
	}
	return gate.Interactive
}

// sdkRetryCount reads the official SDKs' x-stainless-retry-count header:
// a positive count means an SDK's own retry loop is resending.
func sdkRetryCount(h http.Header) int {
	n, err := strconv.Atoi(h.Get("X-Stainless-Retry-Count"))
	if err != nil {
		return 0
	}
	return n
}

// call is one RoundTrip of a scheduled request, across its attempts.
type call struct {
	t        *Transport
	req      *http.Request
	ctx      context.Context
	ep       Endpoint
	body     []byte
	parsed   cost.Request
	estimate cost.Estimate
	key      budget.Key
	ks       *keyState
	id       uint64
	start    time.Time
	priority gate.Priority
	sdkRetry bool
	attempt  int
	// cont marks a continuation request of a resumed stream.
	cont bool
}

func (c *call) event(k EventKind) Event {
	return Event{Kind: k, Time: time.Now(), ID: c.id, Endpoint: c.ep, Key: c.key, Model: c.parsed.Model, Attempt: c.attempt}
}

// costs returns what to charge at admission and what to hold for live
// output consumption.
func (c *call) costs() (charge, hold budget.Cost) {
	charge[ratelimit.Requests] = 1
	switch c.ep {
	case OpenAIChatCompletions:
		// OpenAI counts max_tokens (or its estimate) against TPM when the
		// request starts.
		charge[ratelimit.Tokens] = c.estimate.Input + c.estimate.Output
	default:
		charge[ratelimit.InputTokens] = c.estimate.Input
		charge[ratelimit.Tokens] = c.estimate.Input
		hold[ratelimit.OutputTokens] = c.estimate.Output
		hold[ratelimit.Tokens] = c.estimate.Output
	}
	return charge, hold
}

// admit waits in the key's gate until the budget admits the request.
func (c *call) admit(isRetry bool) (*budget.Reservation, *gate.Ticket, error) {
	var res *budget.Reservation
	var admitErr error
	var lastWait time.Duration
	ctx, cancel := context.WithCancelCause(c.ctx)
	defer cancel(nil)
	if mw := c.maxWait(); mw > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, mw)
		defer stop()
	}
	c.t.emit(c.event(EventQueued))
	ticket, err := c.ks.gate.Acquire(ctx, gate.Request{
		Priority: c.priority,
		Retry:    isRetry || c.sdkRetry,
		Admit: func(time.Time) (time.Duration, bool) {
			// Estimate at admission, not at arrival: a request queued
			// behind a backlog benefits from what the backlog taught.
			c.estimate = c.t.est.Estimate(c.parsed)
			charge, hold := c.costs()
			for range ratelimit.NumDimensions {
				r, result, err := c.t.budget.Reserve(ctx, c.key, charge, hold)
				var le *budget.LimitError
				if errors.As(err, &le) {
					// The request can never fit the bucket: let it take
					// the whole bucket rather than wait forever.
					if charge[le.Dimension] > le.Limit {
						charge[le.Dimension] = le.Limit
					}
					if hold[le.Dimension] > le.Limit-charge[le.Dimension] {
						hold[le.Dimension] = le.Limit - charge[le.Dimension]
					}
					continue
				}
				if err != nil {
					admitErr = err
					cancel(err)
					return 0, false
				}
				if !result.Admitted {
					lastWait = result.Wait
					return result.Wait, false
				}
				res = r
				return 0, true
			}
			return 0, false
		},
	})
	if err != nil {
		switch {
		case admitErr != nil:
			err = fmt.Errorf("streamgate: budget store: %w", admitErr)
		case c.ctx.Err() != nil:
			// The caller gave up: report its own error.
			err = c.ctx.Err()
		default:
			ae := &AdmissionError{Cause: err, RetryAfter: lastWait}
			var we *gate.WaitError
			if errors.As(err, &we) {
				ae.RetryAfter = we.Wait
			}
			if st := c.ks.gate.Stats(); ae.RetryAfter <= 0 {
				until := st.CooldownUntil
				if st.BackoffUntil.After(until) {
					until = st.BackoffUntil
				}
				ae.RetryAfter = max(time.Until(until), 0)
			}
			err = ae
		}
		ev := c.event(EventRejected)
		ev.Err = err
		c.t.emit(ev)
		return nil, nil, err
	}
	ev := c.event(EventAdmitted)
	ev.Wait = ticket.Waited()
	c.t.emit(ev)
	return res, ticket, nil
}

type maxWaitKey struct{}

// WithMaxWait returns a context whose requests wait at most d to be
// admitted (it bounds the queueing only, not the stream). It overrides
// the Transport's WithMaxAdmissionWait.
func WithMaxWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, maxWaitKey{}, d)
}

func (c *call) maxWait() time.Duration {
	if d, ok := c.ctx.Value(maxWaitKey{}).(time.Duration); ok {
		return d
	}
	return c.t.cfg.maxWait
}

// run sends the request, retrying what can be retried before any byte has
// reached the caller.
func (c *call) run() (*http.Response, error) {
	for c.attempt = 1; ; c.attempt++ {
		c.t.retryBudgetRequest(c.attempt)
		res, ticket, err := c.admit(c.attempt > 1)
		if err != nil {
			return nil, err
		}
		resp, aerr, err := c.attempt1(res, ticket)
		if aerr == nil {
			return resp, err
		}
		now := time.Now()
		dec := c.t.policy.Decide(retry.Attempt{
			N:      c.attempt,
			Err:    aerr,
			FullAt: c.fullAt(aerr),
			Start:  c.start,
			Now:    now,
		}, nil)
		c.signal(aerr, now, dec.Delay)
		if !dec.Retry {
			ev := c.event(EventFailed)
			ev.Status, ev.Class, ev.Err = aerr.StatusCode, aerr.Class, aerr
			c.t.emit(ev)
			if resp != nil {
				if aerr.Class.Retryable() {
					// streamgate owns retries: tell an SDK's own retry
					// loop not to multiply them.
					resp.Header.Set("X-Should-Retry", "false")
				}
				return resp, nil
			}
			return nil, aerr
		}
		if resp != nil {
			resp.Body.Close()
		}
		ev := c.event(EventRetry)
		ev.Status, ev.Class, ev.Delay, ev.Err = aerr.StatusCode, aerr.Class, dec.Delay, aerr
		c.t.emit(ev)
		if err := sleep(c.ctx, dec.Delay); err != nil {
			return nil, err
		}
	}
}

func (t *Transport) retryBudgetRequest(attempt int) {
	if t.retryBudget != nil && attempt == 1 {
		t.retryBudget.OnRequest(time.Now())
	}
}

// fullAt is when the dimension a rate limit hit is full again.
func (c *call) fullAt(aerr *apierr.Error) time.Time {
	if aerr.Class != apierr.RateLimited || !aerr.DimensionKnown {
		return time.Time{}
	}
	v, err := c.t.budget.View(c.ctx, c.key)
	if err != nil {
		return time.Time{}
	}
	d := v.Dimensions[aerr.Dimension]
	if !d.Known || d.Limit <= 0 {
		return time.Time{}
	}
	window := c.window()
	missing := float64(d.Limit) - d.Level
	if missing <= 0 {
		return time.Now()
	}
	return time.Now().Add(time.Duration(missing / float64(d.Limit) * float64(window)))
}

func (c *call) window() time.Duration {
	if w, ok := c.t.budget.Store().(interface{ Window() time.Duration }); ok {
		return w.Window()
	}
	return budget.DefaultWindow
}

// signal tells the key's gate (or every gate of the provider) what a
// failure means for others: a 429 cools the key down until retry-after, a
// 529 backs off every key of the provider.
func (c *call) signal(aerr *apierr.Error, now time.Time, delay time.Duration) {
	switch aerr.Class {
	case apierr.RateLimited:
		c.ks.gate.RateLimited()
		wait := aerr.RetryAfter
		if wait < 0 {
			wait = delay
		}
		if wait > 0 {
			d := aerr.Dimension
			if !aerr.DimensionKnown {
				d = ratelimit.Requests
			}
			c.ks.gate.Cooldown(d, now.Add(wait))
		}
	case apierr.Overloaded:
		if delay > 0 {
			until := now.Add(delay)
			c.t.eachGate(c.key.Provider, func(g *gate.Gate) { g.Backoff(until) })
		}
	}
}

// attempt1 makes one attempt with an admitted reservation. It returns the
// response to hand the caller, or a classified failure (with the response,
// body restored, when there is one to pass through).
func (c *call) attempt1(res *budget.Reservation, ticket *gate.Ticket) (*http.Response, *apierr.Error, error) {
	resp, err := c.t.cfg.base.RoundTrip(withBody(c.req, c.ctx, c.body))
	now := time.Now()
	if err != nil {
		return c.transportFailure(res, ticket, err)
	}
	snap := ratelimit.Parse(resp.Header, now)
	_ = res.Observe(snap)
	c.t.learn(c.ks, snap, c.window())
	ev := c.event(EventHeaders)
	ev.Status, ev.Snapshot, ev.UpstreamRequestID = resp.StatusCode, &snap, snap.RequestID
	c.t.emit(ev)

	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, apierr.MaxBody))
		retry.Drain(resp.Body, retry.DefaultDrainLimit)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		var actual budget.Cost
		actual[ratelimit.Requests] = 1
		_ = res.Settle(actual)
		ticket.Release()
		aerr := apierr.FromSnapshot(resp.StatusCode, snap, b)
		if aerr == nil {
			return resp, nil, nil
		}
		aerr.Provider = c.key.Provider
		return resp, aerr, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_ = res.Settle(budget.UnknownCost())
		ticket.Release()
		return resp, nil, nil
	}
	// An opening the upstream accepted lets the opening rate ramp up.
	c.ks.gate.Succeeded()
	if !c.parsed.Stream || !isEventStream(resp.Header) {
		return c.unary(resp, res, ticket)
	}
	sb, aerr := newStreamBody(c, resp, res, ticket)
	if aerr != nil {
		return nil, aerr, nil
	}
	resp.Body = sb
	return resp, nil, nil
}

// transportFailure ends an attempt that failed without a usable response:
// whether the upstream counted it is unknown, so the charge is kept and the
// hold released. A network failure comes back classified for the retry
// policy; the caller's own cancellation, as it is.
func (c *call) transportFailure(res *budget.Reservation, ticket *gate.Ticket, err error) (*http.Response, *apierr.Error, error) {
	_ = res.Settle(budget.UnknownCost())
	ticket.Release()
	if c.ctx.Err() != nil {
		c.cancelled(0)
		return nil, nil, err
	}
	if aerr := apierr.FromTransport(err); aerr != nil {
		aerr.Provider = c.key.Provider
		return nil, aerr, err
	}
	return nil, nil, err
}

func isEventStream(h http.Header) bool {
	return strings.HasPrefix(strings.ToLower(h.Get("Content-Type")), "text/event-stream")
}

// cancelled records that the caller went away.
func (c *call) cancelled(output int64) {
	ev := c.event(EventCancelled)
	ev.OutputTokens = output
	ev.Err = c.ctx.Err()
	c.t.emit(ev)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
