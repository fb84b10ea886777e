package apierr

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

var arrival = time.Date(2025, 8, 21, 12, 40, 0, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func anthropicBody(typ, msg string) string {
	return `{"type":"error","error":{"type":"` + typ + `","message":"` + msg + `"},"request_id":"req_011CZRtHe9vmeRRMu6G4rMhJ"}`
}

// TestFromResponseAnthropicTable walks provider-facts.md's Anthropic error
// table: one row per status with its documented type and retry advice.
func TestFromResponseAnthropicTable(t *testing.T) {
	tests := []struct {
		status    int
		typ, msg  string
		want      Class
		retryable bool
	}{
		{400, "invalid_request_error", "messages: at least one message is required", InvalidRequest, false},
		{401, "authentication_error", "invalid x-api-key", Authentication, false},
		{402, "billing_error", "Your credit balance is too low to access the Anthropic API.", Billing, false},
		{403, "permission_error", "Your API key does not have permission to use the specified resource.", Permission, false},
		{404, "not_found_error", "model: claude-nope", NotFound, false},
		{409, "conflict_error", "Conflict", Conflict, true},
		{413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", RequestTooLarge, false},
		{429, "rate_limit_error", "This request would exceed the rate limit for your organization (0dccdde6-f924-4f1b-bb3b-92ef846e0a5b) of 20,000 input tokens per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits.", RateLimited, true},
		{500, "api_error", "Internal server error", ServerError, true},
		{504, "timeout_error", "Request timed out", Timeout, true},
		{529, "overloaded_error", "Overloaded", Overloaded, true},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			h := hdr("request-id", "req_hdr", "anthropic-ratelimit-requests-limit", "50")
			e := FromResponse(tt.status, h, []byte(anthropicBody(tt.typ, tt.msg)), arrival)
			if e == nil {
				t.Fatal("FromResponse = nil")
			}
			if e.Class != tt.want {
				t.Errorf("Class = %v, want %v", e.Class, tt.want)
			}
			if e.Retryable() != tt.retryable {
				t.Errorf("Retryable = %v, want %v", e.Retryable(), tt.retryable)
			}
			if e.Type != tt.typ || e.Message != tt.msg || e.StatusCode != tt.status {
				t.Errorf("Type, Message, StatusCode = %q, %q, %d", e.Type, e.Message, e.StatusCode)
			}
			if e.Provider != ratelimit.Anthropic {
				t.Errorf("Provider = %v, want anthropic", e.Provider)
			}
			if e.RequestID != "req_hdr" {
				t.Errorf("RequestID = %q, want the header's req_hdr", e.RequestID)
			}
			if e.MidStream {
				t.Error("MidStream set on an HTTP error")
			}
		})
	}
}

// TestFromResponseStatusFallback: bodies that say nothing useful (empty,
// HTML from a load balancer, truncated JSON, an unknown type) fall back to
// the status.
func TestFromResponseStatusFallback(t *testing.T) {
	bodies := map[string]string{
		"empty":        "",
		"html":         "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>",
		"truncated":    `{"type":"error","error":{"type":"rate_limit_err`,
		"unknown type": `{"type":"error","error":{"type":"brand_new_error","message":"?"}}`,
		"array":        `[1,2,3]`,
		"plain text":   "upstream connect error or disconnect/reset before headers",
		"null error":   `{"error":null}`,
	}
	statuses := []struct {
		status int
		want   Class
	}{
		{400, InvalidRequest}, {401, Authentication}, {402, Billing}, {403, Permission},
		{404, NotFound}, {405, InvalidRequest}, {408, Timeout}, {409, Conflict},
		{413, RequestTooLarge}, {422, InvalidRequest}, {429, RateLimited},
		{500, ServerError}, {502, ServerError}, {503, ServerError}, {504, Timeout},
		{520, ServerError}, {529, Overloaded}, {600, Unknown},
	}
	for name, b := range bodies {
		for _, st := range statuses {
			t.Run(name+"/"+http.StatusText(st.status), func(t *testing.T) {
				e := FromResponse(st.status, nil, []byte(b), arrival)
				if e == nil || e.Class != st.want || e.StatusCode != st.status {
					t.Fatalf("FromResponse(%d) = %+v, want class %v", st.status, e, st.want)
				}
				if !bytes.Equal(e.Body, []byte(b)) {
					t.Errorf("Body = %q, want the raw body", e.Body)
				}
			})
		}
	}
}

