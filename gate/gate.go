// Package gate admits requests to an LLM API against one budget key's
// rate limits before they are sent upstream.
//
// A Gate holds a bounded queue of waiting requests, ordered by Priority
// (Interactive before Batch), with retries and resumes ahead of new work of
// their priority, and strict FIFO order within each of those classes: only
// the request at the head of the queue may be admitted, so a large request
// is never starved by small ones behind it (head-of-line blocking is
// intended). The head is admitted when all of the following hold:
//
//   - fewer streams are in flight than the current concurrency limit
//     (SetConcurrency; it starts at Config.InitialConcurrency, cautiously,
//     until the engine has seen the provider's rate-limit headers);
//   - the stagger interval since the last opening has passed (see
//     "Opening rate" below);
//   - no cooldown (Cooldown, after a 429) and no overload backoff (Backoff,
//     after a 529) is active;
//   - the request's Admit callback reserved its budget.
//
// An admitted request gets a *Ticket that holds its concurrency slot until
// Ticket.Release, which the engine calls when the response body is finished
// or closed, never when RoundTrip returns.
//
// # Opening rate
//
// Providers answer a sharp ramp in traffic with 429 "acceleration limits"
// even below the nominal rate, so openings are paced: two openings are at
// least 1/rate seconds apart, where rate (openings per second) starts at
// Config.InitialOpenRate. Each Succeeded call multiplies it by
// Config.OpenRateGrowth, up to Config.MaxOpenRate; each RateLimited call
// multiplies it by Config.OpenRateCut, down to Config.MinOpenRate. The
// interval is computed from the rate in effect when the head is evaluated.
//
// # Waiting
//
// Acquire waits on its own goroutine; the Gate starts no goroutines. Every
// waiter sleeps on its own channel (and a timer when the wait has a known
// end); whoever changes the state (Release, SetConcurrency, Succeeded,
// Cooldown, Close, a waiter leaving the queue) wakes the waiters the change
// concerns, all under one mutex. Waiting is context-aware: a cancelled
// request leaves the queue and gives nothing back, because nothing is
// reserved until Admit succeeds. It is also deadline-aware: when the known
// wait (a cooldown or backoff, the stagger, or Admit's estimate) cannot end
// before the context's deadline, Acquire fails at once with a *WaitError
// carrying the estimate, so a proxy can send a truthful retry-after.
//
// The Gate reads the real clock (time.Now and timers); its tests run inside
// testing/synctest bubbles, where that clock is simulated.
package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// Priority orders waiting requests: every waiting Interactive request is
// admitted before any Batch request. The zero value is Interactive.
type Priority uint8

const (
	// Interactive is a request a person or a latency-sensitive caller is
	// waiting for. It is the default.
	Interactive Priority = iota
	// Batch is bulk work that yields to Interactive requests.
	Batch

	// NumPriorities is the number of priorities; it sizes Stats.Queued.
	NumPriorities = int(Batch) + 1
)

// String returns "interactive" or "batch" (any value above Batch is
// treated, and named, as Batch).
func (p Priority) String() string {
	if p == Interactive {
		return "interactive"
	}
	return "batch"
}

// clamp maps any out-of-range Priority onto Batch.
func (p Priority) clamp() Priority {
	if int(p) >= NumPriorities {
		return Batch
	}
	return p
}

// Request describes one admission request.
type Request struct {
	// Priority is the request's class; the zero value is Interactive.
	Priority Priority
	// Retry marks a retry or resume of an earlier request: it re-enters the
	// queue ahead of new work of its priority.
	Retry bool
	// Admit is the budget check. It is called only when this request is at
	// the head of the queue and every other condition holds, with the time
	// of that decision, and without the Gate's lock held (it may do I/O,
	// such as a round trip to a shared budget store). ok means the budget was
	// reserved: from then on the request is admitted and the caller owns
	// the reservation, even if the context is cancelled meanwhile. When ok is
	// false, wait estimates when to ask again; a non-positive wait means
	// "unknown" and the Gate asks again after Config.AdmitRetry, or sooner
	// when a Release may have returned budget. A nil Admit always succeeds.
	Admit func(now time.Time) (wait time.Duration, ok bool)
}

