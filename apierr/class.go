// Package apierr classifies what an upstream LLM API returned when it did
// not return a success: an HTTP error response (status, headers and either
// provider's error JSON), a mid-stream error event, or a transport failure.
// The result is an *Error with a Class a retry policy can act on, keeping
// the provider's own type, message and request id.
package apierr

// Class is what kind of failure an error is, as far as a retry policy cares.
// Class implements error so that errors.Is(err, apierr.RateLimited) works on
// any error chain containing an *Error of that class.
type Class uint8

const (
	// Unknown is an error that fits no other class; it is not retried.
	Unknown Class = iota
	// RateLimited is a 429 rate limit (Anthropic rate_limit_error, OpenAI
	// rate_limit_exceeded): retry, not before retry-after.
	RateLimited
	// Overloaded is system-wide load (Anthropic 529 overloaded_error, OpenAI
	// 503 server_is_overloaded): retry with backoff; not a budget problem.
	Overloaded
	// ServerError is a 500/502/503 (api_error): retry with backoff.
	ServerError
	// Timeout is a 504 timeout_error or 408: retry.
	Timeout
	// Conflict is a 409 conflict_error: retry.
	Conflict
	// QuotaExhausted is a spend cap or exhausted quota (Anthropic 429 with
	// enforced_spend_limit_reached and no retry-after; OpenAI
	// insufficient_quota and other billing codes). Retrying cannot help.
	QuotaExhausted
	// InvalidRequest is a 400 invalid_request_error (including context-length
	// and content-filter refusals).
	InvalidRequest
	// Authentication is a 401 authentication_error.
	Authentication
	// Billing is a 402 billing_error.
	Billing
	// Permission is a 403 permission_error.
	Permission
	// NotFound is a 404 not_found_error.
	NotFound
	// RequestTooLarge is a 413 request_too_large.
	RequestTooLarge
	// Network is a transport failure with no usable response: connection
	// refused or reset, EOF before headers, a dial or header timeout.
	Network
)

var classNames = [...]string{
	Unknown:         "unknown",
	RateLimited:     "rate_limited",
	Overloaded:      "overloaded",
	ServerError:     "server_error",
	Timeout:         "timeout",
	Conflict:        "conflict",
	QuotaExhausted:  "quota_exhausted",
	InvalidRequest:  "invalid_request",
	Authentication:  "authentication",
	Billing:         "billing",
	Permission:      "permission",
	NotFound:        "not_found",
	RequestTooLarge: "request_too_large",
	Network:         "network",
}

// String returns the class's snake_case name, e.g. "rate_limited".
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// Error makes Class usable as an errors.Is target.
func (c Class) Error() string { return "apierr: " + c.String() }

// Retryable reports whether a failure of this class may succeed if the same
// request is sent again later. The provider's x-should-retry header, when
// present, overrides this (see Error.Retryable).
func (c Class) Retryable() bool {
	switch c {
	case RateLimited, Overloaded, ServerError, Timeout, Conflict, Network:
		return true
	}
	return false
}