func TestFromResponseSuccessIsNil(t *testing.T) {
	for _, status := range []int{0, 100, 200, 204, 301, 304, 399} {
		if e := FromResponse(status, nil, []byte(anthropicBody("api_error", "x")), arrival); e != nil {
			t.Errorf("FromResponse(%d) = %v, want nil", status, e)
		}
	}
}

func TestFromResponseSpendCap(t *testing.T) {
	spend := `{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits. You will regain access on 2025-09-01 at 00:00 UTC.","details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_spend"}`
	monthly := anthropicBody("rate_limit_error", "This request would exceed your account's monthly spend limit. Please try again later.")
	console := anthropicBody("invalid_request_error", "You have reached your specified API usage limits. You will regain access on 2026-08-01 at 00:00 UTC.")
	plain := anthropicBody("rate_limit_error", "This request would exceed the rate limit for your organization of 8,000 output tokens per minute.")
	tests := []struct {
		name   string
		status int
		body   string
		h      http.Header
		want   Class
		code   string
	}{
		{"error_code, no retry-after", 429, spend, hdr(), QuotaExhausted, "enforced_spend_limit_reached"},
		{"error_code, with retry-after", 429, spend, hdr("retry-after", "600", "x-should-retry", "true"), QuotaExhausted, "enforced_spend_limit_reached"},
		{"message only, no retry-after", 429, monthly, hdr(), QuotaExhausted, ""},
		{"message only, with retry-after", 429, monthly, hdr("retry-after", "300"), QuotaExhausted, ""},
		{"console cap as 400", 400, console, hdr(), QuotaExhausted, ""},
		{"ordinary rate limit, no retry-after", 429, plain, hdr(), RateLimited, ""},
		{"ordinary rate limit, retry-after", 429, plain, hdr("retry-after", "20"), RateLimited, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := FromResponse(tt.status, tt.h, []byte(tt.body), arrival)
			if e.Class != tt.want || e.Code != tt.code {
				t.Fatalf("Class, Code = %v, %q; want %v, %q", e.Class, e.Code, tt.want, tt.code)
			}
			if tt.want == QuotaExhausted && e.Retryable() {
				t.Error("a spend cap is retryable")
			}
			if tt.want == RateLimited && !e.Retryable() {
				t.Error("an ordinary rate limit is not retryable")
			}
		})
	}
}

func openAIBody(msg, typ, code string) string {
	c := "null"
	if code != "" {
		c = `"` + code + `"`
	}
	return `{"error":{"message":"` + msg + `","type":"` + typ + `","param":null,"code":` + c + `}}`
}

