package apierr

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// MaxBody is how much of an error response's body an Error keeps in Body.
const MaxBody = 64 << 10

// Error is a classified upstream failure: an HTTP error response, a
// mid-stream error event or a transport failure. It keeps what the provider
// said (type, code, message, request id) next to the Class a retry policy
// acts on.
//
// Use errors.Is(err, apierr.RateLimited) to test the class anywhere in an
// error chain, and errors.As(err, &e) to reach the details. An Error is a
// plain value: safe to read from many goroutines once built, not to modify
// concurrently.
type Error struct {
	// Provider is the API family that produced the error, if known.
	Provider ratelimit.Provider
	// Class is what kind of failure this is.
	Class Class
	// StatusCode is the HTTP status: the error response's, 200 for an
	// error event inside a streamed 200 response, 0 for a Network error.
	StatusCode int
	// Type is the provider's error type, e.g. "rate_limit_error" or
	// "insufficient_quota"; empty if the body carried none.
	Type string
	// Code is OpenAI's error.code or Anthropic's error.details.error_code
	// (e.g. "insufficient_quota", "enforced_spend_limit_reached"); empty if
	// absent.
	Code string
	// Message is the provider's human-readable message; empty if absent.
	Message string
	// RequestID is the request-id (or x-request-id) header, else the body's
	// request_id; empty if neither.
	RequestID string
	// Dimension is the limit a RateLimited error hit, when DimensionKnown:
	// read from the message ("... 20,000 input tokens per minute ..."),
	// else the dimension the response's headers report at zero.
	Dimension ratelimit.Dimension
	// DimensionKnown reports whether Dimension is meaningful.
	DimensionKnown bool
	// RetryAfter is the wait the server asked for (retry-after-ms or
	// retry-after), or -1 if it gave none.
	RetryAfter time.Duration
	// ShouldRetry is the x-should-retry header; see Retryable.
	ShouldRetry ratelimit.ShouldRetry
	// MidStream reports an error event received after a 200 response had
	// started streaming: whatever the class, the caller has already seen
	// part of the answer.
	MidStream bool
	// Body is a copy of the first MaxBody bytes of the raw error body or
	// event data; nil for Network errors.
	Body []byte
	// Err is the underlying cause of a Network error; nil otherwise.
	Err error
}

var _ error = (*Error)(nil)

// Error returns a one-line description such as
// "apierr: 429 rate_limit_error: <message> (request_id req_x)". A
// mid-stream error reads "apierr: stream overloaded_error: Overloaded".
func (e *Error) Error() string {
	if e == nil {
		return "apierr: <nil>"
	}
	var sb strings.Builder
	sb.WriteString("apierr: ")
	if e.Class == Network && e.StatusCode == 0 {
		sb.WriteString("network")
		if e.Err != nil {
			sb.WriteString(": ")
			sb.WriteString(e.Err.Error())
		}
		return sb.String()
	}
	switch {
	case e.MidStream:
		sb.WriteString("stream ")
	case e.StatusCode != 0:
		sb.WriteString(strconv.Itoa(e.StatusCode))
		sb.WriteByte(' ')
	}
	if e.Type != "" {
		sb.WriteString(e.Type)
	} else {
		sb.WriteString(e.Class.String())
	}
	msg := e.Message
	if msg == "" && !e.MidStream {
		msg = http.StatusText(e.StatusCode)
	}
	if msg != "" {
		sb.WriteString(": ")
		sb.WriteString(msg)
	}
	if e.RequestID != "" {
		sb.WriteString(" (request_id ")
		sb.WriteString(e.RequestID)
		sb.WriteByte(')')
	}
	return sb.String()
}

// Unwrap returns the underlying cause (set for Network errors).
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's Class, so that
// errors.Is(err, apierr.RateLimited) works through any wrapping.
func (e *Error) Is(target error) bool {
	c, ok := target.(Class)
	return ok && e.Class == c
}

// Retryable reports whether sending the same request again later may
// succeed.
//
// It starts from Class.Retryable and lets the provider's x-should-retry
// header override it, as the official SDKs do, with one exception:
// QuotaExhausted stays non-retryable even under "x-should-retry: true".
// A spend cap or an exhausted quota is recognised from an explicit code or
// message and does not clear for days, while the header is sent on 429s
// generically; trusting it there would retry for nothing. "x-should-retry:
// false" always wins. A mid-stream error answers the same question for a
// new request; whether the partial stream can be resumed is the caller's
// decision.
func (e *Error) Retryable() bool {
	switch e.ShouldRetry {
	case ratelimit.ShouldRetryFalse:
		return false
	case ratelimit.ShouldRetryTrue:
		return e.Class != QuotaExhausted
	}
	return e.Class.Retryable()
}

// valid reports whether c is one of the declared classes.
func (c Class) valid() bool { return int(c) < len(classNames) }
