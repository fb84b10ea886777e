// Package ratelimit is streamgate's vocabulary for provider rate limits: the
// dimensions an account is limited in, and a Snapshot of what one response's
// headers said about them at the moment the response arrived.
//
// Parsing is lenient: a header that is missing, negative or garbled leaves
// its value unknown (-1 or the zero time), never zero, and never panics.
// Time is always a parameter: Parse takes the arrival time, and every helper
// answers relative to Snapshot.At.
package ratelimit

import (
	"time"
)

// Provider names the API family whose headers a Snapshot was read from.
type Provider uint8

const (
	// ProviderUnknown means no recognised rate-limit header was present.
	ProviderUnknown Provider = iota
	// Anthropic is the Anthropic Messages API (anthropic-ratelimit-* headers).
	Anthropic
	// OpenAI is the OpenAI API and OpenAI-compatible servers (x-ratelimit-*).
	OpenAI
)

// String returns "anthropic", "openai" or "unknown".
func (p Provider) String() string {
	switch p {
	case Anthropic:
		return "anthropic"
	case OpenAI:
		return "openai"
	default:
		return "unknown"
	}
}

// Dimension is one rate-limited quantity of an account.
type Dimension uint8

const (
	// Requests is requests per minute (RPM).
	Requests Dimension = iota
	// InputTokens is input tokens per minute (Anthropic ITPM).
	InputTokens
	// OutputTokens is output tokens per minute (Anthropic OTPM).
	OutputTokens
	// Tokens is the combined tokens-per-minute limit: OpenAI's TPM, or
	// Anthropic's anthropic-ratelimit-tokens-* (the most restrictive limit in
	// effect, else input+output combined).
	Tokens
	// PriorityInputTokens is Anthropic's Priority Tier input limit.
	PriorityInputTokens
	// PriorityOutputTokens is Anthropic's Priority Tier output limit.
	PriorityOutputTokens

	// NumDimensions is the number of dimensions; it sizes Snapshot.Buckets.
	NumDimensions = int(PriorityOutputTokens) + 1
)

var dimensionNames = [NumDimensions]string{
	Requests:             "requests",
	InputTokens:          "input_tokens",
	OutputTokens:         "output_tokens",
	Tokens:               "tokens",
	PriorityInputTokens:  "priority_input_tokens",
	PriorityOutputTokens: "priority_output_tokens",
}

// String returns the dimension's snake_case name, e.g. "output_tokens".
func (d Dimension) String() string {
	if int(d) < NumDimensions {
		return dimensionNames[d]
	}
	return "unknown"
}

// ParseDimension is the inverse of Dimension.String.
func ParseDimension(s string) (Dimension, bool) {
	for i, n := range dimensionNames {
		if n == s {
			return Dimension(i), true
		}
	}
	return 0, false
}

// Dimensions returns every dimension in order.
func Dimensions() []Dimension {
	ds := make([]Dimension, NumDimensions)
	for i := range ds {
		ds[i] = Dimension(i)
	}
	return ds
}

// Bucket is what one response said about one dimension. Unknown numbers
// are -1 and an unknown reset is the zero time; the zero Bucket is therefore
// not "unknown" (use Unknown() to make one).
type Bucket struct {
	// Limit is the bucket's capacity per window, or -1 if unknown.
	Limit int64
	// Remaining is what was left when the response was produced, or -1.
	Remaining int64
	// Reset is when the bucket will be full again (absolute; relative resets
	// are resolved against the response's arrival time), or zero if unknown.
	Reset time.Time
	// Granularity is how precisely Remaining is reported: 1000 for
	// Anthropic's token dimensions (rounded to the nearest thousand), 1
	// otherwise. Zero when Remaining is unknown.
	Granularity int64
}

// UnknownBucket returns a Bucket with every field unknown.
func UnknownBucket() Bucket { return Bucket{Limit: -1, Remaining: -1} }

// Known reports whether both the limit and the remaining count are known.
func (b Bucket) Known() bool { return b.Limit >= 0 && b.Remaining >= 0 }

// Seen reports whether anything at all is known about the bucket.
func (b Bucket) Seen() bool { return b.Limit >= 0 || b.Remaining >= 0 || !b.Reset.IsZero() }

// ShouldRetry is the provider's x-should-retry advice, which overrides the
// status code when present.
type ShouldRetry uint8

const (
	// ShouldRetryUnset means the header was absent or unparsable.
	ShouldRetryUnset ShouldRetry = iota
	// ShouldRetryTrue means "x-should-retry: true".
	ShouldRetryTrue
	// ShouldRetryFalse means "x-should-retry: false".
	ShouldRetryFalse
)

// Snapshot is the server's view of an account's limits as one response's
// headers reported it.
type Snapshot struct {
	// At is when the response arrived; relative values are resolved from it.
	At time.Time
	// Provider is the header family seen (Anthropic wins if both appear).
	Provider Provider
	// Buckets holds one entry per Dimension; unseen dimensions are
	// UnknownBucket().
	Buckets [NumDimensions]Bucket
	// RetryAfter is the wait the server asked for (retry-after-ms preferred
	// over retry-after), or -1 if none was given or it was unparsable.
	RetryAfter time.Duration
	// ShouldRetry is the x-should-retry header.
	ShouldRetry ShouldRetry
	// RequestID is the request-id header (or x-request-id), if any.
	RequestID string
}
