package retry_test

import (
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/ratelimit"
	"github.com/streamgate/streamgate/retry"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixed returns an rnd that always returns r.
func fixed(r float64) func() float64 { return func() float64 { return r } }

// failure returns an error of class c with no retry-after.
func failure(c apierr.Class) *apierr.Error {
	return &apierr.Error{Class: c, RetryAfter: -1}
}

func TestDecideClasses(t *testing.T) {
	// For every class: whether it is retried without x-should-retry, with
	// "x-should-retry: true" and no provider error type in the body, and with
	// "x-should-retry: true" and the provider's error type in the body.
	tests := []struct {
		class                           apierr.Class
		plain, trueNoType, trueWithType bool
	}{
		{apierr.Unknown, false, true, true},
		{apierr.RateLimited, true, true, true},
		{apierr.Overloaded, true, true, true},
		{apierr.ServerError, true, true, true},
		{apierr.Timeout, true, true, true},
		{apierr.Conflict, true, true, true},
		{apierr.Network, true, true, true},
		{apierr.QuotaExhausted, false, false, false},
		{apierr.InvalidRequest, false, true, false},
		{apierr.Authentication, false, true, false},
		{apierr.Billing, false, true, false},
		{apierr.Permission, false, true, false},
		{apierr.NotFound, false, true, false},
		{apierr.RequestTooLarge, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.class.String(), func(t *testing.T) {
			variants := []struct {
				name   string
				should ratelimit.ShouldRetry
				typ    string
				want   bool
			}{
				{"no header", ratelimit.ShouldRetryUnset, "", tt.plain},
				{"no header, typed body", ratelimit.ShouldRetryUnset, "some_error", tt.plain},
				{"x-should-retry true", ratelimit.ShouldRetryTrue, "", tt.trueNoType},
				{"x-should-retry true, typed body", ratelimit.ShouldRetryTrue, "some_error", tt.trueWithType},
				{"x-should-retry false", ratelimit.ShouldRetryFalse, "", false},
				{"x-should-retry false, typed body", ratelimit.ShouldRetryFalse, "some_error", false},
			}
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					e := failure(tt.class)
					e.ShouldRetry, e.Type = v.should, v.typ
					d := retry.Policy{}.Decide(retry.Attempt{N: 1, Err: e, Now: t0}, fixed(0))
					if d.Retry != v.want {
						t.Errorf("Retry = %v, want %v (reason %q)", d.Retry, v.want, d.Reason)
					}
					if d.Reason == "" {
						t.Error("empty Reason")
					}
					if !v.want && d.Delay != 0 {
						t.Errorf("Delay = %v for a failure that is never retried, want 0", d.Delay)
					}
				})
			}
		})
	}
}

func TestDecideNilError(t *testing.T) {
	d := retry.Policy{}.Decide(retry.Attempt{N: 1, Now: t0}, nil)
	if d.Retry {
		t.Errorf("a nil error was retried: %+v", d)
	}
}

