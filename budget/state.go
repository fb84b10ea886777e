package budget

import (
	"fmt"
	"math"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// MaxAmount is the largest amount a Cost entry or a Consume may carry
// (about 10^12). Larger amounts are rejected with ErrInvalid so that sums of
// amounts stay exact in int64 and float64 arithmetic.
const MaxAmount = 1 << 40

// amountsOK reports whether every entry of c is in [-1, MaxAmount] when
// unknownOK, or in [0, MaxAmount] otherwise.
func amountsOK(c *Cost, unknownOK bool) bool {
	for _, v := range c {
		if v > MaxAmount || (v < 0 && !(unknownOK && v == -1)) {
			return false
		}
	}
	return true
}

// dimState is one dimension of one key's budget.
type dimState struct {
	limit   int64   // -1 when unknown
	level   float64 // predicted server-side remaining; <= limit
	held    int64   // sum of the open reservations' remaining holds
	learned bool    // limit came from a snapshot, not from SetLimits
}

// maxSpare bounds the storage a key keeps for reuse by new reservations.
const maxSpare = 256

// openRes is an open reservation.
type openRes struct {
	charge   Cost // taken from the level at Reserve
	hold     Cost // remaining hold, counted in dimState.held
	consumed Cost // charged live by Consume
	seen     bool // a snapshot carried by its own response was observed
	expires  time.Time
}

// keyState is one key's budget. Its methods are pure functions of their
// arguments and the state; the caller serializes access.
type keyState struct {
	dims       [ratelimit.NumDimensions]dimState
	last       time.Time // levels are refilled up to here; zero before any timed operation
	observed   time.Time // At of the last snapshot applied to the levels
	res        map[string]*openRes
	spare      []*openRes // ended reservations' storage, for reuse
	nextExpiry time.Time  // no lease expires before this; zero when res is empty
}

func newKeyState() *keyState {
	ks := &keyState{res: make(map[string]*openRes)}
	for d := range ks.dims {
		ks.dims[d].limit = -1
	}
	return ks
}

// advance refills every known dimension up to now. A now at or before the
// last refill changes nothing, so refill is monotone whatever order calls
// arrive in.
func (ks *keyState) advance(now time.Time, window time.Duration) {
	if ks.last.IsZero() {
		ks.last = now
		return
	}
	if !now.After(ks.last) {
		return
	}
	dt := float64(now.Sub(ks.last)) / float64(window)
	for d := range ks.dims {
		s := &ks.dims[d]
		if s.limit >= 0 {
			s.level = math.Min(float64(s.limit), s.level+float64(s.limit)*dt)
		}
	}
	ks.last = now
}

// sweep drops the reservations whose lease has expired at now, releasing
// their holds and keeping their charges.
func (ks *keyState) sweep(now time.Time) {
	if ks.nextExpiry.IsZero() || now.Before(ks.nextExpiry) {
		return
	}
	var next time.Time
	for id, r := range ks.res {
		if !now.Before(r.expires) {
			ks.release(r)
			ks.remove(id)
			continue
		}
		if next.IsZero() || r.expires.Before(next) {
			next = r.expires
		}
	}
	ks.nextExpiry = next
}

// release drops r's remaining holds from the held totals.
func (ks *keyState) release(r *openRes) {
	for d := range ks.dims {
		ks.dims[d].held -= r.hold[d]
		r.hold[d] = 0
	}
}

// refund gives n back to dimension d's level, never above the limit.
func (ks *keyState) refund(d int, n float64) {
	s := &ks.dims[d]
	if s.limit < 0 {
		return
	}
	s.level = math.Min(float64(s.limit), s.level+n)
}

// setLimit sets dimension d's limit. A dimension becoming known starts
// full, less what the open reservations have charged and consumed in it.
func (ks *keyState) setLimit(d int, limit int64) {
	s := &ks.dims[d]
	if s.limit < 0 {
		used := 0.0
		for _, r := range ks.res {
			used += float64(r.charge[d] + r.consumed[d])
		}
		s.limit = limit
		s.level = float64(limit) - used
		return
	}
	s.limit = limit
	s.level = math.Min(s.level, float64(limit))
}

// waitFor is how long refilling dimension d takes to raise its level by
// amount, rounded up to the nanosecond. The limit must be positive.
func (ks *keyState) waitFor(d int, amount float64, window time.Duration) time.Duration {
	if amount <= 0 {
		return 0
	}
	ns := math.Ceil(amount * float64(window) / float64(ks.dims[d].limit))
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

func (ks *keyState) reserve(id string, charge, hold *Cost, now time.Time, cfg *options) (Result, error) {
	ks.sweep(now)
	ks.advance(now, cfg.window)
	if _, dup := ks.res[id]; dup {
		return Result{}, fmt.Errorf("budget: reserve %q: %w", id, ErrDuplicateReservation)
	}
	for d := range ks.dims {
		if lim := ks.dims[d].limit; lim >= 0 && (charge[d] > lim || hold[d] > lim-charge[d]) {
			return Result{}, &LimitError{Dimension: ratelimit.Dimension(d), Need: charge[d] + hold[d], Limit: lim}
		}
	}
	var res Result
	blocked := false
	for d := range ks.dims {
		s := &ks.dims[d]
		if s.limit < 0 {
			continue
		}
		need := float64(charge[d] + hold[d])
		avail := s.level - float64(s.held)
		tol := 1e-12 * float64(s.limit)
		if avail+tol >= need {
			continue
		}
		var wait time.Duration
		inFlight := s.limit == 0 || need > float64(s.limit-s.held)+tol
		if inFlight {
			if s.limit > 0 {
				wait = ks.waitFor(d, float64(s.limit)-s.level, cfg.window)
			}
		} else {
			wait = ks.waitFor(d, need-avail, cfg.window)
		}
		if !blocked || (inFlight && !res.InFlight) || (inFlight == res.InFlight && wait > res.Wait) {
			res = Result{Wait: wait, Binding: ratelimit.Dimension(d), InFlight: inFlight}
		}
		blocked = true
	}
	if blocked {
		return res, nil
	}
	for d := range ks.dims {
		s := &ks.dims[d]
		if s.limit >= 0 {
			s.level -= float64(charge[d])
		}
		s.held += hold[d]
	}
	exp := now.Add(cfg.maxLease)
	var r *openRes
	if n := len(ks.spare); n > 0 {
		r, ks.spare = ks.spare[n-1], ks.spare[:n-1]
	} else {
		r = new(openRes)
	}
	*r = openRes{charge: *charge, hold: *hold, expires: exp}
	ks.res[id] = r
	if ks.nextExpiry.IsZero() || exp.Before(ks.nextExpiry) {
		ks.nextExpiry = exp
	}
	return Result{Admitted: true}, nil
}

func (ks *keyState) lookup(op, id string, now time.Time, cfg *options) (*openRes, error) {
	ks.sweep(now)
	ks.advance(now, cfg.window)
	r, ok := ks.res[id]
	if !ok {
		return r, fmt.Errorf("budget: %s %q: %w", op, id, ErrUnknownReservation)
	}
	return r, nil
}

func (ks *keyState) consume(id string, d int, n int64, now time.Time, cfg *options) error {
	r, err := ks.lookup("consume", id, now, cfg)
	if err != nil {
		return err
	}
	s := &ks.dims[d]
	if s.limit >= 0 {
		s.level -= float64(n)
	}
	take := min(n, r.hold[d])
	r.hold[d] -= take
	s.held -= take
	r.consumed[d] += n
	if exp := now.Add(cfg.maxLease); exp.After(r.expires) {
		r.expires = exp
	}
	return nil
}

// remove forgets reservation id, keeping its storage for reuse.
func (ks *keyState) remove(id string) {
	if r := ks.res[id]; r != nil && len(ks.spare) < maxSpare {
		ks.spare = append(ks.spare, r)
	}
	delete(ks.res, id)
	if len(ks.res) == 0 {
		ks.nextExpiry = time.Time{}
	}
}

func (ks *keyState) settle(id string, actual *Cost, now time.Time, cfg *options) error {
	r, err := ks.lookup("settle", id, now, cfg)
	if err != nil {
		return err
	}
	ks.release(r)
	for d := range ks.dims {
		if actual[d] < 0 || ks.dims[d].limit < 0 {
			continue
		}
		// Positive diff: used more than charged so far; negative: refund.
		diff := actual[d] - r.charge[d] - r.consumed[d]
		if diff > 0 {
			ks.dims[d].level -= float64(diff)
		} else {
			ks.refund(d, float64(-diff))
		}
	}
	ks.remove(id)
	return nil
}

func (ks *keyState) cancel(id string, now time.Time, cfg *options) error {
	r, err := ks.lookup("cancel", id, now, cfg)
	if err != nil {
		return err
	}
	ks.release(r)
	for d := range ks.dims {
		ks.refund(d, float64(r.charge[d]))
	}
	ks.remove(id)
	return nil
}

func (ks *keyState) observe(id string, snap *ratelimit.Snapshot, cfg *options) {
	at := snap.At
	t := at
	if !at.IsZero() {
		if ks.last.After(t) {
			t = ks.last
		}
		ks.sweep(t)
		ks.advance(t, cfg.window)
	}
	for d := range ks.dims {
		if lim := snap.Buckets[d].Limit; lim >= 0 {
			ks.setLimit(d, min(lim, MaxAmount))
			ks.dims[d].learned = true
		}
	}
	if !at.IsZero() && !at.Before(ks.observed) {
		ks.adopt(id, snap, t, cfg.window)
		ks.observed = at
	}
	if r, ok := ks.res[id]; ok {
		r.seen = true
		if exp := at.Add(cfg.maxLease); exp.After(r.expires) {
			r.expires = exp
		}
	}
}

// adopt moves the levels toward the snapshot's remaining counts, carried
// forward from snap.At to t (the key's refill time) by refill. See the
// package documentation for the policy.
func (ks *keyState) adopt(id string, snap *ratelimit.Snapshot, t time.Time, window time.Duration) {
	var unseen Cost
	for rid, r := range ks.res {
		if rid == id || r.seen {
			continue
		}
		for d := range unseen {
			unseen[d] += r.charge[d]
		}
	}
	dt := float64(t.Sub(snap.At)) / float64(window)
	for d := range ks.dims {
		s := &ks.dims[d]
		b := &snap.Buckets[d]
		if s.limit < 0 || b.Remaining < 0 {
			continue
		}
		remaining := math.Min(float64(s.limit), float64(min(b.Remaining, MaxAmount))+float64(s.limit)*dt)
		half := float64(max(b.Granularity, 1)) / 2
		if s.level > remaining+half {
			s.level = remaining
		} else if floor := remaining - half - float64(unseen[d]); s.level < floor {
			s.level = floor
		}
	}
}

func (ks *keyState) setLimits(limits *Cost) {
	for d := range ks.dims {
		s := &ks.dims[d]
		switch {
		case s.learned:
		case limits[d] < 0:
			s.limit, s.level = -1, 0
		default:
			ks.setLimit(d, limits[d])
		}
	}
}

func (ks *keyState) view(now time.Time, window time.Duration) View {
	ks.sweep(now)
	ks.advance(now, window)
	v := View{Open: len(ks.res)}
	for d := range ks.dims {
		s := &ks.dims[d]
		v.Dimensions[d] = DimensionView{Known: s.limit >= 0, Limit: s.limit, Level: s.level, Held: s.held}
		if s.limit < 0 {
			v.Dimensions[d].Level = 0
		}
	}
	return v
}
