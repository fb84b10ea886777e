package sse

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Status is where a stream stands with respect to completeness.
type Status uint8

const (
	// InProgress means the stream has not reached a terminal state yet. It
	// is the zero value.
	InProgress Status = iota
	// Complete means the terminal event arrived: the answer is whole.
	Complete
	// Errored means the provider ended the stream with an error event
	// (Verdict.Error says which).
	Errored
	// Truncated means the stream ended before its terminal event: the
	// answer is incomplete, whatever the HTTP layer said.
	Truncated
	// Malformed means the stream violated its protocol: unparsable JSON,
	// events out of order, or events after the terminal one.
	Malformed
)

var statusNames = [...]string{
	InProgress: "in_progress",
	Complete:   "complete",
	Errored:    "errored",
	Truncated:  "truncated",
	Malformed:  "malformed",
}

// String returns the status's snake_case name, e.g. "truncated".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Final reports whether the status is terminal. A final Complete or
// Truncated status can still turn Malformed if events follow the terminal
// one; Errored and Malformed never change.
func (s Status) Final() bool { return s != InProgress }

// Verdict is a stream model's judgement of a stream.
//
// The zero Verdict is InProgress with no reason.
type Verdict struct {
	// Status is the stream's completeness.
	Status Status
	// Reason explains the status for humans, e.g. "stream ended before
	// message_stop". It is empty while the stream is InProgress.
	Reason string
	// Error is the error event that ended the stream when Status is
	// Errored, and nil otherwise. It is shared: do not modify it.
	Error *ErrorEvent
}

// ErrorEvent is an error the provider reported inside a stream that had
// already started with HTTP 200: Anthropic's "event: error", or an OpenAI
// chunk with a top-level "error" object.
type ErrorEvent struct {
	// Type is the provider's error type, e.g. "overloaded_error" or
	// "rate_limit_error" (Anthropic), "server_error" (OpenAI); "" if the
	// event did not say.
	Type string
	// Code is the OpenAI error code (e.g. "rate_limit_exceeded"), rendered
	// as a string when the provider sent a number; "" when absent.
	Code string
	// Message is the provider's human-readable message.
	Message string
	// Raw is the event's data, unmodified, for classification elsewhere.
	Raw []byte
}

// Error implements error, so that a stream's ErrorEvent can be returned or
// wrapped as is.
func (e *ErrorEvent) Error() string {
	msg := "sse: error event"
	if e.Type != "" {
		msg += " " + e.Type
	}
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// jsonString is a JSON value read leniently as a string: a JSON string sets
// it and OK; anything else (null, a number, an object) leaves it unset.
type jsonString struct {
	V  string
	OK bool
}

func (s *jsonString) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return nil
	}
	// The decoder calling this has already validated b as a JSON string,
	// so one without escapes is its bytes between the quotes (when valid
	// UTF-8; otherwise the slow path substitutes U+FFFD as encoding/json
	// does).
	if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		s.V, s.OK = internValue(inner), true
		return nil
	}
	if err := json.Unmarshal(b, &s.V); err == nil {
		s.OK = true
	}
	return nil
}

// jsonRef keeps a reference to a JSON string value's raw bytes, quotes
// included, without decoding it. It aliases the decoded input, so it is only
// valid while that input is; String decodes it.
type jsonRef struct{ raw []byte }

func (r *jsonRef) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' {
		r.raw = b
	}
	return nil
}

// String decodes the referenced JSON string, or returns "" if there was
// none.
func (r jsonRef) String() string {
	var s jsonString
	_ = s.UnmarshalJSON(r.raw)
	return s.V
}

// internValue returns b as a string, without allocating for the type names
// and values that nearly every event carries.
func internValue(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case EventContentBlockDelta:
		return EventContentBlockDelta
	case "text_delta":
		return "text_delta"
	case "input_json_delta":
		return "input_json_delta"
	case "thinking_delta":
		return "thinking_delta"
	case "signature_delta":
		return "signature_delta"
	case EventContentBlockStart:
		return EventContentBlockStart
	case EventContentBlockStop:
		return EventContentBlockStop
	case EventMessageDelta:
		return EventMessageDelta
	case EventMessageStart:
		return EventMessageStart
	case EventMessageStop:
		return EventMessageStop
	case "text":
		return "text"
	case "assistant":
		return "assistant"
	case "chat.completion.chunk":
		return "chat.completion.chunk"
	case "stop":
		return "stop"
	}
	return string(b)
}

// jsonInt is a JSON value read leniently as a non-negative integer. Present
// reports that the key had a non-null value; OK that it was an integer in
// range. Garbage leaves it Present but not OK.
type jsonInt struct {
	V       int64
	OK      bool
	Present bool
}

func (n *jsonInt) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	n.Present = true
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil && v >= 0 {
		n.V, n.OK = v, true
	}
	return nil
}

// jsonCode reads an error code that may be a string or a number.
type jsonCode struct{ V string }

func (c *jsonCode) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			c.V = s
		}
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		c.V = string(b)
	}
	return nil
}

// isJSONObject reports whether b, ignoring surrounding white space, looks
// like a JSON object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