// Defaults for the zero fields of Config.
const (
	DefaultMaxQueue           = 1024
	DefaultMaxConcurrency     = 64
	DefaultInitialConcurrency = 1
	DefaultInitialOpenRate    = 2.0  // openings per second
	DefaultMinOpenRate        = 0.5  // openings per second
	DefaultMaxOpenRate        = 50.0 // openings per second
	DefaultOpenRateGrowth     = 1.1
	DefaultOpenRateCut        = 0.5
	DefaultAdmitRetry         = time.Second
)

// Config configures a Gate. Every zero (or invalid) field means the
// documented default, so the zero Config is ready to use.
type Config struct {
	// MaxQueue bounds the number of waiting requests; Acquire fails with
	// ErrQueueFull beyond it. Default DefaultMaxQueue (1024).
	MaxQueue int
	// MaxConcurrency is the upper bound of the concurrency limit (streams
	// in flight). Default DefaultMaxConcurrency (64).
	MaxConcurrency int
	// InitialConcurrency is the concurrency limit until SetConcurrency is
	// called, clamped to [1, MaxConcurrency]. Default 1: start cautiously
	// until the provider's rate-limit headers have been seen.
	InitialConcurrency int
	// InitialOpenRate is the opening rate (openings per second) a new Gate
	// starts with, clamped to [MinOpenRate, MaxOpenRate]. Default 2.
	// +Inf disables staggering.
	InitialOpenRate float64
	// MinOpenRate is the floor RateLimited cannot cut below. Default 0.5. If
	// it exceeds MaxOpenRate, MaxOpenRate is used.
	MinOpenRate float64
	// MaxOpenRate is the ceiling Succeeded cannot grow above. Default 50.
	MaxOpenRate float64
	// OpenRateGrowth multiplies the opening rate on each Succeeded; at
	// least 1. Default 1.1.
	OpenRateGrowth float64
	// OpenRateCut multiplies the opening rate on each RateLimited; in
	// (0, 1]. Default 0.5.
	OpenRateCut float64
	// AdmitRetry is how long the head waits before calling Admit again
	// when Admit declined without an estimate. Default 1s.
	AdmitRetry time.Duration
}

// withDefaults returns c with every zero or invalid field replaced.
func (c Config) withDefaults() Config {
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.InitialConcurrency <= 0 {
		c.InitialConcurrency = DefaultInitialConcurrency
	}
	c.InitialConcurrency = min(c.InitialConcurrency, c.MaxConcurrency)
	if !(c.MaxOpenRate > 0) {
		c.MaxOpenRate = DefaultMaxOpenRate
	}
	if !(c.MinOpenRate > 0) {
		c.MinOpenRate = DefaultMinOpenRate
	}
	c.MinOpenRate = min(c.MinOpenRate, c.MaxOpenRate)
	if !(c.InitialOpenRate > 0) {
		c.InitialOpenRate = DefaultInitialOpenRate
	}
	c.InitialOpenRate = max(c.MinOpenRate, min(c.InitialOpenRate, c.MaxOpenRate))
	if !(c.OpenRateGrowth >= 1) || math.IsInf(c.OpenRateGrowth, 1) {
		c.OpenRateGrowth = DefaultOpenRateGrowth
	}
	if !(c.OpenRateCut > 0 && c.OpenRateCut <= 1) {
		c.OpenRateCut = DefaultOpenRateCut
	}
	if c.AdmitRetry <= 0 {
		c.AdmitRetry = DefaultAdmitRetry
	}
	return c
}

var (
	// ErrQueueFull is returned by Acquire when Config.MaxQueue requests are
	// already waiting.
	ErrQueueFull = errors.New("gate: queue full")
	// ErrClosed is returned by Acquire after Close, including to requests
	// that were waiting when Close was called.
	ErrClosed = errors.New("gate: closed")
	// ErrDeadline is wrapped by every *WaitError: the known wait cannot end
	// before the context's deadline.
	ErrDeadline = errors.New("gate: wait exceeds deadline")
)

// WaitReason says what a request would have had to wait for.
type WaitReason uint8

