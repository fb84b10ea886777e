package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/ratelimit"
	"github.com/streamgate/streamgate/sse"
)

// anthropicVersion is the API version header the runner sends.
const anthropicVersion = "2023-06-01"

// maxErrorBody bounds how much of an error response is kept.
const maxErrorBody = 1 << 20

// outcome is what one attempt at a request came to.
type outcome struct {
	// result is set when the request is finished: succeeded, or errored
	// with an error that sending it again cannot fix.
	result *Result
	// err is a transient failure (result nil): worth another attempt after
	// retryAfter (or the strategy's own delay when retryAfter <= 0).
	err        error
	retryAfter time.Duration
	// sent reports that the attempt reached the upstream (a response or
	// part of one arrived).
	sent bool
	// rateLimited: the upstream answered with a rate-limit error (a 429 or
	// a mid-stream rate_limit_error event).
	rateLimited bool
	// midStream: the stream broke after it had started.
	midStream bool
	// in and out are the tokens the attempt drew (-1 unknown); wasted is
	// output produced for an attempt that ended without a result.
	in, out, wasted int64
	// snap is the response's rate-limit headers and status its HTTP
	// status (0 when no response arrived).
	snap   *ratelimit.Snapshot
	status int
	// streamTime is how long the response took from its headers to its
	// end.
	streamTime time.Duration
}

// endpoint is where and how to send requests of one format.
type endpoint struct {
	format  Format
	baseURL string
	apiKey  string
	naive   bool
}

// streamBody returns the request body with streaming turned on (and, for
// OpenAI, usage reporting), every other field unchanged.
func streamBody(req Request) ([]byte, error) {
	fields := objectFields(req.Body)
	fields["stream"] = json.RawMessage("true")
	if req.Format == OpenAI {
		so := objectFields(fields["stream_options"])
		so["include_usage"] = json.RawMessage("true")
		b, err := json.Marshal(so)
		if err != nil {
			return nil, err
		}
		fields["stream_options"] = b
	}
	return json.Marshal(fields)
}

// url returns the request URL for req.
func (ep *endpoint) url(req Request) string {
	base := strings.TrimRight(ep.baseURL, "/")
	path := "/v1/messages"
	if ep.format == OpenAI {
		path = req.URL
		// OPENAI_BASE_URL conventionally ends in /v1.
		if strings.HasSuffix(base, "/v1") {
			path = strings.TrimPrefix(path, "/v1")
		}
	}
	return base + path
}

// attempt sends req once through client and reads the whole stream.
func (ep *endpoint) attempt(ctx context.Context, client *http.Client, req Request, body []byte, onEvent func(assembler)) outcome {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url(req), bytes.NewReader(body))
	if err != nil {
		return outcome{result: errorResult(req, 0, "", "invalid_request_error", err.Error())}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	if ep.format == Anthropic {
		hreq.Header.Set("X-Api-Key", ep.apiKey)
		hreq.Header.Set("Anthropic-Version", anthropicVersion)
	} else {
		hreq.Header.Set("Authorization", "Bearer "+ep.apiKey)
	}
	if !ep.naive {
		hreq.Header.Set(streamgate.HeaderPriority, "batch")
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return transportFailure(ctx, err)
	}
	defer resp.Body.Close()
	now := time.Now()
	snap := ratelimit.Parse(resp.Header, now)
	o := outcome{sent: true, in: -1, out: -1, snap: &snap, status: resp.StatusCode}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		status := resp.StatusCode
		aerr := apierr.FromSnapshot(status, snap, b)
		if aerr == nil {
			// 1xx/3xx: not an API answer.
			o.err = fmt.Errorf("batch: unexpected HTTP status %d", status)
			return o
		}
		o.rateLimited = aerr.Class == apierr.RateLimited
		if aerr.Retryable() && !ep.naiveFinal(status) {
			o.err, o.retryAfter = aerr, aerr.RetryAfter
			return o
		}
		o.result = providerError(req, status, aerr.RequestID, b, aerr)
		return o
	}
	requestID := snap.RequestID
	if !isEventStream(resp.Header) {
		// A server that ignored "stream": take the body as the message.
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxLineBytes))
		if err != nil || !json.Valid(b) || !isObject(b) {
			o.err = fmt.Errorf("batch: reading non-streaming response: %v", err)
			return o
		}
		o.result = &Result{CustomID: req.CustomID, Format: req.Format, Status: Succeeded, Message: b, StatusCode: resp.StatusCode, RequestID: requestID}
		return o
	}
	asm := newAssembler(req.Format)
	rd := sse.NewReader(resp.Body)
	var readErr error
	for {
		ev, err := rd.Next()
		if err != nil {
			readErr = err
			break
		}
		asm.observe(ev)
		if onEvent != nil {
			onEvent(asm)
		}
	}
	o.streamTime = time.Since(now)
	var v sse.Verdict
	if errors.Is(readErr, io.EOF) {
		v = asm.end()
	} else {
		v = asm.interrupt(readErr.Error())
	}
	o.in, o.out = asm.usage()
	if o.out < 0 {
		o.out = asm.streamed()
	}
	if v.Status == sse.Complete {
		msg, err := asm.message()
		if err != nil {
			o.err = fmt.Errorf("batch: assembling the message: %w", err)
			return o
		}
		o.result = &Result{CustomID: req.CustomID, Format: req.Format, Status: Succeeded, Message: msg, StatusCode: resp.StatusCode, RequestID: requestID}
		return o
	}
	// Interrupted: never a truncated success. The usage of an interrupted
	// stream is not final (Anthropic's message_start says 1): count the
	// deltas that arrived.
	o.out = asm.streamed()
	if ctx.Err() != nil {
		// The run was stopped: not a failure of the stream.
		o.err = ctx.Err()
		return o
	}
	o.midStream = true
	o.wasted = o.out
	var se *streamgate.StreamError
	switch {
	case errors.As(readErr, &se):
		o.err = se
		o.rateLimited = se.Class == apierr.RateLimited
		o.wasted = max(o.wasted, se.OutputTokens)
		o.out = o.wasted
		if se.Upstream != nil && !se.Class.Retryable() && se.Class != apierr.Unknown {
			o.result = providerError(req, http.StatusOK, se.RequestID, se.Upstream.Body, se.Upstream)
			o.err = nil
		}
	case v.Error != nil:
		aerr := apierr.FromEvent(providerOf(req.Format), v.Error.Raw)
		o.err = fmt.Errorf("batch: stream %s: %s", v.Status, v.Reason)
		if aerr != nil {
			o.err = aerr
			o.rateLimited = aerr.Class == apierr.RateLimited
			if !aerr.Class.Retryable() && aerr.Class != apierr.Unknown {
				o.result = providerError(req, http.StatusOK, aerr.RequestID, v.Error.Raw, aerr)
				o.err = nil
			}
		}
	default:
		o.err = fmt.Errorf("batch: stream %s: %s", v.Status, v.Reason)
	}
	return o
}