func TestFromResponseOpenAI(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		want     Class
		dim      ratelimit.Dimension
		dimKnown bool
	}{
		{"insufficient_quota", 429, openAIBody("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota"), QuotaExhausted, 0, false},
		{"billing_hard_limit_reached", 429, openAIBody("Billing hard limit has been reached", "invalid_request_error", "billing_hard_limit_reached"), QuotaExhausted, 0, false},
		{"billing_not_active", 429, openAIBody("Your account is not active, please check your billing details on our website.", "billing_not_active", "billing_not_active"), QuotaExhausted, 0, false},
		{"access_terminated", 429, openAIBody("You have been terminated.", "access_terminated", "access_terminated"), QuotaExhausted, 0, false},
		{"tpm", 429, openAIBody("Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29937, Requested 385. Please try again in 644ms.", "tokens", "rate_limit_exceeded"), RateLimited, ratelimit.Tokens, true},
		{"rpm", 429, openAIBody("Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1.", "requests", "rate_limit_exceeded"), RateLimited, ratelimit.Requests, true},
		{"rpd", 429, openAIBody("Rate limit reached for gpt-4o-mini in organization org-x on requests per day (RPD): Limit 200, Used 200, Requested 1.", "requests", "rate_limit_exceeded"), RateLimited, ratelimit.Requests, true},
		{"request too large", 429, openAIBody("Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 31538. The input or output tokens must be reduced in order to run successfully.", "tokens", "rate_limit_exceeded"), RequestTooLarge, ratelimit.Tokens, true},
		{"server_is_overloaded", 503, openAIBody("Our servers are currently overloaded. Please try again later.", "service_unavailable_error", "server_is_overloaded"), Overloaded, 0, false},
		{"engine_overloaded", 503, openAIBody("The engine is currently overloaded, please try again later", "server_error", "engine_overloaded"), Overloaded, 0, false},
		{"overloaded by message", 503, openAIBody("That model is currently overloaded with other requests. You can retry your request.", "server_error", ""), Overloaded, 0, false},
		{"plain 503", 503, openAIBody("Service Unavailable", "server_error", ""), ServerError, 0, false},
		{"500", 500, openAIBody("The server had an error while processing your request. Sorry about that!", "server_error", ""), ServerError, 0, false},
		{"invalid key is a 401 invalid_request_error", 401, openAIBody("Incorrect API key provided: sk-abc***xyz.", "invalid_request_error", "invalid_api_key"), Authentication, 0, false},
		{"model not found is a 404 invalid_request_error", 404, openAIBody("The model `gpt-9` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"), NotFound, 0, false},
		{"context length", 400, openAIBody("This model's maximum context length is 128000 tokens.", "invalid_request_error", "context_length_exceeded"), InvalidRequest, 0, false},
		{"unsupported country", 403, openAIBody("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"), Permission, 0, false},
		{"pretty-printed", 429, "{\n  \"error\": {\n    \"message\": \"You exceeded your current quota.\",\n    \"type\": \"insufficient_quota\",\n    \"param\": null,\n    \"code\": \"insufficient_quota\"\n  }\n}\n", QuotaExhausted, 0, false},
		{"error as a string", 429, `{"error":"too many requests"}`, RateLimited, 0, false},
		{"numeric code", 502, `{"error":{"message":"bad gateway","code":502}}`, ServerError, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr("x-request-id", "req_oa", "x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "499")
			e := FromResponse(tt.status, h, []byte(tt.body), arrival)
			if e.Class != tt.want {
				t.Errorf("Class = %v, want %v", e.Class, tt.want)
			}
			if e.DimensionKnown != tt.dimKnown || (tt.dimKnown && e.Dimension != tt.dim) {
				t.Errorf("Dimension = %v (known %v), want %v (known %v)", e.Dimension, e.DimensionKnown, tt.dim, tt.dimKnown)
			}
			if e.Provider != ratelimit.OpenAI || e.RequestID != "req_oa" {
				t.Errorf("Provider, RequestID = %v, %q", e.Provider, e.RequestID)
			}
		})
	}
}

func TestFromResponseOpenAIFields(t *testing.T) {
	body := openAIBody("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota")
	e := FromResponse(429, nil, []byte(body), arrival)
	if e.Type != "insufficient_quota" || e.Code != "insufficient_quota" || !strings.HasPrefix(e.Message, "You exceeded") {
		t.Errorf("Type, Code, Message = %q, %q, %q", e.Type, e.Code, e.Message)
	}
	if e.Provider != ratelimit.OpenAI {
		t.Errorf("Provider from body shape = %v, want openai", e.Provider)
	}
	if e.Retryable() {
		t.Error("insufficient_quota is retryable")
	}
}

func TestFromResponseAnthropicOverloadedAs500(t *testing.T) {
	// Seen in the wild: a 500 api_error whose message is "Overloaded", with
	// a null request_id.
	body := `{"type":"error","error":{"type":"api_error","message":"Overloaded"},"request_id":null}`
	e := FromResponse(500, nil, []byte(body), arrival)
	if e.Class != Overloaded || e.RequestID != "" || e.Provider != ratelimit.Anthropic {
		t.Errorf("Class, RequestID, Provider = %v, %q, %v; want overloaded, \"\", anthropic", e.Class, e.RequestID, e.Provider)
	}
}

