package sim

import (
	"math"
	"time"
)

// epsilon absorbs floating-point error in bucket comparisons, so that a
// retry at exactly the computed time is admitted.
const epsilon = 1e-6

// bucket is a continuously refilled token bucket: level grows by rate per
// second up to limit. Time is always a parameter; a bucket never reads a
// clock. Not safe for concurrent use (an account's mutex guards it).
type bucket struct {
	limit float64
	rate  float64 // tokens per second
	level float64
	last  time.Time
}

// newBucket returns a full bucket of the given limit refilling over window.
func newBucket(limit int64, window time.Duration, now time.Time) *bucket {
	return &bucket{
		limit: float64(limit),
		rate:  float64(limit) / window.Seconds(),
		level: float64(limit),
		last:  now,
	}
}

// levelAt returns the level at now without changing the bucket. A now
// earlier than the last update sees the level of the last update.
func (b *bucket) levelAt(now time.Time) float64 {
	dt := now.Sub(b.last).Seconds()
	if dt <= 0 {
		return b.level
	}
	return math.Min(b.limit, b.level+dt*b.rate)
}

// advance brings the bucket to now (time never moves backwards).
func (b *bucket) advance(now time.Time) {
	if now.After(b.last) {
		b.level = b.levelAt(now)
		b.last = now
	}
}

// has reports whether n tokens are available at now.
func (b *bucket) has(now time.Time, n float64) bool {
	return b.levelAt(now)+epsilon >= n
}

// take removes n tokens at now; the level may go negative (a debt that
// refills like any shortfall).
func (b *bucket) take(now time.Time, n float64) {
	b.advance(now)
	b.level -= n
}

// takeUpTo removes as many whole tokens as are available at now, at most n,
// and returns how many it took.
func (b *bucket) takeUpTo(now time.Time, n int) int {
	b.advance(now)
	avail := int(math.Floor(b.level + epsilon))
	if avail < 0 {
		avail = 0
	}
	if avail > n {
		avail = n
	}
	b.level -= float64(avail)
	return avail
}

// waitFor returns how long from now until n tokens are available (zero if
// they are now). ok is false when n exceeds the limit, so no wait suffices.
func (b *bucket) waitFor(now time.Time, n float64) (d time.Duration, ok bool) {
	if n > b.limit+epsilon {
		return b.fullIn(now), false
	}
	short := n - b.levelAt(now)
	if short <= epsilon {
		return 0, true
	}
	return durationCeil(short / b.rate), true
}

// fullIn returns how long from now until the bucket is full.
func (b *bucket) fullIn(now time.Time) time.Duration {
	short := b.limit - b.levelAt(now)
	if short <= epsilon {
		return 0
	}
	return durationCeil(short / b.rate)
}

// durationCeil converts seconds to a Duration, rounding up to the
// nanosecond so that waiting that long is never too short.
func durationCeil(sec float64) time.Duration {
	if sec >= float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(sec * float64(time.Second)))
}

// retryAfterSeconds is the retry-after header value for a wait: whole
// seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
