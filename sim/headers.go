package sim

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// anthropicFamilies maps the Anthropic header families to their buckets.
var anthropicFamilies = []struct {
	name string
	dim  ratelimit.Dimension
}{
	{"requests", ratelimit.Requests},
	{"input-tokens", ratelimit.InputTokens},
	{"output-tokens", ratelimit.OutputTokens},
}

// setAnthropicHeaders writes the anthropic-ratelimit-* families for the
// bucket states v at now. Token remainders are rounded to the nearest
// thousand; resets are the RFC 3339 second (rounded up) at which the bucket
// will be full. The tokens family is the combined bucket in CombinedTPM
// mode, else input+output together (full when both are).
func setAnthropicHeaders(h http.Header, v *[ratelimit.NumDimensions]bucketView, now time.Time) {
	for _, f := range anthropicFamilies {
		b := v[f.dim]
		if !b.present {
			continue
		}
		rem := remaining(b.level)
		if f.dim != ratelimit.Requests {
			rem = roundThousand(rem)
		}
		setFamily(h, "anthropic-ratelimit-"+f.name, b.limit, rem, resetTime(now, b.fullIn))
	}
	in, out, tok := v[ratelimit.InputTokens], v[ratelimit.OutputTokens], v[ratelimit.Tokens]
	switch {
	case tok.present:
		setFamily(h, "anthropic-ratelimit-tokens", tok.limit, roundThousand(remaining(tok.level)), resetTime(now, tok.fullIn))
	case in.present && out.present:
		rem := roundThousand(remaining(in.level) + remaining(out.level))
		setFamily(h, "anthropic-ratelimit-tokens", in.limit+out.limit, rem, resetTime(now, max(in.fullIn, out.fullIn)))
	}
}

func setFamily(h http.Header, prefix string, limit, rem int64, reset string) {
	h[http.CanonicalHeaderKey(prefix+"-limit")] = []string{strconv.FormatInt(limit, 10)}
	h[http.CanonicalHeaderKey(prefix+"-remaining")] = []string{strconv.FormatInt(rem, 10)}
	h[http.CanonicalHeaderKey(prefix+"-reset")] = []string{reset}
}

// setOpenAIHeaders writes x-ratelimit-{limit,remaining,reset}-{requests,tokens};
// resets are durations (rounded up to the millisecond) until the bucket is
// full, in Go syntax ("1s", "6m0s", "12ms").
func setOpenAIHeaders(h http.Header, v *[ratelimit.NumDimensions]bucketView) {
	for _, f := range []struct {
		name string
		dim  ratelimit.Dimension
	}{{"requests", ratelimit.Requests}, {"tokens", ratelimit.Tokens}} {
		b := v[f.dim]
		if !b.present {
			continue
		}
		h.Set("X-Ratelimit-Limit-"+f.name, strconv.FormatInt(b.limit, 10))
		h.Set("X-Ratelimit-Remaining-"+f.name, strconv.FormatInt(remaining(b.level), 10))
		h.Set("X-Ratelimit-Reset-"+f.name, resetDuration(b.fullIn))
	}
}

// remaining is a level as a whole, non-negative count.
func remaining(level float64) int64 {
	if level <= 0 {
		return 0
	}
	return int64(math.Floor(level + epsilon))
}

// roundThousand rounds to the nearest thousand (halves up).
func roundThousand(n int64) int64 {
	return (n + 500) / 1000 * 1000
}

// resetTime is now+d rounded up to the whole second, in RFC 3339 UTC.
func resetTime(now time.Time, d time.Duration) string {
	t := now.Add(d).UTC()
	if t.Nanosecond() > 0 {
		t = t.Truncate(time.Second).Add(time.Second)
	}
	return t.Format(time.RFC3339)
}

// resetDuration renders d rounded up to the millisecond.
func resetDuration(d time.Duration) string {
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	return d.String()
}

const base58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// requestID renders an id in the provider's shape from a 64-bit value:
// Anthropic "req_011C" + 20 base58 characters; OpenAI "req_" + 32 hex digits.
func requestID(p ratelimit.Provider, x, y uint64) string {
	if p == ratelimit.OpenAI {
		const hex = "0123456789abcdef"
		b := []byte("req_")
		for _, v := range []uint64{x, y} {
			for i := 60; i >= 0; i -= 4 {
				b = append(b, hex[(v>>uint(i))&0xf])
			}
		}
		return string(b)
	}
	b := []byte("req_011C")
	for i := 0; i < 20; i++ {
		v := x
		if i >= 10 {
			v = y
		}
		b = append(b, base58[v%58])
		if i >= 10 {
			y /= 58
		} else {
			x /= 58
		}
	}
	return string(b)
}