func TestDecideDelay(t *testing.T) {
	ra := func(c apierr.Class, d time.Duration) *apierr.Error {
		e := failure(c)
		e.RetryAfter = d
		return e
	}
	tests := []struct {
		name   string
		policy retry.Policy
		n      int
		err    *apierr.Error
		fullAt time.Duration // from t0; 0 = unknown
		rnd    float64
		want   time.Duration
		basis  string
	}{
		{name: "first retry", n: 1, err: failure(apierr.ServerError), want: time.Second, basis: "backoff"},
		{name: "doubles", n: 3, err: failure(apierr.ServerError), want: 4 * time.Second, basis: "backoff"},
		{name: "n below 1 is 1", n: -3, err: failure(apierr.Timeout), want: time.Second, basis: "backoff"},
		{name: "capped at MaxBackoff", policy: retry.Policy{MaxAttempts: 100}, n: 30, err: failure(apierr.Overloaded), want: 60 * time.Second, basis: "backoff"},
		{name: "huge n", policy: retry.Policy{MaxAttempts: math.MaxInt}, n: 5000, err: failure(apierr.Overloaded), want: 60 * time.Second, basis: "backoff"},
		{name: "custom base and cap", policy: retry.Policy{BaseDelay: 500 * time.Millisecond, MaxBackoff: 3 * time.Second}, n: 4, err: failure(apierr.Network), want: 3 * time.Second, basis: "backoff"},
		{name: "jitter takes up to a quarter", n: 3, err: failure(apierr.ServerError), rnd: 0.5, want: 3500 * time.Millisecond, basis: "backoff"},
		{name: "jitter disabled", policy: retry.Policy{Jitter: -1}, n: 3, err: failure(apierr.ServerError), rnd: 0.5, want: 4 * time.Second, basis: "backoff"},
		{name: "full jitter", policy: retry.Policy{Jitter: 7}, n: 3, err: failure(apierr.ServerError), rnd: 0.5, want: 2 * time.Second, basis: "backoff"},
		{name: "rnd out of range is clamped", n: 3, err: failure(apierr.ServerError), rnd: 3, want: 3 * time.Second, basis: "backoff"},
		{name: "rnd NaN is 0", n: 3, err: failure(apierr.ServerError), rnd: math.NaN(), want: 4 * time.Second, basis: "backoff"},
		{name: "retry-after above backoff", n: 1, err: ra(apierr.RateLimited, 20*time.Second), want: 20 * time.Second, basis: "retry-after"},
		{name: "retry-after below backoff", n: 4, err: ra(apierr.RateLimited, 2*time.Second), want: 8 * time.Second, basis: "backoff"},
		{name: "retry-after above MaxBackoff is not cut", n: 1, err: ra(apierr.RateLimited, 90*time.Second), want: 90 * time.Second, basis: "retry-after"},
		{name: "retry-after above FullAt is not cut", n: 5, err: ra(apierr.RateLimited, 20*time.Second), fullAt: 5 * time.Second, want: 20 * time.Second, basis: "retry-after"},
		{name: "retry-after on overload", n: 1, err: ra(apierr.Overloaded, 30*time.Second), want: 30 * time.Second, basis: "retry-after"},
		{name: "FullAt caps a rate limit's backoff", n: 5, err: failure(apierr.RateLimited), fullAt: 3 * time.Second, want: 3 * time.Second, basis: "refill"},
		{name: "FullAt later than the backoff", n: 2, err: failure(apierr.RateLimited), fullAt: 30 * time.Second, want: 2 * time.Second, basis: "backoff"},
		{name: "FullAt in the past", n: 5, err: failure(apierr.RateLimited), fullAt: -time.Second, want: 0, basis: "refill"},
		{name: "FullAt does not cap overload", n: 5, err: failure(apierr.Overloaded), fullAt: 3 * time.Second, want: 16 * time.Second, basis: "backoff"},
		{name: "FullAt does not cap server errors", n: 5, err: failure(apierr.ServerError), fullAt: 3 * time.Second, want: 16 * time.Second, basis: "backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := retry.Attempt{N: tt.n, Err: tt.err, Start: t0, Now: t0}
			if tt.fullAt != 0 {
				a.FullAt = t0.Add(tt.fullAt)
			}
			if tt.policy.MaxAttempts == 0 {
				tt.policy.MaxAttempts = 100
			}
			if tt.policy.MaxElapsed == 0 {
				tt.policy.MaxElapsed = 1 << 62
			}
			d := tt.policy.Decide(a, fixed(tt.rnd))
			if !d.Retry || d.Delay != tt.want {
				t.Errorf("Decide = %+v, want a retry after %v", d, tt.want)
			}
			if !strings.Contains(d.Reason, tt.basis) {
				t.Errorf("Reason %q does not name %q", d.Reason, tt.basis)
			}
		})
	}
}

func TestJitterBounds(t *testing.T) {
	for _, j := range []float64{0, 0.1, 0.25, 0.5, 1} {
		p := retry.Policy{Jitter: j, MaxAttempts: 20, MaxElapsed: time.Hour}
		eff := j
		if j == 0 {
			eff = retry.DefaultJitter
		}
		for n := 1; n <= 8; n++ {
			b := min(retry.DefaultBaseDelay<<(n-1), retry.DefaultMaxBackoff)
			lo := time.Duration(float64(b) * (1 - eff))
			for _, r := range []float64{0, 0.1, 0.5, 0.9, 0.999999} {
				d := p.Decide(retry.Attempt{N: n, Err: failure(apierr.Overloaded), Now: t0}, fixed(r))
				if d.Delay > b || d.Delay < lo {
					t.Errorf("jitter %v, n %d, rnd %v: delay %v outside [%v, %v]", j, n, r, d.Delay, lo, b)
				}
			}
		}
	}
	// The default source also stays within bounds.
	for range 1000 {
		d := retry.Policy{}.Decide(retry.Attempt{N: 2, Err: failure(apierr.Overloaded), Now: t0}, nil)
		if d.Delay > 2*time.Second || d.Delay < 1500*time.Millisecond {
			t.Fatalf("delay %v outside [1.5s, 2s]", d.Delay)
		}
	}
}

