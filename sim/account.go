package sim

import (
	"math"
	"sync"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// account is the rate-limit state of one API key on one provider's
// endpoint: its buckets, its in-flight count (for the acceleration limit)
// and its prompt cache. One mutex guards everything.
type account struct {
	mu       sync.Mutex
	provider ratelimit.Provider
	key      string // fingerprint
	b        [ratelimit.NumDimensions]*bucket
	// outDim is the bucket output tokens are drawn from as they stream, or
	// -1 when output is not metered live.
	outDim   int
	inflight int
	accel    accelState
	cache    map[[32]byte]time.Time // prompt-cache entry -> expiry
	series   [ratelimit.NumDimensions]series
}

// newAccount builds the buckets for provider p from the configured limits;
// all start full at now.
func newAccount(p ratelimit.Provider, fp string, cfg *Config, now time.Time) *account {
	a := &account{provider: p, key: fp, outDim: -1, cache: map[[32]byte]time.Time{}}
	add := func(d ratelimit.Dimension, limit int64) {
		if limit > 0 {
			a.b[d] = newBucket(limit, cfg.Window, now)
		}
	}
	switch p {
	case ratelimit.Anthropic:
		add(ratelimit.Requests, cfg.Anthropic.RPM)
		if cfg.Anthropic.CombinedTPM {
			add(ratelimit.Tokens, cfg.Anthropic.TPM)
			a.setOut(ratelimit.Tokens)
		} else {
			add(ratelimit.InputTokens, cfg.Anthropic.ITPM)
			add(ratelimit.OutputTokens, cfg.Anthropic.OTPM)
			a.setOut(ratelimit.OutputTokens)
		}
	case ratelimit.OpenAI:
		add(ratelimit.Requests, cfg.OpenAI.RPM)
		add(ratelimit.Tokens, cfg.OpenAI.TPM)
		if cfg.OpenAI.LiveOutput {
			a.setOut(ratelimit.Tokens)
		}
	}
	return a
}

func (a *account) setOut(d ratelimit.Dimension) {
	if a.b[d] != nil {
		a.outDim = int(d)
	}
}

// charge is what admission needs from, and takes from, each bucket.
type charge struct {
	dim  ratelimit.Dimension
	need float64 // must be available
	take float64 // taken on admission (<= need)
}

// rejection says why a request was not admitted.
type rejection struct {
	dim          ratelimit.Dimension
	limit        int64
	level        float64
	need         float64
	wait         time.Duration // until the request would be admitted
	impossible   bool          // need exceeds the limit: no wait suffices
	acceleration bool
}

// admit checks every charge at now and, if all fit (and the acceleration
// limit allows one more request), takes them and counts the request in
// flight. Otherwise it returns the binding rejection: the dimension with the
// longest wait, whose wait is therefore enough for every dimension.
func (a *account) admit(now time.Time, charges []charge, acc *Acceleration) *rejection {
	a.mu.Lock()
	defer a.mu.Unlock()
	var worst *rejection
	for _, c := range charges {
		b := a.b[c.dim]
		if b == nil || b.has(now, c.need) {
			continue
		}
		w, ok := b.waitFor(now, c.need)
		r := &rejection{dim: c.dim, limit: int64(b.limit), level: b.levelAt(now), need: c.need, wait: w, impossible: !ok}
		if worst == nil || r.impossible && !worst.impossible || r.wait > worst.wait && r.impossible == worst.impossible {
			worst = r
		}
	}
	if worst != nil {
		return worst
	}
	if acc != nil {
		a.accel.roll(now, acc.Interval, a.inflight)
		if allowed := a.accel.allowed(acc); a.inflight+1 > allowed {
			wait := a.accel.start.Add(acc.Interval).Sub(now)
			return &rejection{dim: ratelimit.Requests, limit: int64(allowed), wait: wait, acceleration: true}
		}
	}
	for _, c := range charges {
		if b := a.b[c.dim]; b != nil && c.take > 0 {
			b.take(now, c.take)
		}
	}
	a.inflight++
	if acc != nil {
		a.accel.observe(a.inflight)
	}
	return nil
}

// done marks an admitted request finished.
func (a *account) done(now time.Time, acc *Acceleration) {
	a.mu.Lock()
	if acc != nil {
		a.accel.roll(now, acc.Interval, a.inflight)
	}
	a.inflight--
	a.mu.Unlock()
}

// drawOutput takes up to n output tokens at now from the live output bucket
// and returns how many it took. Without a live output bucket every token is
// free.
func (a *account) drawOutput(now time.Time, n int) int {
	if a.outDim < 0 {
		return n
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.b[a.outDim].takeUpTo(now, n)
}

// outputWait returns the live output bucket's level at now and how long
// until it holds one token.
func (a *account) outputWait(now time.Time) (float64, time.Duration) {
	if a.outDim < 0 {
		return 0, 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.b[a.outDim]
	w, _ := b.waitFor(now, 1)
	return b.levelAt(now), w
}

// outputLimit returns the dimension and limit of the live output bucket.
func (a *account) outputLimit() (ratelimit.Dimension, int64) {
	if a.outDim < 0 {
		return ratelimit.OutputTokens, 0
	}
	return ratelimit.Dimension(a.outDim), int64(a.b[a.outDim].limit)
}

// bucketView is one bucket's state at an instant.
type bucketView struct {
	present bool
	limit   int64
	level   float64
	fullIn  time.Duration
}

// view returns every bucket's state at now.
func (a *account) view(now time.Time) [ratelimit.NumDimensions]bucketView {
	a.mu.Lock()
	defer a.mu.Unlock()
	var v [ratelimit.NumDimensions]bucketView
	for d, b := range a.b {
		if b != nil {
			v[d] = bucketView{present: true, limit: int64(b.limit), level: b.levelAt(now), fullIn: b.fullIn(now)}
		}
	}
	return v
}

// cacheLookup reports whether the prompt-cache entry h is live at now.
func (a *account) cacheLookup(now time.Time, h [32]byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.cache[h]
	return ok && now.Before(exp)
}

// cacheStore (re)writes the entries hs with a fresh expiry, and drops
// expired entries so the cache stays bounded by what is in use.
func (a *account) cacheStore(now time.Time, ttl time.Duration, hs [][32]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, exp := range a.cache {
		if !now.Before(exp) {
			delete(a.cache, h)
		}
	}
	for _, h := range hs {
		a.cache[h] = now.Add(ttl)
	}
}

// accelState tracks the peak concurrency of the current and the previous
// acceleration interval.
type accelState struct {
	start    time.Time
	curPeak  int
	prevPeak int
}

// roll moves the interval window forward to contain now.
func (s *accelState) roll(now time.Time, interval time.Duration, inflight int) {
	if s.start.IsZero() {
		s.start = now
		s.curPeak = inflight
		return
	}
	if now.Before(s.start.Add(interval)) {
		return
	}
	n := now.Sub(s.start) / interval
	if n == 1 {
		s.prevPeak = s.curPeak
	} else {
		// Nothing happened for a whole interval: concurrency was constant.
		s.prevPeak = inflight
	}
	s.curPeak = inflight
	s.start = s.start.Add(n * interval)
}

func (s *accelState) observe(inflight int) {
	if inflight > s.curPeak {
		s.curPeak = inflight
	}
}

func (s *accelState) allowed(acc *Acceleration) int {
	grown := int(math.Floor(acc.Factor * float64(s.prevPeak)))
	return max(acc.Floor, grown)
}
