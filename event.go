package streamgate

import (
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

// EventKind names a step in a request's life.
type EventKind uint8

const (
	// EventQueued: the request entered the admission queue.
	EventQueued EventKind = iota + 1
	// EventAdmitted: the gate admitted it (Wait is the time queued).
	EventAdmitted
	// EventRejected: admission failed (queue full, deadline, cancelled).
	EventRejected
	// EventHeaders: an upstream response arrived (Status, Snapshot).
	EventHeaders
	// EventFirstByte: the first body bytes were handed to the caller.
	EventFirstByte
	// EventRetry: an attempt failed and will be retried after Delay.
	EventRetry
	// EventCompleted: the stream or response ended complete.
	EventCompleted
	// EventFailed: the request ended in an error (Class, Err).
	EventFailed
	// EventCancelled: the caller went away (context cancelled or body
	// closed before the end).
	EventCancelled
	// EventResume: an interrupted stream is being continued (Attempt is
	// the resume's number, Class and Err why it was cut, OutputTokens what
	// the cut attempt produced, Wasted what of it never reached the
	// caller).
	EventResume
)

var eventNames = [...]string{
	EventQueued:    "queued",
	EventAdmitted:  "admitted",
	EventRejected:  "rejected",
	EventHeaders:   "headers",
	EventFirstByte: "first_byte",
	EventRetry:     "retry",
	EventCompleted: "completed",
	EventFailed:    "failed",
	EventCancelled: "cancelled",
	EventResume:    "resume",
}

// String returns the kind's snake_case name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one observation of a request's progress, for metrics, logs and
// recorded timelines. Fields not relevant to Kind are zero.
type Event struct {
	Kind EventKind
	Time time.Time
	// ID is streamgate's own id for the request, unique per Transport.
	ID       uint64
	Endpoint Endpoint
	Key      budget.Key
	Model    string
	Attempt  int
	// Status is the upstream HTTP status (EventHeaders, EventRetry,
	// EventFailed).
	Status int
	// Class classifies a failure (EventRetry, EventFailed).
	Class apierr.Class
	// Wait is the time spent queued (EventAdmitted).
	Wait time.Duration
	// Delay is the wait before the next attempt (EventRetry).
	Delay time.Duration
	// Snapshot is the response's rate-limit headers (EventHeaders).
	Snapshot *ratelimit.Snapshot
	// InputTokens and OutputTokens are the usage (EventCompleted,
	// EventFailed, EventCancelled); OutputTokens on a failure counts tokens
	// produced upstream.
	InputTokens, OutputTokens int64
	// Wasted is output produced upstream that never reached the caller
	// (EventResume; an estimate).
	Wasted int64
	// UpstreamRequestID is the provider's request id, when known.
	UpstreamRequestID string
	// Err is the error (EventRejected, EventFailed, EventRetry).
	Err error
}
