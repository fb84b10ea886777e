package sim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// apiError is an error response the simulator sends, in a form both
// providers' bodies can be rendered from.
type apiError struct {
	status  int
	typ     string // Anthropic error.type; OpenAI error.type
	message string
	code    string // OpenAI error.code; Anthropic error.details.error_code
	param   string // OpenAI error.param
	// retryAfter, when positive, is sent as retry-after (whole seconds).
	retryAfter time.Duration
	// end is how the request log records it.
	end string
}

func invalid(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", message: msg, end: EndRejected}
}

func invalidParam(msg, param, code string) *apiError {
	e := invalid(msg)
	e.param, e.code = param, code
	return e
}

// anthropicErrorBody renders {"type":"error","error":{...},"request_id":...}.
func anthropicErrorBody(e *apiError, requestID string) []byte {
	type details struct {
		ErrorCode string `json:"error_code"`
	}
	type inner struct {
		Type    string   `json:"type"`
		Message string   `json:"message"`
		Details *details `json:"details,omitempty"`
	}
	body := struct {
		Type      string `json:"type"`
		Error     inner  `json:"error"`
		RequestID string `json:"request_id,omitempty"`
	}{Type: "error", Error: inner{Type: e.typ, Message: e.message}, RequestID: requestID}
	if e.code != "" {
		body.Error.Details = &details{ErrorCode: e.code}
	}
	b, _ := json.Marshal(body)
	return b
}

// openAIErrorBody renders {"error":{"message","type","param","code"}}.
func openAIErrorBody(e *apiError) []byte {
	body := struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}{}
	body.Error.Message, body.Error.Type = e.message, e.typ
	if e.param != "" {
		body.Error.Param = &e.param
	}
	if e.code != "" {
		body.Error.Code = &e.code
	}
	b, _ := json.Marshal(body)
	return b
}

// writeError sends e with the provider's body; the caller has already set
// the rate-limit and request-id headers.
func writeError(w http.ResponseWriter, p ratelimit.Provider, e *apiError, requestID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(retryAfterSeconds(e.retryAfter), 10))
	}
	var body []byte
	if p == ratelimit.OpenAI {
		body = openAIErrorBody(e)
	} else {
		body = anthropicErrorBody(e, requestID)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// formatThousands renders n with comma separators, as the providers'
// messages do ("30,000").
func formatThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
