package ratelimit

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Bucket returns what the snapshot says about dimension d, or
// UnknownBucket() if d is not a valid Dimension.
func (s Snapshot) Bucket(d Dimension) Bucket {
	if int(d) >= NumDimensions {
		return UnknownBucket()
	}
	return s.Buckets[d]
}

// Binding returns the dimension closest to exhaustion: among dimensions
// whose bucket is Known and has Limit > 0, the one with the lowest
// Remaining/Limit fraction (on a tie, the lower Dimension value). ok is false
// when no dimension qualifies.
func (s Snapshot) Binding() (d Dimension, ok bool) {
	for i, b := range s.Buckets {
		if !b.Known() || b.Limit <= 0 {
			continue
		}
		if !ok || lessFraction(b, s.Buckets[d]) {
			d, ok = Dimension(i), true
		}
	}
	return d, ok
}

// lessFraction reports a.Remaining/a.Limit < b.Remaining/b.Limit exactly,
// comparing the 128-bit products a.Remaining*b.Limit and b.Remaining*a.Limit.
// Both buckets must be Known with Limit > 0.
func lessFraction(a, b Bucket) bool {
	ahi, alo := bits.Mul64(uint64(a.Remaining), uint64(b.Limit))
	bhi, blo := bits.Mul64(uint64(b.Remaining), uint64(a.Limit))
	return ahi < bhi || (ahi == bhi && alo < blo)
}

// FullAt returns when dimension d's bucket will be fully replenished, if the
// snapshot knows.
func (s Snapshot) FullAt(d Dimension) (time.Time, bool) {
	r := s.Bucket(d).Reset
	return r, !r.IsZero()
}

// AvailableIn returns how long after s.At n units of dimension d will be
// available, modelling the bucket as continuously refilled up to its Limit:
//
//   - 0 if the bucket already holds n;
//   - otherwise the missing units divided by the refill rate, rounded up to
//     the next nanosecond. The rate is (Limit-Remaining)/(Reset-At) when the
//     reset is known and after At (the server's own promise of when the
//     bucket is full), else Limit/window.
//
// Remaining is read conservatively: a count reported with Granularity g
// (1000 for Anthropic's token dimensions) may be up to g/2 above the true
// value, so AvailableIn uses max(0, Remaining-g/2) both as the current
// level and in the refill rate (a lower level can only lengthen the wait).
//
// ok is false if the bucket is not Known, if n exceeds Limit (it can never
// be available at once), or if a wait is needed but no rate can be derived
// (no future reset and window <= 0). n <= 0 is available at once. The
// result is relative to s.At: a caller later than s.At subtracts the time
// elapsed since.
func (s Snapshot) AvailableIn(d Dimension, n int64, window time.Duration) (time.Duration, bool) {
	b := s.Bucket(d)
	if !b.Known() {
		return 0, false
	}
	if n <= 0 {
		return 0, true
	}
	if n > b.Limit {
		return 0, false
	}
	level := b.Remaining - b.Granularity/2
	if level < 0 {
		level = 0
	}
	if level >= n {
		return 0, true
	}
	missing := uint64(n - level)
	if b.Reset.After(s.At) && b.Limit > level {
		// n <= Limit, so missing <= Limit-level and the wait <= Reset-At.
		return mulDivCeil(missing, uint64(b.Reset.Sub(s.At)), uint64(b.Limit-level))
	}
	if window <= 0 {
		return 0, false
	}
	// missing <= n <= Limit, so the wait <= window.
	return mulDivCeil(missing, uint64(window), uint64(b.Limit))
}

// mulDivCeil returns ceil(a*b/c) as a Duration, computed in 128 bits. ok is
// false if c is 0 or the result does not fit.
func mulDivCeil(a, b, c uint64) (time.Duration, bool) {
	if c == 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, c)
	if q > math.MaxInt64 || (r != 0 && q == math.MaxInt64) {
		return 0, false
	}
	if r != 0 {
		q++
	}
	return time.Duration(q), true
}

// String returns a compact one-line form for logs, e.g.
//
//	anthropic requests=49/50@1s output_tokens=~8000/80000@45s retry_after=30s request_id=req_01
//
// Each seen dimension is name=remaining/limit@time-to-reset; "?" marks an
// unknown value and "~" a rounded remaining count. It contains no
// credentials: only what the rate-limit headers said and the request id.
func (s Snapshot) String() string {
	var sb strings.Builder
	sb.Grow(128)
	sb.WriteString(s.Provider.String())
	for i, b := range s.Buckets {
		if !b.Seen() {
			continue
		}
		sb.WriteByte(' ')
		sb.WriteString(Dimension(i).String())
		sb.WriteByte('=')
		if b.Remaining >= 0 && b.Granularity > 1 {
			sb.WriteByte('~')
		}
		writeCount(&sb, b.Remaining)
		sb.WriteByte('/')
		writeCount(&sb, b.Limit)
		sb.WriteByte('@')
		if b.Reset.IsZero() {
			sb.WriteByte('?')
		} else {
			sb.WriteString(b.Reset.Sub(s.At).Round(time.Millisecond).String())
		}
	}
	if s.RetryAfter >= 0 {
		sb.WriteString(" retry_after=")
		sb.WriteString(s.RetryAfter.String())
	}
	switch s.ShouldRetry {
	case ShouldRetryTrue:
		sb.WriteString(" should_retry=true")
	case ShouldRetryFalse:
		sb.WriteString(" should_retry=false")
	}
	if s.RequestID != "" {
		sb.WriteString(" request_id=")
		writeToken(&sb, s.RequestID)
	}
	return sb.String()
}

func writeCount(sb *strings.Builder, n int64) {
	if n < 0 {
		sb.WriteByte('?')
		return
	}
	var buf [20]byte
	sb.Write(strconv.AppendInt(buf[:0], n, 10))
}

// writeToken writes s bare if it is printable ASCII without spaces or
// quotes, else Go-quoted, so that a log line stays one parsable line.
func writeToken(sb *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' {
			sb.WriteString(strconv.Quote(s))
			return
		}
	}
	sb.WriteString(s)
}
