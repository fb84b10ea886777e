package ratelimit

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// headerKeys names the three headers of one dimension in one family, in
// canonical MIME form so that lookups are plain map reads.
type headerKeys struct {
	dim       Dimension
	limit     string
	remaining string
	reset     string
	// granularity is how precisely the family reports Remaining for dim.
	granularity int64
}

func anthropicKeys(prefix, name string, dim Dimension, granularity int64) headerKeys {
	base := prefix + name + "-"
	return headerKeys{
		dim:         dim,
		limit:       http.CanonicalHeaderKey(base + "limit"),
		remaining:   http.CanonicalHeaderKey(base + "remaining"),
		reset:       http.CanonicalHeaderKey(base + "reset"),
		granularity: granularity,
	}
}

func openAIKeys(name string, dim Dimension) headerKeys {
	return headerKeys{
		dim:         dim,
		limit:       http.CanonicalHeaderKey("x-ratelimit-limit-" + name),
		remaining:   http.CanonicalHeaderKey("x-ratelimit-remaining-" + name),
		reset:       http.CanonicalHeaderKey("x-ratelimit-reset-" + name),
		granularity: 1,
	}
}

// anthropicFamily lists the anthropic-ratelimit-* and anthropic-priority-*
// headers. Token counts are rounded to the nearest thousand.
var anthropicFamily = [...]headerKeys{
	anthropicKeys("anthropic-ratelimit-", "requests", Requests, 1),
	anthropicKeys("anthropic-ratelimit-", "input-tokens", InputTokens, 1000),
	anthropicKeys("anthropic-ratelimit-", "output-tokens", OutputTokens, 1000),
	anthropicKeys("anthropic-ratelimit-", "tokens", Tokens, 1000),
	anthropicKeys("anthropic-priority-", "input-tokens", PriorityInputTokens, 1000),
	anthropicKeys("anthropic-priority-", "output-tokens", PriorityOutputTokens, 1000),
}

// openAIFamily lists the x-ratelimit-* headers (OpenAI and compatible
// servers); their resets are relative durations.
var openAIFamily = [...]headerKeys{
	openAIKeys("requests", Requests),
	openAIKeys("tokens", Tokens),
}

var (
	keyRetryAfterMs = http.CanonicalHeaderKey("retry-after-ms")
	keyRetryAfter   = http.CanonicalHeaderKey("retry-after")
	keyShouldRetry  = http.CanonicalHeaderKey("x-should-retry")
	keyRequestID    = http.CanonicalHeaderKey("request-id")
	keyXRequestID   = http.CanonicalHeaderKey("x-request-id")
)

// header returns the first value of the canonical key k, trimmed of
// surrounding whitespace, and whether it was present and non-empty.
func header(h http.Header, k string) (string, bool) {
	v := h[k]
	if len(v) == 0 {
		return "", false
	}
	s := strings.TrimSpace(v[0])
	return s, s != ""
}

// Parse reads every rate-limit header family, retry-after, x-should-retry
// and the request id from h, as they stood when the response arrived at
// now. It never fails: a header that is missing, negative, garbled or out of
// range leaves its value unknown (-1, the zero time, RetryAfter -1).
//
// Families:
//   - Anthropic: anthropic-ratelimit-{requests,input-tokens,output-tokens,
//     tokens}-{limit,remaining,reset} and anthropic-priority-{input,output}-
//     tokens-{limit,remaining,reset}. Resets are absolute RFC 3339 times.
//     Token dimensions report Remaining rounded to the nearest thousand, so
//     their Granularity is 1000.
//   - OpenAI and compatible servers: x-ratelimit-{limit,remaining}-
//     {requests,tokens} and x-ratelimit-reset-{requests,tokens}. Resets are
//     relative Go-style durations ("1s", "6m0s", "12ms", "2m30.5s") or a bare
//     number of seconds, resolved as now+d. A bare number of at least 1e9 is
//     taken as a Unix timestamp instead, and an RFC 3339 time is accepted
//     too.
//
// Provider is Anthropic if any anthropic-* rate-limit header is present,
// else OpenAI if any x-ratelimit-* header is present. When both families are
// present, the Anthropic values win for the dimensions they both describe.
//
// h is read through its canonical keys, as net/http builds them; keys
// added to the map directly in another case are not seen (as with
// http.Header.Get).
func Parse(h http.Header, now time.Time) Snapshot {
	s := Snapshot{At: now, RetryAfter: -1}
	for i := range s.Buckets {
		s.Buckets[i] = UnknownBucket()
	}
	var seenAnthropic, seenOpenAI bool
	for _, k := range anthropicFamily {
		b, seen := parseBucket(h, k, now, parseAbsoluteReset)
		seenAnthropic = seenAnthropic || seen
		s.Buckets[k.dim] = b
	}
	for _, k := range openAIFamily {
		b, seen := parseBucket(h, k, now, parseRelativeReset)
		seenOpenAI = seenOpenAI || seen
		if !s.Buckets[k.dim].Seen() {
			s.Buckets[k.dim] = b
		}
	}
	switch {
	case seenAnthropic:
		s.Provider = Anthropic
	case seenOpenAI:
		s.Provider = OpenAI
	}
	if d, ok := ParseRetryAfter(h, now); ok {
		s.RetryAfter = d
	}
	if v, ok := header(h, keyShouldRetry); ok {
		switch {
		case strings.EqualFold(v, "true"):
			s.ShouldRetry = ShouldRetryTrue
		case strings.EqualFold(v, "false"):
			s.ShouldRetry = ShouldRetryFalse
		}
	}
	if v, ok := header(h, keyRequestID); ok {
		s.RequestID = v
	} else if v, ok := header(h, keyXRequestID); ok {
		s.RequestID = v
	}
	return s
}

