package apierr

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// FromResponse classifies an HTTP response with status >= 400, reading the
// rate-limit headers h as of its arrival time now and the error body (which
// may be empty, HTML or truncated). It returns nil for status < 400.
//
// It is shorthand for FromSnapshot(status, ratelimit.Parse(h, now), body).
func FromResponse(status int, h http.Header, body []byte, now time.Time) *Error {
	if status < 400 {
		return nil
	}
	return FromSnapshot(status, ratelimit.Parse(h, now), body)
}

// FromSnapshot is FromResponse for a caller that has already parsed the
// response's headers with ratelimit.Parse (s supplies RetryAfter,
// ShouldRetry, RequestID, the Provider and the header fallback for the
// Dimension). It returns nil for status < 400.
//
// The Class is decided in this order:
//
//  1. An explicit quota code or type (OpenAI insufficient_quota,
//     billing_hard_limit_reached, billing_not_active, access_terminated):
//     QuotaExhausted. An explicit overload code (server_is_overloaded,
//     engine_overloaded): Overloaded.
//  2. A specific error type: Anthropic's rate_limit_error, overloaded_error,
//     authentication_error, ... The catch-all types invalid_request_error
//     (which OpenAI also uses for 401s and 404s), api_error and
//     server_error, and OpenAI's "tokens"/"requests", give way to steps 3
//     and 4.
//  3. A known error code (rate_limit_exceeded, invalid_api_key,
//     model_not_found, context_length_exceeded, ...).
//  4. The status: 400 InvalidRequest, 401 Authentication, 402 Billing, 403
//     Permission, 404 NotFound, 408 Timeout, 409 Conflict, 413
//     RequestTooLarge, 429 RateLimited, 504 Timeout, 529 Overloaded, any
//     other 5xx (500, 502, 503, ...) ServerError, any other 4xx
//     InvalidRequest (a client error the official SDKs do not retry
//     either).
//  5. The catch-all type, then a numeric error code read as a status
//     (some compatible servers send {"code": 502}), then Unknown.
//
// Then three refinements from the message: a spend cap (Anthropic's
// details.error_code "enforced_spend_limit_reached", or a message naming
// the spend limit or "your specified API usage limits") on a RateLimited
// or InvalidRequest error is QuotaExhausted, with or without retry-after; a
// ServerError whose message says "overloaded" is Overloaded; and an OpenAI
// 429 "Request too large for ..." (a single request above the per-minute
// limit, which no wait can fix) is RequestTooLarge.
//
// For RateLimited (and that RequestTooLarge) errors the Dimension is read
// from the message ("of 20,000 input tokens per minute", "on tokens per
// min (TPM)"), else from OpenAI's "tokens"/"requests" type, else, for
// RateLimited only, from the headers: the dimension they report at zero
// remaining (the lowest such Dimension if several are). A 429 whose
// headers show no dimension at zero (an acceleration limit, say) leaves
// DimensionKnown false rather than blaming a healthy one.
func FromSnapshot(status int, s ratelimit.Snapshot, body []byte) *Error {
	if status < 400 {
		return nil
	}
	p := parseBody(body)
	e := &Error{
		Provider:    s.Provider,
		StatusCode:  status,
		Type:        p.typ,
		Code:        p.code,
		Message:     p.message,
		RequestID:   s.RequestID,
		RetryAfter:  s.RetryAfter,
		ShouldRetry: s.ShouldRetry,
		Body:        boundBody(body),
	}
	if e.Provider == ratelimit.ProviderUnknown {
		e.Provider = p.provider
	}
	if e.RequestID == "" {
		e.RequestID = p.requestID
	}
	e.Class = classify(status, p)
	e.Dimension, e.DimensionKnown = dimension(e.Class, p)
	if !e.DimensionKnown && e.Class == RateLimited {
		if d, ok := s.Binding(); ok && s.Bucket(d).Remaining == 0 {
			e.Dimension, e.DimensionKnown = d, true
		}
	}
	return e
}

// FromEvent classifies the data of a mid-stream error: an Anthropic
// "event: error" payload such as
// {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}},
// or an OpenAI stream chunk with a top-level "error" member. It returns nil
// if data is not a JSON object with a non-null "error" object or string.
//
// The Class follows FromSnapshot's rules without a status; an error type
// nothing recognises is Unknown. StatusCode is 200, MidStream is true and
// RetryAfter is -1 (an event carries no headers). p names the provider
// whose stream this is; ProviderUnknown lets the payload's shape decide.
func FromEvent(p ratelimit.Provider, data []byte) *Error {
	b := parseBody(data)
	if !b.isError {
		return nil
	}
	e := &Error{
		Provider:   p,
		StatusCode: http.StatusOK,
		Type:       b.typ,
		Code:       b.code,
		Message:    b.message,
		RequestID:  b.requestID,
		RetryAfter: -1,
		MidStream:  true,
		Body:       boundBody(data),
	}
	if e.Provider == ratelimit.ProviderUnknown {
		e.Provider = b.provider
	}
	e.Class = classify(0, b)
	e.Dimension, e.DimensionKnown = dimension(e.Class, b)
	return e
}

