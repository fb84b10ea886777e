// Package retry decides whether and when streamgate sends a failed request
// again.
//
// A Policy turns one classified failure (an *apierr.Error) and the history
// of the request into a Decision: retry or not, after what delay, and why.
// Decide is pure apart from the optional retry Budget: time is a parameter
// (Attempt.Now) and randomness is injected, so decisions are reproducible
// in tests.
//
// The delay is max(retry-after, backoff), where backoff is exponential from
// Policy.BaseDelay, capped at Policy.MaxBackoff, jittered, and, for rate
// limits, capped at the time the exhausted dimension is full again. The
// provider's retry-after is a floor that no cap cuts: retrying earlier is
// documented to fail.
//
// A Budget bounds retries to a fraction of traffic, so that a failing
// upstream sees a bounded amount of extra load instead of a retry storm.
package retry

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/ratelimit"
)

// Defaults for the zero fields of Policy.
const (
	DefaultMaxAttempts = 5
	DefaultMaxElapsed  = 5 * time.Minute
	DefaultBaseDelay   = time.Second
	DefaultMaxBackoff  = 60 * time.Second
	DefaultJitter      = 0.25
)

// Policy decides retries. The zero Policy uses every default; a Policy is
// a plain value, safe to copy and to use from many goroutines (its Budget,
// if any, is itself safe for concurrent use).
type Policy struct {
	// MaxAttempts is the maximum number of attempts, the first included.
	// Zero or negative means DefaultMaxAttempts (5).
	MaxAttempts int
	// MaxElapsed bounds the time from the first attempt to the start of the
	// last one: a retry whose delay would end after Start+MaxElapsed is not
	// made. Zero or negative means DefaultMaxElapsed (5 minutes).
	MaxElapsed time.Duration
	// BaseDelay is the backoff before the second attempt; it doubles with
	// every attempt. Zero or negative means DefaultBaseDelay (1s).
	BaseDelay time.Duration
	// MaxBackoff caps the exponential backoff (not retry-after). Zero or
	// negative means DefaultMaxBackoff (60s).
	MaxBackoff time.Duration
	// Jitter is the fraction of the backoff that is randomised: the backoff
	// b becomes b x (1 - Jitter x r) for r uniform in [0, 1), so it lies in
	// (b x (1-Jitter), b]. That decorrelates clients that failed together
	// while never waiting longer than the cap. Zero means DefaultJitter
	// (0.25); a negative value disables jitter; values above 1 mean 1 (full
	// jitter: uniform in (0, b]).
	Jitter float64
	// Budget, if not nil, must grant every retry (see Budget.TryRetry);
	// nil means retries are limited by MaxAttempts and MaxElapsed only.
	Budget *Budget
}

// Attempt describes a failed attempt to decide about.
type Attempt struct {
	// N is the number of attempts already made, at least 1 (values below 1
	// are treated as 1).
	N int
	// Err is the classified failure of the latest attempt. A nil Err is
	// never retried.
	Err *apierr.Error
	// FullAt is when the dimension a rate limit hit is full again, from the
	// budget store or the response's reset headers; zero if unknown. It
	// caps the backoff of RateLimited errors only: for overload and server
	// errors the budget says nothing about when the provider recovers.
	FullAt time.Time
	// Start is when the first attempt started; zero means Now.
	Start time.Time
	// Now is the time of the decision.
	Now time.Time
}

// Decision is a Policy's answer.
type Decision struct {
	// Retry reports whether to send the request again.
	Retry bool
	// Delay is how long to wait before the retry. When Retry is false
	// because of MaxAttempts, MaxElapsed or the Budget, it is the delay the
	// retry would have needed (a proxy may pass it on as retry-after);
	// otherwise it is zero.
	Delay time.Duration
	// Reason says, for logs, why: what the delay is based on, or which
	// rule stopped the retries.
	Reason string
}

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = DefaultMaxElapsed
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	switch {
	case p.Jitter == 0:
		p.Jitter = DefaultJitter
	case p.Jitter < 0 || math.IsNaN(p.Jitter):
		p.Jitter = 0
	case p.Jitter > 1:
		p.Jitter = 1
	}
	return p
}