// naiveFinal: the naive strategy retries what an application typically
// retries (429, 500, 502, 503, 529) and nothing else.
func (ep *endpoint) naiveFinal(status int) bool {
	if !ep.naive {
		return false
	}
	switch status {
	case 429, 500, 502, 503, 529:
		return false
	}
	return true
}

func providerOf(f Format) ratelimit.Provider {
	if f == OpenAI {
		return ratelimit.OpenAI
	}
	return ratelimit.Anthropic
}

func isEventStream(h http.Header) bool {
	return strings.HasPrefix(strings.ToLower(h.Get("Content-Type")), "text/event-stream")
}

// transportFailure classifies an error from http.Client.Do.
func transportFailure(ctx context.Context, err error) outcome {
	o := outcome{in: -1, out: -1, err: err}
	if ctx.Err() != nil {
		o.err = ctx.Err()
		return o
	}
	var ae *streamgate.AdmissionError
	if errors.As(err, &ae) {
		o.retryAfter = ae.RetryAfter
	}
	return o
}

// providerError is the errored result for a response the provider refused.
// The provider's own error body is kept when it is a JSON object;
// otherwise one is made in the provider's shape from the classification.
func providerError(req Request, status int, requestID string, body []byte, aerr *apierr.Error) *Result {
	body = bytes.TrimSpace(body)
	if isObject(body) && json.Valid(body) {
		r := &Result{CustomID: req.CustomID, Format: req.Format, Status: Errored, Error: json.RawMessage(body), StatusCode: status, RequestID: requestID}
		if req.Format == Anthropic {
			r.Error = anthropicErrorBody(body, requestID)
		}
		return r
	}
	typ, msg := aerr.Type, aerr.Message
	if typ == "" {
		typ = anthropicErrorType(aerr.Class)
	}
	if msg == "" {
		msg = strings.TrimSpace(string(body))
		if msg == "" {
			msg = http.StatusText(status)
		}
	}
	return errorResult(req, status, requestID, typ, msg)
}

// anthropicErrorBody makes sure an Anthropic error body has the shape the
// batch result's error field has: {"type":"error","error":{...},
// "request_id":...}. A mid-stream error event has no request_id: it is
// added from the response.
func anthropicErrorBody(body []byte, requestID string) json.RawMessage {
	f := objectFields(body)
	if _, ok := f["error"]; !ok {
		return body
	}
	changed := false
	if _, ok := f["type"]; !ok {
		f["type"] = json.RawMessage(`"error"`)
		changed = true
	}
	if _, ok := f["request_id"]; !ok && requestID != "" {
		f["request_id"], _ = json.Marshal(requestID)
		changed = true
	}
	if !changed {
		return body
	}
	b, err := json.Marshal(f)
	if err != nil {
		return body
	}
	return b
}

// errorResult makes an errored result in the provider's error shape.
func errorResult(req Request, status int, requestID, typ, msg string) *Result {
	var body []byte
	if req.Format == Anthropic {
		v := map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}}
		if requestID != "" {
			v["request_id"] = requestID
		}
		body, _ = json.Marshal(v)
	} else {
		body, _ = json.Marshal(map[string]any{"error": map[string]any{"type": typ, "message": msg, "param": nil, "code": nil}})
	}
	return &Result{CustomID: req.CustomID, Format: req.Format, Status: Errored, Error: body, StatusCode: status, RequestID: requestID}
}

func anthropicErrorType(c apierr.Class) string {
	switch c {
	case apierr.Authentication:
		return "authentication_error"
	case apierr.Billing, apierr.QuotaExhausted:
		return "billing_error"
	case apierr.Permission:
		return "permission_error"
	case apierr.NotFound:
		return "not_found_error"
	case apierr.RequestTooLarge:
		return "request_too_large"
	case apierr.RateLimited:
		return "rate_limit_error"
	case apierr.Overloaded:
		return "overloaded_error"
	case apierr.InvalidRequest:
		return "invalid_request_error"
	}
	return "api_error"
}
