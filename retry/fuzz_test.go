package retry_test

import (
	"math"
	"testing"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/ratelimit"
	"github.com/streamgate/streamgate/retry"
)

// FuzzDecide checks Decide's invariants on arbitrary inputs: it never
// panics; it never retries x-should-retry: false, QuotaExhausted or a
// nil error; a retry is never sooner than retry-after, and never later
// than the larger of retry-after and MaxBackoff; a retry stays within
// MaxAttempts and MaxElapsed.
func FuzzDecide(f *testing.F) {
	f.Add(uint8(apierr.RateLimited), uint8(0), "", int64(20e9), 1, int64(0), int64(0), 0.5, int64(0), int64(0), 0.0)
	f.Add(uint8(apierr.Overloaded), uint8(1), "overloaded_error", int64(-1), 3, int64(3e9), int64(60e9), 0.0, int64(1e9), int64(10e9), 0.3)
	f.Add(uint8(apierr.InvalidRequest), uint8(1), "", int64(-1), 2, int64(-5e9), int64(400e9), 0.99, int64(-1), int64(-1), -2.0)
	f.Add(uint8(200), uint8(9), "x", int64(math.MaxInt64), math.MaxInt, int64(math.MinInt64), int64(math.MaxInt64), math.NaN(), int64(math.MaxInt64), int64(1), math.Inf(1))
	f.Fuzz(func(t *testing.T, class, should uint8, typ string, retryAfter int64, n int, fullAt, started int64, r float64, base, maxBackoff int64, jitter float64) {
		e := &apierr.Error{
			Class:       apierr.Class(class),
			ShouldRetry: ratelimit.ShouldRetry(should % 4),
			Type:        typ,
			RetryAfter:  time.Duration(retryAfter),
		}
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		a := retry.Attempt{N: n, Err: e, Now: now, Start: now.Add(-time.Duration(started))}
		if fullAt != 0 {
			a.FullAt = now.Add(time.Duration(fullAt))
		}
		p := retry.Policy{BaseDelay: time.Duration(base), MaxBackoff: time.Duration(maxBackoff), Jitter: jitter}
		d := p.Decide(a, func() float64 { return r })
		if d.Reason == "" {
			t.Error("empty Reason")
		}
		if !d.Retry {
			return
		}
		switch {
		case e.ShouldRetry == ratelimit.ShouldRetryFalse:
			t.Errorf("retried despite x-should-retry: false: %+v", d)
		case e.Class == apierr.QuotaExhausted:
			t.Errorf("retried QuotaExhausted: %+v", d)
		}
		if e.RetryAfter > 0 && d.Delay < e.RetryAfter {
			t.Errorf("delay %v below retry-after %v", d.Delay, e.RetryAfter)
		}
		capDelay := retry.DefaultMaxBackoff
		if maxBackoff > 0 {
			capDelay = time.Duration(maxBackoff)
		}
		if d.Delay < 0 || d.Delay > max(capDelay, e.RetryAfter) {
			t.Errorf("delay %v outside [0, max(%v, %v)]", d.Delay, capDelay, e.RetryAfter)
		}
		if n >= retry.DefaultMaxAttempts {
			t.Errorf("retried attempt %d beyond MaxAttempts", n)
		}
		if now.Add(d.Delay).After(a.Start.Add(retry.DefaultMaxElapsed)) {
			t.Errorf("retry at +%v passes MaxElapsed from a start %v ago", d.Delay, time.Duration(started))
		}
	})
}