func TestFromResponseDimension(t *testing.T) {
	msg := func(m string) []byte { return []byte(anthropicBody("rate_limit_error", m)) }
	zeroOutput := hdr(
		"anthropic-ratelimit-requests-limit", "50",
		"anthropic-ratelimit-requests-remaining", "30",
		"anthropic-ratelimit-output-tokens-limit", "8000",
		"anthropic-ratelimit-output-tokens-remaining", "0",
	)
	tests := []struct {
		name   string
		h      http.Header
		body   []byte
		want   ratelimit.Dimension
		wantOK bool
	}{
		{"input from message", nil, msg("This request would exceed the rate limit for your organization (x) of 20,000 input tokens per minute."), ratelimit.InputTokens, true},
		{"output from message", nil, msg("This request would exceed your organization's rate limit of 8,000 output tokens per minute (org: x, model: claude-sonnet-4-20250514)."), ratelimit.OutputTokens, true},
		{"requests from message", nil, msg("This request would exceed the rate limit for your organization of 50 requests per minute."), ratelimit.Requests, true},
		{"message beats headers", zeroOutput, msg("... of 20,000 input tokens per minute ..."), ratelimit.InputTokens, true},
		{"headers when the message is silent", zeroOutput, msg("Rate limited"), ratelimit.OutputTokens, true},
		{"no clue", nil, msg("Rate limited"), 0, false},
		{"headers with nothing at zero", hdr(
			"anthropic-ratelimit-requests-limit", "50",
			"anthropic-ratelimit-requests-remaining", "1",
		), msg("Rate limited"), 0, false},
		{"several at zero: the lowest dimension", hdr(
			"anthropic-ratelimit-tokens-limit", "9000",
			"anthropic-ratelimit-tokens-remaining", "0",
			"anthropic-ratelimit-input-tokens-limit", "4000",
			"anthropic-ratelimit-input-tokens-remaining", "0",
		), msg("Rate limited"), ratelimit.InputTokens, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := FromResponse(429, tt.h, tt.body, arrival)
			if e.DimensionKnown != tt.wantOK || (tt.wantOK && e.Dimension != tt.want) {
				t.Errorf("Dimension = %v (known %v), want %v (known %v)", e.Dimension, e.DimensionKnown, tt.want, tt.wantOK)
			}
		})
	}
	// Only rate limits carry a dimension.
	if e := FromResponse(529, zeroOutput, []byte(anthropicBody("overloaded_error", "Overloaded")), arrival); e.DimensionKnown {
		t.Errorf("529 has dimension %v", e.Dimension)
	}
}

func TestFromResponseHeaders(t *testing.T) {
	h := hdr("retry-after", "17", "x-should-retry", "false", "request-id", "req_hdr")
	body := []byte(anthropicBody("rate_limit_error", "Rate limited"))
	e := FromResponse(429, h, body, arrival)
	if e.RetryAfter != 17*time.Second {
		t.Errorf("RetryAfter = %v, want 17s", e.RetryAfter)
	}
	if e.ShouldRetry != ratelimit.ShouldRetryFalse || e.Retryable() {
		t.Errorf("ShouldRetry = %v, Retryable = %v; want false, false", e.ShouldRetry, e.Retryable())
	}
	if e.RequestID != "req_hdr" {
		t.Errorf("RequestID = %q, want the header over the body", e.RequestID)
	}

	e = FromResponse(429, nil, body, arrival)
	if e.RetryAfter != -1 {
		t.Errorf("RetryAfter without a header = %v, want -1", e.RetryAfter)
	}
	if e.RequestID != "req_011CZRtHe9vmeRRMu6G4rMhJ" {
		t.Errorf("RequestID = %q, want the body's request_id", e.RequestID)
	}
	if e.Provider != ratelimit.Anthropic {
		t.Errorf("Provider from body shape = %v, want anthropic", e.Provider)
	}

	e = FromResponse(429, hdr("x-request-id", "req_x"), nil, arrival)
	if e.RequestID != "req_x" {
		t.Errorf("RequestID = %q, want the x-request-id fallback", e.RequestID)
	}
}

func TestFromResponseBodyBounded(t *testing.T) {
	body := append([]byte(anthropicBody("api_error", "x")), bytes.Repeat([]byte(" "), 2*MaxBody)...)
	e := FromResponse(500, nil, body, arrival)
	if len(e.Body) != MaxBody {
		t.Errorf("len(Body) = %d, want %d", len(e.Body), MaxBody)
	}
	if e.Type != "api_error" {
		t.Errorf("Type = %q: the whole body should still be parsed", e.Type)
	}
	body[0] = 'X'
	if e.Body[0] != '{' {
		t.Error("Body aliases the caller's buffer")
	}
}

func TestFromSnapshotMatchesFromResponse(t *testing.T) {
	h := hdr("retry-after", "3", "anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "0", "request-id", "req_a")
	body := []byte(anthropicBody("rate_limit_error", "Rate limited"))
	a := FromResponse(429, h, body, arrival)
	b := FromSnapshot(429, ratelimit.Parse(h, arrival), body)
	if a.Error() != b.Error() || a.Class != b.Class || a.Dimension != b.Dimension || a.RetryAfter != b.RetryAfter {
		t.Errorf("FromResponse %+v != FromSnapshot %+v", a, b)
	}
	if !a.DimensionKnown || a.Dimension != ratelimit.Requests {
		t.Errorf("Dimension = %v (known %v), want requests from the headers", a.Dimension, a.DimensionKnown)
	}
}
