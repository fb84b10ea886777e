package ratelimit

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// headerFromText turns "name: value" lines into an http.Header, the way a
// response's header block would arrive; lines without a colon are skipped.
func headerFromText(text string) http.Header {
	h := http.Header{}
	for line := range strings.SplitSeq(text, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		h.Add(strings.TrimSpace(name), value)
	}
	return h
}

func FuzzParse(f *testing.F) {
	var sb strings.Builder
	for k, vs := range anthropicResponse() {
		sb.WriteString(k + ": " + vs[0] + "\n")
	}
	f.Add(sb.String(), int64(1755780000), int64(30), int64(1000))
	f.Add("x-ratelimit-limit-tokens: 30000\nx-ratelimit-remaining-tokens: 0\nx-ratelimit-reset-tokens: 2m30.5s\nretry-after-ms: 1500.5", int64(0), int64(1), int64(30000))
	f.Add("retry-after: Thu, 21 Aug 2025 12:41:00 GMT\nx-should-retry: TRUE\nrequest-id: req_x", int64(-62135596800), int64(0), int64(-1))
	f.Add("anthropic-ratelimit-output-tokens-remaining: 99999999999999999999\nanthropic-ratelimit-output-tokens-reset: 9999-12-31T23:59:59.999999999+23:59", int64(253402300799), int64(7), int64(1<<62))
	f.Add("x-ratelimit-reset-requests: 1755780059\nx-ratelimit-limit-requests: 5.5\nretry-after: NaN", int64(1<<40), int64(2), int64(3))

	f.Fuzz(func(t *testing.T, text string, nowUnix, n, windowSec int64) {
		now := time.Unix(nowUnix%(1<<36), 0)
		h := headerFromText(text)
		s := Parse(h, now)

		if again := Parse(h, now); !sameSnapshot(again, s) {
			t.Fatalf("Parse is not deterministic: %+v vs %+v", s, again)
		}
		if !s.At.Equal(now) {
			t.Fatalf("At = %v, want %v", s.At, now)
		}
		if s.RetryAfter < -1 {
			t.Fatalf("RetryAfter = %v < -1", s.RetryAfter)
		}
		d, ok := ParseRetryAfter(h, now)
		if ok != (s.RetryAfter >= 0) || (ok && d != s.RetryAfter) {
			t.Fatalf("ParseRetryAfter = %v, %v but Snapshot.RetryAfter = %v", d, ok, s.RetryAfter)
		}
		anySeen := false
		for i, b := range s.Buckets {
			if b.Remaining < -1 || b.Limit < -1 {
				t.Fatalf("%v: negative count %+v", Dimension(i), b)
			}
			switch {
			case b.Remaining < 0 && b.Granularity != 0:
				t.Fatalf("%v: granularity %d for an unknown remaining", Dimension(i), b.Granularity)
			case b.Remaining >= 0 && b.Granularity != 1 && b.Granularity != 1000:
				t.Fatalf("%v: granularity %d", Dimension(i), b.Granularity)
			}
			anySeen = anySeen || b.Seen()
		}
		if anySeen && s.Provider == ProviderUnknown {
			t.Fatalf("buckets seen but provider unknown: %v", s)
		}
		if s.ShouldRetry > ShouldRetryFalse {
			t.Fatalf("ShouldRetry = %d", s.ShouldRetry)
		}
		_ = s.String()

		if bd, ok := s.Binding(); ok {
			b := s.Bucket(bd)
			if !b.Known() || b.Limit <= 0 {
				t.Fatalf("Binding %v has bucket %+v", bd, b)
			}
		}
		window := time.Duration(windowSec) * time.Second
		for _, dim := range Dimensions() {
			b := s.Bucket(dim)
			wait, ok := s.AvailableIn(dim, n, window)
			if !ok {
				continue
			}
			if wait < 0 {
				t.Fatalf("AvailableIn(%v, %d) = %v < 0", dim, n, wait)
			}
			if wait > 0 {
				bound := window
				if b.Reset.After(s.At) && b.Limit > max(0, b.Remaining-b.Granularity/2) {
					bound = b.Reset.Sub(s.At)
				}
				if wait > bound {
					t.Fatalf("AvailableIn(%v, %d) = %v beyond a full refill %v (bucket %+v)", dim, n, wait, bound, b)
				}
			}
		}
	})
}

// sameSnapshot compares snapshots with time.Time.Equal for the times.
func sameSnapshot(a, b Snapshot) bool {
	if !a.At.Equal(b.At) || a.Provider != b.Provider || a.RetryAfter != b.RetryAfter ||
		a.ShouldRetry != b.ShouldRetry || a.RequestID != b.RequestID {
		return false
	}
	for i := range a.Buckets {
		x, y := a.Buckets[i], b.Buckets[i]
		if x.Limit != y.Limit || x.Remaining != y.Remaining || x.Granularity != y.Granularity || !x.Reset.Equal(y.Reset) {
			return false
		}
	}
	return true
}