func TestDecideLimits(t *testing.T) {
	tests := []struct {
		name      string
		policy    retry.Policy
		n         int
		started   time.Duration // before now
		retryAft  time.Duration
		want      bool
		wantDelay time.Duration
		reason    string
	}{
		{name: "attempts left", n: 4, want: true, wantDelay: 8 * time.Second},
		{name: "MaxAttempts reached", n: 5, wantDelay: 16 * time.Second, reason: "MaxAttempts"},
		{name: "MaxAttempts beyond", n: 9, wantDelay: 60 * time.Second, reason: "MaxAttempts"},
		{name: "custom MaxAttempts", policy: retry.Policy{MaxAttempts: 2}, n: 2, wantDelay: 2 * time.Second, reason: "MaxAttempts"},
		{name: "single attempt", policy: retry.Policy{MaxAttempts: 1}, n: 1, wantDelay: time.Second, reason: "MaxAttempts"},
		{name: "within MaxElapsed", n: 2, started: 4*time.Minute + 58*time.Second, want: true, wantDelay: 2 * time.Second},
		{name: "delay passes MaxElapsed", n: 2, started: 4*time.Minute + 59*time.Second, wantDelay: 2 * time.Second, reason: "MaxElapsed"},
		{name: "retry-after passes MaxElapsed", n: 1, retryAft: 6 * time.Minute, wantDelay: 6 * time.Minute, reason: "MaxElapsed"},
		{name: "custom MaxElapsed", policy: retry.Policy{MaxElapsed: 10 * time.Second}, n: 1, retryAft: 11 * time.Second, wantDelay: 11 * time.Second, reason: "MaxElapsed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := failure(apierr.RateLimited)
			if tt.retryAft > 0 {
				e.RetryAfter = tt.retryAft
			}
			a := retry.Attempt{N: tt.n, Err: e, Start: t0.Add(-tt.started), Now: t0}
			d := tt.policy.Decide(a, fixed(0))
			if d.Retry != tt.want || d.Delay != tt.wantDelay {
				t.Errorf("Decide = %+v, want retry %v after %v", d, tt.want, tt.wantDelay)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Reason %q does not say %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestDecideZeroStartIsNow(t *testing.T) {
	e := failure(apierr.RateLimited)
	e.RetryAfter = 4 * time.Minute
	if d := (retry.Policy{}).Decide(retry.Attempt{N: 1, Err: e, Now: t0}, fixed(0)); !d.Retry {
		t.Errorf("a zero Start must count from Now: %+v", d)
	}
}

func TestDecideBudget(t *testing.T) {
	t.Run("refuses", func(t *testing.T) {
		p := retry.Policy{Budget: retry.NewBudget(0, 0)}
		d := p.Decide(retry.Attempt{N: 1, Err: failure(apierr.Overloaded), Now: t0}, fixed(0))
		if d.Retry || !strings.Contains(d.Reason, "budget") {
			t.Errorf("Decide = %+v, want a refusal by the budget", d)
		}
	})
	t.Run("grants and withdraws", func(t *testing.T) {
		b := retry.NewBudget(0, 0.1) // a reserve of one retry per window
		p := retry.Policy{Budget: b}
		a := retry.Attempt{N: 1, Err: failure(apierr.Overloaded), Now: t0}
		if d := p.Decide(a, fixed(0)); !d.Retry {
			t.Fatalf("first retry refused: %+v", d)
		}
		if d := p.Decide(a, fixed(0)); d.Retry {
			t.Fatalf("second retry granted beyond the budget: %+v", d)
		}
	})
	t.Run("not charged when another rule refuses", func(t *testing.T) {
		b := retry.NewBudget(0, 0.1)
		p := retry.Policy{Budget: b, MaxAttempts: 2}
		for _, a := range []retry.Attempt{
			{N: 1, Err: failure(apierr.InvalidRequest), Now: t0},
			{N: 2, Err: failure(apierr.Overloaded), Now: t0},
			{N: 1, Err: &apierr.Error{Class: apierr.RateLimited, RetryAfter: time.Hour}, Now: t0},
		} {
			if d := p.Decide(a, fixed(0)); d.Retry {
				t.Fatalf("unexpected retry: %+v", d)
			}
		}
		if got := b.Available(t0); got != 1 {
			t.Errorf("Available = %v, want the untouched reserve of 1", got)
		}
	})
}

type body struct {
	r      io.Reader
	read   int64
	closed int
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

func (b *body) Close() error { b.closed++; return errors.New("close error is ignored") }

func TestDrain(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		limit    int64
		wantRead int64
	}{
		{"short body read whole", 100, retry.DefaultDrainLimit, 100},
		{"long body read up to the limit", 10_000, 4096, 4096},
		{"zero limit closes unread", 100, 0, 0},
		{"negative limit closes unread", 100, -1, 0},
		{"empty body", 0, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &body{r: strings.NewReader(strings.Repeat("x", tt.size))}
			retry.Drain(b, tt.limit)
			if b.read != tt.wantRead || b.closed != 1 {
				t.Errorf("read %d bytes, closed %d times; want %d bytes, closed once", b.read, b.closed, tt.wantRead)
			}
		})
	}
	t.Run("nil body", func(t *testing.T) {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("Drain(nil) panicked: %v", p)
			}
		}()
		retry.Drain(nil, 10)
	})
}
