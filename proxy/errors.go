package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/gate"
)

// proxyError is a response the proxy writes itself, rendered in the
// upstream API's error format.
type proxyError struct {
	status  int
	reason  string // HeaderError value
	typ     string // Anthropic error.type
	oaiType string // OpenAI error.type
	oaiCode string // OpenAI error.code
	message string
	// retryAfter, when positive, is sent as retry-after and retry-after-ms.
	retryAfter time.Duration
	// retry is the x-should-retry advice.
	retry bool
}

// write renders e for api; id is the proxy's request id.
func (e *proxyError) write(w http.ResponseWriter, api API, id string) {
	var body []byte
	if api == APIOpenAI {
		var v struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		v.Error.Message, v.Error.Type = e.message, e.oaiType
		if e.oaiCode != "" {
			v.Error.Code = &e.oaiCode
		}
		body, _ = json.Marshal(v)
	} else {
		type inner struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		body, _ = json.Marshal(struct {
			Type      string `json:"type"`
			Error     inner  `json:"error"`
			RequestID string `json:"request_id"`
		}{"error", inner{e.typ, e.message}, id})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(HeaderError, e.reason)
	h.Set("X-Should-Retry", strconv.FormatBool(e.retry))
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(retryAfterSeconds(e.retryAfter), 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(max(e.retryAfter.Milliseconds(), 1), 10))
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, so that a
// client honouring it never comes back early.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Fallback wait advertised when the scheduler cannot estimate one (a full
// queue with no rate information yet).
const unknownRetryAfter = time.Second

// errorFor maps an error from the scheduler (the ReverseProxy's transport)
// to the response the client gets.
func errorFor(err error) *proxyError {
	var ae *streamgate.AdmissionError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae) && errors.Is(ae.Cause, gate.ErrClosed):
		return &proxyError{status: http.StatusServiceUnavailable, reason: "shutting_down",
			typ: "api_error", oaiType: "server_error", message: "streamgate proxy: shutting down",
			retryAfter: unknownRetryAfter, retry: true}
	case errors.As(err, &ae):
		wait := ae.RetryAfter
		if wait <= 0 {
			wait = unknownRetryAfter
		}
		why := "the admission queue is full"
		var we *gate.WaitError
		if errors.As(ae.Cause, &we) || !errors.Is(ae.Cause, gate.ErrQueueFull) {
			why = "the request could not be admitted within the proxy's maximum wait"
		}
		return &proxyError{status: http.StatusTooManyRequests, reason: "admission",
			typ: "rate_limit_error", oaiType: "rate_limit_error", oaiCode: "rate_limit_exceeded",
			message:    fmt.Sprintf("streamgate proxy: %s; the shared rate-limit budget allows it in about %s", why, wait.Round(time.Millisecond)),
			retryAfter: wait, retry: true}
	case errors.As(err, &mbe) || errors.Is(err, streamgate.ErrRequestTooLarge):
		return &proxyError{status: http.StatusRequestEntityTooLarge, reason: "too_large",
			typ: "request_too_large", oaiType: "invalid_request_error",
			message: "streamgate proxy: request body too large"}
	default:
		return &proxyError{status: http.StatusBadGateway, reason: "upstream_unreachable",
			typ: "api_error", oaiType: "server_error",
			message: "streamgate proxy: upstream request failed: " + err.Error()}
	}
}
