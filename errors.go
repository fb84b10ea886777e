package streamgate

import (
	"errors"
	"fmt"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/sse"
)

var (
	// ErrIncomplete is wrapped by every *StreamError: a stream ended without
	// its terminal event. A caller must not treat what it received as a
	// complete answer.
	ErrIncomplete = errors.New("streamgate: stream incomplete")
	// ErrStalled is the cause of a StreamError when no byte arrived for the
	// idle timeout.
	ErrStalled = errors.New("streamgate: stream stalled")
	// ErrRequestTooLarge is returned when a request body exceeds the
	// configured maximum the Transport buffers.
	ErrRequestTooLarge = errors.New("streamgate: request body too large")
)

// AdmissionError is returned by RoundTrip when a request was not admitted:
// the queue was full, the wait could not fit the caller's deadline or the
// configured maximum wait, or the gate was closed. Nothing was sent
// upstream. A proxy answers it with its own 429 and RetryAfter.
type AdmissionError struct {
	// RetryAfter is the estimated wait until the request could have been
	// admitted, or 0 when unknown.
	RetryAfter time.Duration
	// Cause is gate.ErrQueueFull, a *gate.WaitError, gate.ErrClosed or a
	// context error.
	Cause error
}

// Error implements error.
func (e *AdmissionError) Error() string {
	msg := "streamgate: not admitted: " + e.Cause.Error()
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter.Round(time.Millisecond))
	}
	return msg
}

// Unwrap returns the cause.
func (e *AdmissionError) Unwrap() error { return e.Cause }

// StreamError is returned by a response body's Read when the stream was
// interrupted after the caller had started receiving it: an error event, an
// end of stream without the terminal event, a stall, or a broken
// connection. It never looks like io.EOF.
type StreamError struct {
	// Class is the failure class: the error event's class, Network for a
	// broken or truncated stream, Timeout for a stall, Unknown for a
	// malformed stream.
	Class apierr.Class
	// Status is the stream model's verdict (Errored, Truncated, Malformed).
	Status sse.Status
	// Reason explains the verdict.
	Reason string
	// Upstream is the provider's error for an error event, else nil.
	Upstream *apierr.Error
	// Cause is the underlying error (ErrStalled, a read error), if any.
	Cause error
	// OutputTokens is how many output tokens the stream produced before it
	// ended (as reported, else estimated).
	OutputTokens int64
	// RequestID is the provider's request id.
	RequestID string
}

// Error implements error.
func (e *StreamError) Error() string {
	msg := fmt.Sprintf("streamgate: stream %s (%s): %s", e.Status, e.Class, e.Reason)
	if e.Upstream != nil {
		msg += ": " + e.Upstream.Error()
	} else if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	if e.RequestID != "" {
		msg += " (request_id " + e.RequestID + ")"
	}
	return msg
}

// Unwrap returns ErrIncomplete and the cause, so errors.Is(err,
// ErrIncomplete), errors.Is(err, apierr.Overloaded) and errors.As(err,
// **apierr.Error) all work.
func (e *StreamError) Unwrap() []error {
	errs := []error{ErrIncomplete, e.Class}
	if e.Upstream != nil {
		errs = append(errs, e.Upstream)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}