const (
	// WaitCooldown is a cooldown set by Cooldown after a 429.
	WaitCooldown WaitReason = iota + 1
	// WaitBackoff is an overload backoff set by Backoff after a 529.
	WaitBackoff
	// WaitStagger is the pacing interval between openings.
	WaitStagger
	// WaitBudget is Admit's estimate of when the budget allows the request.
	WaitBudget
)

// String returns "cooldown", "backoff", "stagger", "budget" or "unknown".
func (r WaitReason) String() string {
	switch r {
	case WaitCooldown:
		return "cooldown"
	case WaitBackoff:
		return "backoff"
	case WaitStagger:
		return "stagger"
	case WaitBudget:
		return "budget"
	}
	return "unknown"
}

// WaitError is returned by Acquire when the known wait cannot end before
// the context's deadline. It wraps ErrDeadline.
type WaitError struct {
	// Wait is the estimated wait from the moment Acquire gave up; a proxy
	// can send it as retry-after.
	Wait time.Duration
	// Reason is what the request would have waited for.
	Reason WaitReason
	// Dimension is the dimension in cooldown; meaningful only when Reason
	// is WaitCooldown.
	Dimension ratelimit.Dimension
}

// Error implements error.
func (e *WaitError) Error() string {
	if e.Reason == WaitCooldown {
		return fmt.Sprintf("gate: estimated wait %v (cooldown on %v) exceeds the deadline", e.Wait, e.Dimension)
	}
	return fmt.Sprintf("gate: estimated wait %v (%v) exceeds the deadline", e.Wait, e.Reason)
}

// Unwrap returns ErrDeadline.
func (e *WaitError) Unwrap() error { return ErrDeadline }

// Stats is a point-in-time view of a Gate, for metrics.
type Stats struct {
	// Queued is the number of waiting requests per Priority.
	Queued [NumPriorities]int
	// InFlight is the number of admitted requests not yet released
	// (including one whose Admit call is in progress).
	InFlight int
	// Limit is the current concurrency limit.
	Limit int
	// OpenRate is the current opening rate, in openings per second.
	OpenRate float64
	// CooldownUntil is the end of the latest cooldown (possibly past), or
	// zero if there never was one.
	CooldownUntil time.Time
	// CooldownDimension is the dimension CooldownUntil was set for.
	CooldownDimension ratelimit.Dimension
	// BackoffUntil is the end of the latest overload backoff (possibly
	// past), or zero if there never was one.
	BackoffUntil time.Time
}

// Gate admits requests for one budget key. Create it with New; the zero
// Gate is not usable. All methods are safe for concurrent use.
type Gate struct {
	cfg Config

	mu        sync.Mutex
	lanes     [numLanes]lane
	queued    [NumPriorities]int
	nqueued   int
	inflight  int
	limit     int
	rate      float64
	lastOpen  time.Time
	coolUntil time.Time
	coolDim   ratelimit.Dimension
	backUntil time.Time
	admitting bool // a head is inside its Admit call
	closed    bool
}

// New returns a Gate configured by cfg (zero fields mean defaults).
func New(cfg Config) *Gate {
	cfg = cfg.withDefaults()
	return &Gate{
		cfg:   cfg,
		limit: cfg.InitialConcurrency,
		rate:  cfg.InitialOpenRate,
	}
}

// Ticket is an admitted request's hold on a concurrency slot. Release it
// exactly when the request's stream is finished or abandoned. A Ticket is
// safe for concurrent use.
type Ticket struct {
	g        *Gate
	w        waiter
	waited   time.Duration
	released atomic.Bool
}

// Release frees the ticket's concurrency slot. It is idempotent: only the
// first call has an effect. A nil Ticket's Release does nothing.
func (t *Ticket) Release() {
	if t == nil || !t.released.CompareAndSwap(false, true) {
		return
	}
	g := t.g
	g.mu.Lock()
	g.inflight--
	// A freed slot may unblock the head, and the engine settles a stream's
	// reservation before releasing it, so budget may have come back too.
	g.wakeHeadIf(blockConcurrency, blockBudget)
	g.mu.Unlock()
}