// FromTransport classifies an error returned by an http.RoundTripper
// before any response arrived: connection refused or reset, an unexpected
// EOF before the headers, a dial, TLS handshake or header timeout. These
// are Network errors wrapping err (errors.Is(e, io.ErrUnexpectedEOF)
// keeps working). A certificate verification failure is Unknown instead:
// sending again cannot fix it.
//
// It returns nil for a nil err and for the caller's own cancellation: an
// error chain containing context.Canceled or context.DeadlineExceeded
// itself, so the caller can pass those through unchanged. A dial timeout
// is a Network error even though it also matches
// errors.Is(err, context.DeadlineExceeded); a caller that cannot tell its
// own deadline from the transport's should check its context's Err first.
// If err already contains an *Error, that Error is returned.
func FromTransport(err error) *Error {
	if err == nil || isContextErr(err) {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	c := Network
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
	)
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) {
		c = Unknown
	}
	return &Error{Class: c, RetryAfter: -1, Err: err}
}

// isContextErr reports whether the chain of err contains one of the context
// package's own errors by identity. Unlike errors.Is it ignores Is methods,
// so the net package's timeout errors (which claim to be
// context.DeadlineExceeded) do not count.
func isContextErr(err error) bool {
	for err != nil {
		if err == context.Canceled || err == context.DeadlineExceeded {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if isContextErr(inner) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

func boundBody(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b[:min(len(b), MaxBody)])
}

// body is what parseBody found in an error body or event.
type body struct {
	isError   bool // a non-null "error" object or string was present
	provider  ratelimit.Provider
	typ       string
	code      string
	codeNum   int // code as a number (some servers send an HTTP status), or 0
	message   string
	requestID string
}

// wireBody is the union of both providers' error envelopes. Scalars are
// raw so that a field of an unexpected JSON type is ignored rather than
// failing the whole decode.
type wireBody struct {
	Type      json.RawMessage `json:"type"`
	Error     json.RawMessage `json:"error"`
	Message   json.RawMessage `json:"message"`
	RequestID json.RawMessage `json:"request_id"`
}

type wireError struct {
	Type    json.RawMessage `json:"type"`
	Message json.RawMessage `json:"message"`
	Code    json.RawMessage `json:"code"`
	Param   json.RawMessage `json:"param"`
	Details json.RawMessage `json:"details"`
}

type wireDetails struct {
	ErrorCode json.RawMessage `json:"error_code"`
}

// parseBody extracts the error fields of either provider's JSON. Anything
// that is not a JSON object (HTML, plain text, a truncated body) yields the
// zero body.
func parseBody(data []byte) body {
	data = bytes.TrimPrefix(bytes.TrimSpace(data), []byte("\xef\xbb\xbf"))
	if len(data) == 0 || data[0] != '{' {
		return body{}
	}
	var w wireBody
	if json.Unmarshal(data, &w) != nil {
		return body{}
	}
	var b body
	b.requestID = scalar(w.RequestID)
	topType := scalar(w.Type)
	switch kind(w.Error) {
	case '{':
		var we wireError
		if json.Unmarshal(w.Error, &we) != nil {
			return body{}
		}
		b.isError = true
		b.typ = scalar(we.Type)
		b.message = scalar(we.Message)
		b.code = scalar(we.Code)
		if kind(we.Code) == '0' {
			b.codeNum, _ = strconv.Atoi(b.code)
		}
		if kind(we.Details) == '{' {
			var wd wireDetails
			if json.Unmarshal(we.Details, &wd) == nil && b.code == "" {
				b.code = scalar(wd.ErrorCode)
			}
		}
		switch {
		case we.Code != nil || we.Param != nil:
			b.provider = ratelimit.OpenAI
		case topType == "error":
			b.provider = ratelimit.Anthropic
		default:
			b.provider = ratelimit.OpenAI
		}
	case '"':
		b.isError = true
		b.message = scalar(w.Error)
	default:
		// No error member: keep a top-level message (some gateways send
		// {"message": "..."}), but this is not an error object.
		b.message = scalar(w.Message)
	}
	return b
}

// kind returns the first byte that identifies a raw JSON value's kind: '{',
// '[', '"', 'n' (null), 't'/'f' (booleans), '0' (a number), or 0 if absent.
func kind(raw json.RawMessage) byte {
	if len(raw) == 0 {
		return 0
	}
	switch c := raw[0]; {
	case c == '-' || ('0' <= c && c <= '9'):
		return '0'
	default:
		return c
	}
}

// scalar returns a raw JSON string's value or a number's or boolean's text;
// "" for null, objects, arrays and anything unparsable.
func scalar(raw json.RawMessage) string {
	switch kind(raw) {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	case '0', 't', 'f':
		return string(raw)
	}
	return ""
}

// classify applies FromSnapshot's rules; status is 0 for a mid-stream
// error.
func classify(status int, b body) Class {
	typ, code := strings.ToLower(b.typ), strings.ToLower(b.code)
	switch {
	case quotaCodes[code] || quotaCodes[typ]:
		return QuotaExhausted
	case overloadCodes[code]:
		return Overloaded
	}
	c := Unknown
	tc, specific := typeClass(typ)
	switch {
	case specific:
		c = tc
	case codeClasses[code] != Unknown:
		c = codeClasses[code]
	case statusClass(status) != Unknown:
		c = statusClass(status)
	case tc != Unknown:
		c = tc
	case b.codeNum >= 400:
		c = statusClass(b.codeNum)
	}
	msg := strings.ToLower(b.message)
	switch {
	case (c == RateLimited || c == InvalidRequest) && (code == "enforced_spend_limit_reached" || isSpendCapMessage(msg)):
		return QuotaExhausted
	case c == ServerError && strings.Contains(msg, "overloaded"):
		return Overloaded
	case c == RateLimited && strings.HasPrefix(msg, "request too large"):
		return RequestTooLarge
	}
	return c
}

func isSpendCapMessage(msg string) bool {
	return strings.Contains(msg, "enforced_spend_limit_reached") ||
		strings.Contains(msg, "spend limit") ||
		strings.Contains(msg, "specified api usage limits")
}

// quotaCodes are codes and types that mean no request will succeed until
// someone pays or raises a limit.
var quotaCodes = map[string]bool{
	"insufficient_quota":         true,
	"billing_hard_limit_reached": true,
	"billing_not_active":         true,
	"access_terminated":          true,
}

var overloadCodes = map[string]bool{
	"server_is_overloaded": true,
	"engine_overloaded":    true,
	"overloaded":           true,
	"overloaded_error":     true,
}

// typeClass maps an error type to a class; specific is false for the
// catch-all types that the status or code should refine.
func typeClass(typ string) (c Class, specific bool) {
	switch typ {
	case "rate_limit_error", "rate_limit_exceeded":
		return RateLimited, true
	case "overloaded_error":
		return Overloaded, true
	case "timeout_error":
		return Timeout, true
	case "conflict_error":
		return Conflict, true
	case "authentication_error":
		return Authentication, true
	case "billing_error":
		return Billing, true
	case "permission_error":
		return Permission, true
	case "not_found_error":
		return NotFound, true
	case "request_too_large":
		return RequestTooLarge, true
	case "invalid_request_error":
		return InvalidRequest, false
	case "api_error", "server_error", "service_unavailable_error":
		return ServerError, false
	case "tokens", "requests", "tokens_usage_based", "requests_usage_based":
		return RateLimited, false
	}
	return Unknown, false
}

// codeClasses maps error codes (OpenAI's error.code, or an Anthropic-style
// type sent as a code by a compatible server) to classes.
var codeClasses = map[string]Class{
	"rate_limit_exceeded":                  RateLimited,
	"rate_limit_error":                     RateLimited,
	"invalid_api_key":                      Authentication,
	"invalid_authentication":               Authentication,
	"authentication_error":                 Authentication,
	"model_not_found":                      NotFound,
	"unsupported_country_region_territory": Permission,
	"context_length_exceeded":              InvalidRequest,
	"invalid_request_error":                InvalidRequest,
	"timeout":                              Timeout,
	"server_error":                         ServerError,
}

// statusClass maps an HTTP status to a class; Unknown below 400.
func statusClass(status int) Class {
	switch status {
	case 400:
		return InvalidRequest
	case 401:
		return Authentication
	case 402:
		return Billing
	case 403:
		return Permission
	case 404:
		return NotFound
	case 408:
		return Timeout
	case 409:
		return Conflict
	case 413:
		return RequestTooLarge
	case 429:
		return RateLimited
	case 504:
		return Timeout
	case 529:
		return Overloaded
	}
	switch {
	case status >= 500 && status <= 599:
		return ServerError
	case status >= 400 && status <= 499:
		return InvalidRequest
	}
	return Unknown
}

// dimension reads which limit a rate-limit error hit from its message, then
// from OpenAI's "tokens"/"requests" error type.
func dimension(c Class, b body) (ratelimit.Dimension, bool) {
	if c != RateLimited && c != RequestTooLarge {
		return 0, false
	}
	msg := strings.ToLower(b.message)
	for _, p := range dimensionPhrases {
		if strings.Contains(msg, p.phrase) {
			return p.dim, true
		}
	}
	switch strings.ToLower(b.typ) {
	case "tokens", "tokens_usage_based":
		return ratelimit.Tokens, true
	case "requests", "requests_usage_based":
		return ratelimit.Requests, true
	}
	return 0, false
}

// dimensionPhrases are checked in order: the more specific first.
var dimensionPhrases = []struct {
	phrase string
	dim    ratelimit.Dimension
}{
	{"input tokens per min", ratelimit.InputTokens},
	{"output tokens per min", ratelimit.OutputTokens},
	{"tokens per min", ratelimit.Tokens},
	{"tokens per day", ratelimit.Tokens},
	{"(tpm)", ratelimit.Tokens},
	{"requests per min", ratelimit.Requests},
	{"requests per day", ratelimit.Requests},
	{"(rpm)", ratelimit.Requests},
}