// Decide returns whether and when to retry after a.Err. rnd returns
// uniform values in [0, 1) for the jitter; nil means math/rand/v2's
// Float64. When p.Budget is set and every other rule allows a retry,
// Decide withdraws the retry from the budget.
//
// Which failures are retried:
//
//   - "x-should-retry: false" is never retried, whatever the class.
//   - QuotaExhausted (spend caps, insufficient_quota) is never retried, even
//     with "x-should-retry: true": it does not clear for days.
//   - Retryable classes (RateLimited, Overloaded, ServerError, Timeout,
//     Conflict, Network) are retried.
//   - The client-error classes (InvalidRequest, Authentication, Billing,
//     Permission, NotFound, RequestTooLarge) and Unknown are not, unless the
//     provider sent "x-should-retry: true"; even then a client error whose
//     body names the provider's error type (Err.Type, e.g.
//     "invalid_request_error") is not retried, because the provider said
//     the request itself cannot succeed. A client-error status without a
//     provider error body (say, from an intermediary) follows the header.
func (p Policy) Decide(a Attempt, rnd func() float64) Decision {
	e := a.Err
	if e == nil {
		return Decision{Reason: "no error to retry"}
	}
	if ok, why := retryable(e); !ok {
		return Decision{Reason: why}
	}
	p = p.withDefaults()
	if rnd == nil {
		rnd = rand.Float64
	}
	n := max(a.N, 1)
	delay, basis := p.delay(n, e, a, rnd)
	if n >= p.MaxAttempts {
		return Decision{Delay: delay, Reason: fmt.Sprintf("%v: gave up after %d attempts (MaxAttempts %d)", e.Class.String(), n, p.MaxAttempts)}
	}
	start := a.Start
	if start.IsZero() {
		start = a.Now
	}
	if a.Now.Add(delay).After(start.Add(p.MaxElapsed)) {
		return Decision{Delay: delay, Reason: fmt.Sprintf("%v: a retry in %v would pass MaxElapsed %v", e.Class.String(), delay, p.MaxElapsed)}
	}
	if p.Budget != nil && !p.Budget.TryRetry(a.Now) {
		return Decision{Delay: delay, Reason: fmt.Sprintf("%v: retry budget exhausted", e.Class.String())}
	}
	return Decision{Retry: true, Delay: delay, Reason: fmt.Sprintf("%v: retry in %v (%s)", e.Class.String(), delay, basis)}
}

// retryable applies the class and x-should-retry rules of Decide.
func retryable(e *apierr.Error) (bool, string) {
	switch {
	case e.ShouldRetry == ratelimit.ShouldRetryFalse:
		return false, fmt.Sprintf("%v: x-should-retry: false", e.Class.String())
	case e.Class == apierr.QuotaExhausted:
		return false, "quota_exhausted: retrying cannot help"
	case e.Class.Retryable():
		return true, ""
	case e.ShouldRetry != ratelimit.ShouldRetryTrue:
		return false, fmt.Sprintf("%v: not retryable", e.Class.String())
	case clientError(e.Class) && e.Type != "":
		return false, fmt.Sprintf("%v: the provider's %s says the request cannot succeed (x-should-retry: true ignored)", e.Class.String(), e.Type)
	}
	return true, ""
}

// clientError reports whether c is a 4xx class saying the request itself
// is wrong (as opposed to QuotaExhausted or a retryable 408/409/429).
func clientError(c apierr.Class) bool {
	switch c {
	case apierr.InvalidRequest, apierr.Authentication, apierr.Billing,
		apierr.Permission, apierr.NotFound, apierr.RequestTooLarge:
		return true
	}
	return false
}

// delay computes max(retry-after, capped jittered backoff) and names the
// basis. p has its defaults applied.
func (p Policy) delay(n int, e *apierr.Error, a Attempt, rnd func() float64) (time.Duration, string) {
	b := min(float64(p.BaseDelay)*math.Exp2(float64(n-1)), float64(p.MaxBackoff))
	r := rnd()
	if !(r >= 0) { // also catches NaN
		r = 0
	}
	r = min(r, 1)
	d := time.Duration(b * (1 - p.Jitter*r))
	basis := "backoff"
	if e.Class == apierr.RateLimited && !a.FullAt.IsZero() {
		if c := max(a.FullAt.Sub(a.Now), 0); c < d {
			d, basis = c, "backoff capped at the budget's refill"
		}
	}
	if e.RetryAfter > 0 && e.RetryAfter >= d {
		d, basis = e.RetryAfter, "retry-after"
	}
	return d, basis
}

// DefaultDrainLimit is a reasonable limit for Drain: small error bodies
// are read whole, large ones are not worth reading to save a connection.
const DefaultDrainLimit = 4 << 10

// Drain reads and discards up to limit bytes of body, then closes it, so
// that the HTTP client can reuse the keep-alive connection for the retry.
// A body longer than limit is closed unread past it (the connection is
// then dropped, which is cheaper than reading a large body). A limit of
// zero or less closes without reading. A nil body is ignored; read and
// close errors are ignored, since the response has already been dealt with.
func Drain(body io.ReadCloser, limit int64) {
	if body == nil {
		return
	}
	if limit > 0 {
		_, _ = io.CopyN(io.Discard, body, limit)
	}
	_ = body.Close()
}
