package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAnthropicValidation(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	const okMsgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name    string
		path    string
		hdr     map[string]string // nil: a valid key and version
		body    string
		status  int
		typ     string
		message string // substring
	}{
		{"missing api key", "/v1/messages", map[string]string{"anthropic-version": "2023-06-01"}, `{}`, 401, "authentication_error", "x-api-key header is required"},
		{"missing version", "/v1/messages", map[string]string{"x-api-key": "k"}, `{}`, 400, "invalid_request_error", "anthropic-version: header is required"},
		{"bearer accepted", "/v1/messages", map[string]string{"authorization": "Bearer k", "anthropic-version": "2023-06-01"}, `{"model":"m","max_tokens":5,` + okMsgs + `}`, 200, "", ""},
		{"bad json", "/v1/messages", nil, `{"model":`, 400, "invalid_request_error", "The request body is not valid JSON"},
		{"not an object", "/v1/messages", nil, `[1,2]`, 400, "invalid_request_error", "The request body is not valid JSON"},
		{"missing model", "/v1/messages", nil, `{"max_tokens":5,` + okMsgs + `}`, 400, "invalid_request_error", "model: Field required"},
		{"missing max_tokens", "/v1/messages", nil, `{"model":"m",` + okMsgs + `}`, 400, "invalid_request_error", "max_tokens: Field required"},
		{"max_tokens zero", "/v1/messages", nil, `{"model":"m","max_tokens":0,` + okMsgs + `}`, 400, "invalid_request_error", "max_tokens: Input should be greater than or equal to 1"},
		{"max_tokens string", "/v1/messages", nil, `{"model":"m","max_tokens":"5",` + okMsgs + `}`, 400, "invalid_request_error", "max_tokens: Input should be a valid integer"},
		{"missing messages", "/v1/messages", nil, `{"model":"m","max_tokens":5}`, 400, "invalid_request_error", "messages: Field required"},
		{"empty messages", "/v1/messages", nil, `{"model":"m","max_tokens":5,"messages":[]}`, 400, "invalid_request_error", "at least one message is required"},
		{"system role", "/v1/messages", nil, `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, 400, "invalid_request_error", `Unexpected role "system"`},
		{"bad role", "/v1/messages", nil, `{"model":"m","max_tokens":5,"messages":[{"role":"bot","content":"x"}]}`, 400, "invalid_request_error", "messages.0.role: Input should be 'user' or 'assistant'"},
		{"empty content", "/v1/messages", nil, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":""}]}`, 400, "invalid_request_error", "all messages must have non-empty content"},
		{"empty text block", "/v1/messages", nil, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, 400, "invalid_request_error", "text content blocks must be non-empty"},
		{"trailing whitespace prefill", "/v1/messages", nil, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"abc "}]}`, 400, "invalid_request_error", "final assistant content cannot end with trailing whitespace"},
		{"no-prefill model", "/v1/messages", nil, `{"model":"claude-opus-4-6","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"abc"}]}`, 400, "invalid_request_error", "This model does not support assistant message prefill. The conversation must end with a user message."},
		{"prompt too long", "/v1/messages", nil, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"` + strings.Repeat("word ", 210_000) + `"}]}`, 400, "invalid_request_error", "prompt is too long: "},
		{"count_tokens without max_tokens", "/v1/messages/count_tokens", nil, `{"model":"m",` + okMsgs + `}`, 200, "", ""},
		{"count_tokens missing model", "/v1/messages/count_tokens", nil, `{` + okMsgs + `}`, 400, "invalid_request_error", "model: Field required"},
		{"unknown path", "/v1/nope", nil, `{}`, 404, "not_found_error", "Not Found"},
		{"unknown fault", "/v1/messages", nil, `{"model":"m+fault=bogus","max_tokens":5,` + okMsgs + `}`, 400, "invalid_request_error", "unknown fault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			hdr := tt.hdr
			if hdr == nil {
				hdr = map[string]string{"x-api-key": "k", "anthropic-version": "2023-06-01"}
			}
			for k, v := range hdr {
				r.Header.Set(k, v)
			}
			w := serve(s, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if !strings.HasPrefix(w.Header().Get("request-id"), "req_011C") {
				t.Errorf("request-id %q", w.Header().Get("request-id"))
			}
			known := w.Code != 401 && tt.path != "/v1/nope" && tt.name != "missing version"
			if known && w.Header().Get("anthropic-ratelimit-requests-limit") != "1000" {
				t.Errorf("no rate-limit headers on a response to a known key: %v", w.Header())
			}
			if tt.typ == "" {
				return
			}
			e := decode[anthropicErr](t, w.Body.Bytes())
			if e.Type != "error" || e.Error.Type != tt.typ || !strings.Contains(e.Error.Message, tt.message) {
				t.Fatalf("body %s: want type %q message containing %q", w.Body, tt.typ, tt.message)
			}
			if e.RequestID != w.Header().Get("request-id") {
				t.Errorf("body request_id %q != header %q", e.RequestID, w.Header().Get("request-id"))
			}
		})
	}
}

func TestAnthropicValidKeys(t *testing.T) {
	cfg := fastConfig()
	cfg.ValidKeys = []string{"good"}
	s := New(cfg)
	defer s.Close()
	w := serve(s, anthropicReq("/v1/messages", "bad", msgBody("m", "x", 5, false)))
	if e := decode[anthropicErr](t, w.Body.Bytes()); w.Code != 401 || e.Error.Type != "authentication_error" || e.Error.Message != "invalid x-api-key" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := serve(s, anthropicReq("/v1/messages", "good", msgBody("m", "x", 5, false))); w.Code != 200 {
		t.Fatalf("valid key: %d %s", w.Code, w.Body)
	}
}

func TestOpenAIValidation(t *testing.T) {
	s := New(fastConfig())
	defer s.Close()
	const okMsgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name    string
		auth    string
		body    string
		status  int
		typ     string
		code    string
		param   string
		message string
	}{
		{"missing key", "", `{}`, 401, "invalid_request_error", "", "", "You didn't provide an API key"},
		{"bad json", "Bearer k", `{"model"`, 400, "invalid_request_error", "", "", "We could not parse the JSON body of your request."},
		{"missing model", "Bearer k", `{` + okMsgs + `}`, 400, "invalid_request_error", "", "", "you must provide a model parameter"},
		{"missing messages", "Bearer k", `{"model":"gpt"}`, 400, "invalid_request_error", "missing_required_parameter", "messages", "Missing required parameter: 'messages'."},
		{"empty messages", "Bearer k", `{"model":"gpt","messages":[]}`, 400, "invalid_request_error", "empty_array", "messages", "Invalid 'messages': empty array."},
		{"bad role", "Bearer k", `{"model":"gpt","messages":[{"role":"bot","content":"x"}]}`, 400, "invalid_request_error", "invalid_value", "messages[0].role", "Invalid value: 'bot'. Supported values are:"},
		{"max_tokens zero", "Bearer k", `{"model":"gpt","max_tokens":0,` + okMsgs + `}`, 400, "invalid_request_error", "integer_below_min_value", "max_tokens", "Invalid 'max_tokens': integer below minimum value."},
		{"stream_options without stream", "Bearer k", `{"model":"gpt","stream_options":{"include_usage":true},` + okMsgs + `}`, 400, "invalid_request_error", "", "stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled."},
		{"context too long", "Bearer k", `{"model":"gpt","messages":[{"role":"user","content":"` + strings.Repeat("word ", 130_000) + `"}]}`, 400, "invalid_request_error", "context_length_exceeded", "messages", "This model's maximum context length is 128000 tokens."},
		{"ok", "Bearer k", `{"model":"gpt",` + okMsgs + `}`, 200, "", "", "", ""},
		{"developer and tool roles ok", "Bearer k", `{"model":"gpt","messages":[{"role":"developer","content":"d"},{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":null},{"role":"tool","content":"r"}]}`, 200, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(tt.body))
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := serve(s, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if !strings.HasPrefix(w.Header().Get("x-request-id"), "req_") {
				t.Errorf("x-request-id %q", w.Header().Get("x-request-id"))
			}
			if tt.typ == "" {
				return
			}
			e := decode[openAIErr](t, w.Body.Bytes())
			str := func(p *string) string {
				if p == nil {
					return ""
				}
				return *p
			}
			if e.Error.Type != tt.typ || str(e.Error.Code) != tt.code || str(e.Error.Param) != tt.param || !strings.Contains(e.Error.Message, tt.message) {
				t.Fatalf("body %s: want type %q code %q param %q message ~%q", w.Body, tt.typ, tt.code, tt.param, tt.message)
			}
		})
	}
}