// Waited returns how long Acquire waited before admitting the request.
func (t *Ticket) Waited() time.Duration { return t.waited }

// Acquire waits until r can be admitted and returns its Ticket. It fails
// with ErrQueueFull when the queue is at its bound, ErrClosed after Close,
// a *WaitError (wrapping ErrDeadline) when the known wait cannot end before
// ctx's deadline, or an error wrapping ctx's error when ctx ends first. On
// any error nothing was reserved and there is nothing to release.
func (g *Gate) Acquire(ctx context.Context, r Request) (*Ticket, error) {
	start := time.Now()
	t := &Ticket{g: g}
	w := &t.w
	w.lane = laneOf(r)
	w.deadline, w.hasDeadline = ctx.Deadline()

	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	if g.nqueued >= g.cfg.MaxQueue {
		g.mu.Unlock()
		return nil, ErrQueueFull
	}
	w.ready = make(chan struct{}, 1)
	g.push(w)

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if g.closed {
			g.remove(w)
			g.mu.Unlock()
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			g.remove(w)
			g.mu.Unlock()
			return nil, fmt.Errorf("gate: waiting for admission: %w", err)
		}
		now := time.Now()
		wakeAt, admit, werr := g.plan(w, now)
		if werr != nil {
			g.remove(w)
			g.mu.Unlock()
			return nil, werr
		}
		if admit {
			wait, ok := g.admit(w, r.Admit, now)
			if ok {
				g.lastOpen = time.Now()
				g.remove(w)
				t.waited = g.lastOpen.Sub(start)
				g.mu.Unlock()
				return t, nil
			}
			if wait > 0 {
				wakeAt = now.Add(wait)
				if w.hasDeadline && !wakeAt.Before(w.deadline) {
					g.remove(w)
					g.mu.Unlock()
					return nil, &WaitError{Wait: wait, Reason: WaitBudget}
				}
			} else {
				wakeAt = now.Add(g.cfg.AdmitRetry)
			}
			w.block = blockBudget
		}
		g.mu.Unlock()

		if wakeAt.IsZero() {
			select {
			case <-w.ready:
			case <-ctx.Done():
			}
		} else {
			d := wakeAt.Sub(now)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-w.ready:
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		g.mu.Lock()
	}
}

// plan decides w's next step at now: admit it (call Admit), wait until
// wakeAt (zero: until woken), or give up with a *WaitError. Requires g.mu
// held.
func (g *Gate) plan(w *waiter, now time.Time) (wakeAt time.Time, admit bool, werr *WaitError) {
	hold, reason := g.coolUntil, WaitCooldown
	if g.backUntil.After(hold) {
		hold, reason = g.backUntil, WaitBackoff
	}
	held := hold.After(now)
	if held && w.hasDeadline && !hold.Before(w.deadline) {
		return time.Time{}, false, &WaitError{Wait: hold.Sub(now), Reason: reason, Dimension: g.coolDim}
	}
	switch {
	case g.head() != w:
		w.block = blockQueue
		return time.Time{}, false, nil
	case g.admitting:
		w.block = blockAdmitting
		return time.Time{}, false, nil
	case held:
		w.block = blockHold
		return hold, false, nil
	case g.inflight >= g.limit:
		w.block = blockConcurrency
		return time.Time{}, false, nil
	}
	if next := g.lastOpen.Add(g.stagger()); next.After(now) {
		if w.hasDeadline && !next.Before(w.deadline) {
			return time.Time{}, false, &WaitError{Wait: next.Sub(now), Reason: WaitStagger}
		}
		w.block = blockStagger
		return next, false, nil
	}
	w.block = blockNone
	return time.Time{}, true, nil
}