// parseBucket reads one dimension's three headers. seen reports whether any
// of them was present, parsable or not.
func parseBucket(h http.Header, k headerKeys, now time.Time, reset func(string, time.Time) time.Time) (b Bucket, seen bool) {
	b = UnknownBucket()
	if v, ok := header(h, k.limit); ok {
		seen = true
		b.Limit = parseCount(v)
	}
	if v, ok := header(h, k.remaining); ok {
		seen = true
		b.Remaining = parseCount(v)
		if b.Remaining >= 0 {
			b.Granularity = k.granularity
		}
	}
	if v, ok := header(h, k.reset); ok {
		seen = true
		b.Reset = reset(v, now)
	}
	return b, seen
}

// parseCount parses a non-negative decimal count. A fractional part is
// accepted and dropped ("48000.0" is 48000). Anything else, including a
// sign, an exponent or a value beyond int64, is -1.
func parseCount(s string) int64 {
	var n int64
	i := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return -1
		}
		n = n*10 + d
	}
	if i == 0 {
		return -1
	}
	if i < len(s) {
		if s[i] != '.' {
			return -1
		}
		for i++; i < len(s); i++ {
			if !isDigit(s[i]) {
				return -1
			}
		}
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseDecimal parses an unsigned decimal number ("30", "1.5", ".25") of
// the given unit into a Duration, rounding any fraction of a nanosecond up
// so that a wait is never shorter than asked. It rejects signs, exponents,
// NaN, Inf and values that overflow a Duration.
func parseDecimal(s string, unit time.Duration) (time.Duration, bool) {
	var whole int64
	i := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		d := int64(s[i] - '0')
		if whole > (math.MaxInt64-d)/10 {
			return 0, false
		}
		whole = whole*10 + d
	}
	digits := i
	if whole > math.MaxInt64/int64(unit) {
		return 0, false
	}
	total := time.Duration(whole) * unit
	if i < len(s) {
		if s[i] != '.' {
			return 0, false
		}
		i++
		// Up to 9 fraction digits are exact for units up to a second; any
		// further non-zero digit rounds the result up by a nanosecond.
		var frac, scale int64 = 0, 1
		var rest bool
		for ; i < len(s); i++ {
			c := s[i]
			if !isDigit(c) {
				return 0, false
			}
			digits++
			if scale < 1e9 {
				frac = frac*10 + int64(c-'0')
				scale *= 10
			} else if c != '0' {
				rest = true
			}
		}
		ns := frac * int64(unit) // < 1e9 * 1e9, fits
		part := ns / scale
		if ns%scale != 0 || rest {
			part++
		}
		if total > math.MaxInt64-time.Duration(part) {
			return 0, false
		}
		total += time.Duration(part)
	}
	if digits == 0 {
		return 0, false
	}
	return total, true
}

// parseAbsoluteReset parses an RFC 3339 time (fractional seconds and
// offsets allowed; a lowercase "t"/"z" or a space separator tolerated),
// returned in UTC.
func parseAbsoluteReset(s string, _ time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	if len(s) > 64 {
		return time.Time{}
	}
	var buf [64]byte
	b := buf[:len(s)]
	copy(b, s)
	changed := false
	for i, c := range b {
		switch {
		case c == 't' || c == 'z':
			b[i] = c - 'a' + 'A'
			changed = true
		case c == ' ' && i == 10:
			b[i] = 'T'
			changed = true
		}
	}
	if !changed {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, string(b)); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

// parseRelativeReset parses an x-ratelimit-reset-* value relative to now.
func parseRelativeReset(s string, now time.Time) time.Time {
	if d, ok := parseDecimal(s, time.Second); ok {
		if secs := d / time.Second; secs >= 1e9 {
			// A bare number this large is no wait anyone would announce
			// (over 31 years); servers that send one mean a Unix time.
			return time.Unix(int64(secs), int64(d%time.Second)).UTC()
		}
		return now.Add(d)
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}
		}
		return now.Add(d)
	}
	return parseAbsoluteReset(s, now)
}

// ParseRetryAfter returns the wait the server asked for in h, relative to
// now: retry-after-ms (milliseconds, possibly fractional) if it is present
// and valid, else retry-after as whole or fractional seconds or as an HTTP
// date (a date in the past is a wait of 0). ok is false when neither header
// holds a usable value; negative, NaN, infinite and overflowing values are
// unusable.
func ParseRetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	if v, present := header(h, keyRetryAfterMs); present {
		if d, ok := parseDecimal(v, time.Millisecond); ok {
			return d, true
		}
	}
	v, present := header(h, keyRetryAfter)
	if !present {
		return 0, false
	}
	if d, ok := parseDecimal(v, time.Second); ok {
		return d, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}