// admit calls fn for the head w with the lock released, holding a
// provisional concurrency slot so that the limit cannot be exceeded
// meanwhile. It returns with g.mu held; on !ok the slot is given back. If
// fn panics, the Gate's state is restored and w leaves the queue before the
// panic continues. Requires g.mu held.
func (g *Gate) admit(w *waiter, fn func(time.Time) (time.Duration, bool), now time.Time) (wait time.Duration, ok bool) {
	g.inflight++
	if fn == nil {
		return 0, true
	}
	g.admitting = true
	g.mu.Unlock()
	returned := false
	defer func() {
		if !returned {
			g.mu.Lock()
			g.admitting = false
			g.inflight--
			g.remove(w)
			g.wakeHead()
			g.mu.Unlock()
		}
	}()
	wait, ok = fn(now)
	returned = true
	g.mu.Lock()
	g.admitting = false
	// A request that arrived meanwhile may have become the head (a retry
	// jumps ahead of new work) and be waiting for this call to end, whatever
	// its outcome. Never wake w itself: it would call Admit again at once.
	if h := g.head(); h != nil && h != w {
		wake(h)
	}
	if ok {
		return wait, true
	}
	g.inflight--
	return wait, false
}

// stagger is the minimum interval between openings at the current rate.
// Requires g.mu held.
func (g *Gate) stagger() time.Duration {
	s := float64(time.Second) / g.rate
	if s >= maxStagger {
		return maxStagger
	}
	return time.Duration(s)
}

// maxStagger bounds the interval a tiny configured rate can produce, so
// that the conversion to a Duration cannot overflow.
const maxStagger = 1 << 53

// Cooldown holds every new opening until until, after a 429 on dimension
// d: queued requests then wait together instead of stampeding, and are
// admitted in order at the opening rate once it ends. Cooldowns only
// extend: an until before the current cooldown's end is ignored. Waiters
// whose deadline the new cooldown outlasts fail at once with a *WaitError.
func (g *Gate) Cooldown(d ratelimit.Dimension, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !until.After(g.coolUntil) {
		return
	}
	g.coolUntil, g.coolDim = until, d
	g.wakeDeadlines()
}

// Backoff holds every new opening until until, after a 529 overload: the
// provider is overloaded as a whole, which is not a budget problem. The
// engine computes a jittered until; the Gate honours it. Backoffs only
// extend, like cooldowns.
func (g *Gate) Backoff(until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !until.After(g.backUntil) {
		return
	}
	g.backUntil = until
	g.wakeDeadlines()
}

// SetConcurrency sets the concurrency limit, clamped to [1,
// Config.MaxConcurrency]. Lowering it below the number in flight admits
// nothing new until enough tickets are released; it revokes nothing.
func (g *Gate) SetConcurrency(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n = max(1, min(n, g.cfg.MaxConcurrency))
	raised := n > g.limit
	g.limit = n
	if raised {
		g.wakeHeadIf(blockConcurrency)
	}
}

// Succeeded reports that a stream the Gate admitted was accepted upstream
// (a 2xx response): the opening rate grows by Config.OpenRateGrowth, up to
// Config.MaxOpenRate.
func (g *Gate) Succeeded() {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := min(g.rate*g.cfg.OpenRateGrowth, g.cfg.MaxOpenRate)
	if r != g.rate {
		g.rate = r
		g.wakeHeadIf(blockStagger)
	}
}

// RateLimited reports a 429 on a stream the Gate admitted: the opening
// rate is cut by Config.OpenRateCut, down to Config.MinOpenRate. Each call
// cuts once, so a burst of 429s quickly reaches the floor.
func (g *Gate) RateLimited() {
	g.mu.Lock()
	defer g.mu.Unlock()
	// A waiting head re-evaluates the stagger with the new rate when its
	// timer fires, so no one needs waking.
	g.rate = max(g.rate*g.cfg.OpenRateCut, g.cfg.MinOpenRate)
}

// Close fails every waiting and future Acquire with ErrClosed. Tickets
// already issued stay valid and are released as usual, and so does the
// ticket of a request whose Admit call is in progress and succeeds (its
// budget is reserved). Close is idempotent.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for i := range g.lanes {
		for w := g.lanes[i].head; w != nil; w = w.next {
			wake(w)
		}
	}
}

// Stats returns a snapshot of the Gate's state.
func (g *Gate) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Stats{
		Queued:            g.queued,
		InFlight:          g.inflight,
		Limit:             g.limit,
		OpenRate:          g.rate,
		CooldownUntil:     g.coolUntil,
		CooldownDimension: g.coolDim,
		BackoffUntil:      g.backUntil,
	}
}
