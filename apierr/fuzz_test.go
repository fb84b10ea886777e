package apierr

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

func FuzzFromResponse(f *testing.F) {
	f.Add(429, anthropicBody("rate_limit_error", "of 20,000 input tokens per minute"), "retry-after: 17\nx-should-retry: true")
	f.Add(429, `{"type":"error","error":{"type":"rate_limit_error","message":"x","details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_1"}`, "")
	f.Add(429, openAIBody("Rate limit reached on tokens per min (TPM)", "tokens", "rate_limit_exceeded"), "x-ratelimit-remaining-tokens: 0\nx-ratelimit-limit-tokens: 30000")
	f.Add(503, openAIBody("The engine is currently overloaded", "server_error", "engine_overloaded"), "x-request-id: req")
	f.Add(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "retry-after-ms: 1500.5")
	f.Add(502, "<html>Bad Gateway</html>", "")
	f.Add(500, `{"error":{"message":5,"type":null,"code":{"a":1},"details":[]},"request_id":7}`, "")
	f.Add(200, `{"type":"error"}`, "")
	f.Add(404, `{"error":"\ufeff"}`, "")

	f.Fuzz(func(t *testing.T, status int, body, headerText string) {
		h := http.Header{}
		for line := range strings.SplitSeq(headerText, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				h.Add(strings.TrimSpace(k), v)
			}
		}
		now := time.Date(2025, 8, 21, 12, 40, 0, 0, time.UTC)
		e := FromResponse(status, h, []byte(body), now)
		if status < 400 {
			if e != nil {
				t.Fatalf("FromResponse(%d) = %v, want nil", status, e)
			}
			return
		}
		if e == nil {
			t.Fatalf("FromResponse(%d) = nil", status)
		}
		if e.StatusCode != status {
			t.Fatalf("StatusCode = %d, want %d", e.StatusCode, status)
		}
		checkInvariants(t, e)
		if e.MidStream || e.Err != nil {
			t.Fatalf("HTTP error with MidStream %v, Err %v", e.MidStream, e.Err)
		}
		if e.RetryAfter < -1 {
			t.Fatalf("RetryAfter = %v", e.RetryAfter)
		}
		if len(body) <= MaxBody && string(e.Body) != body {
			t.Fatalf("Body = %q, want %q", e.Body, body)
		}
		if e.DimensionKnown && e.Class != RateLimited && e.Class != RequestTooLarge {
			t.Fatalf("class %v with a dimension", e.Class)
		}
		// Classification only depends on its inputs.
		again := FromResponse(status, h, []byte(body), now)
		if again.Class != e.Class || again.Error() != e.Error() {
			t.Fatalf("not deterministic: %v vs %v", e, again)
		}
	})
}

func FuzzFromEvent(f *testing.F) {
	f.Add(uint8(ratelimit.Anthropic), `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	f.Add(uint8(ratelimit.Anthropic), `{"type":"error","error":{"type":"rate_limit_error","message":"8,000 output tokens per minute"}}`)
	f.Add(uint8(ratelimit.OpenAI), `{"error":{"message":"x","type":"server_error","param":null,"code":null}}`)
	f.Add(uint8(ratelimit.ProviderUnknown), `{"error":{"code":"server_is_overloaded","message":"overloaded","type":"service_unavailable_error"},"type":"error"}`)
	f.Add(uint8(ratelimit.OpenAI), `{"id":"chatcmpl-1","choices":[{"delta":{"content":"error"}}]}`)
	f.Add(uint8(ratelimit.OpenAI), `{"error":"boom"}`)
	f.Add(uint8(9), `[DONE]`)

	f.Fuzz(func(t *testing.T, p uint8, data string) {
		prov := ratelimit.Provider(p % 3)
		e := FromEvent(prov, []byte(data))
		if e == nil {
			return
		}
		checkInvariants(t, e)
		if e.StatusCode != http.StatusOK || !e.MidStream || e.RetryAfter != -1 || e.Err != nil {
			t.Fatalf("StatusCode, MidStream, RetryAfter, Err = %d, %v, %v, %v", e.StatusCode, e.MidStream, e.RetryAfter, e.Err)
		}
		if prov != ratelimit.ProviderUnknown && e.Provider != prov {
			t.Fatalf("Provider = %v, want the given %v", e.Provider, prov)
		}
		if !strings.Contains(data, "{") {
			t.Fatalf("error from non-object data %q", data)
		}
	})
}

func checkInvariants(t *testing.T, e *Error) {
	t.Helper()
	if !e.Class.valid() {
		t.Fatalf("Class %d is not a declared class", e.Class)
	}
	if e.Provider > ratelimit.OpenAI {
		t.Fatalf("Provider = %d", e.Provider)
	}
	if len(e.Body) > MaxBody {
		t.Fatalf("len(Body) = %d > MaxBody", len(e.Body))
	}
	if e.DimensionKnown && int(e.Dimension) >= ratelimit.NumDimensions {
		t.Fatalf("Dimension = %d", e.Dimension)
	}
	if !errors.Is(e, e.Class) {
		t.Fatalf("errors.Is(e, %v) = false", e.Class)
	}
	if e.Class == QuotaExhausted && e.Retryable() {
		t.Fatal("QuotaExhausted is retryable")
	}
	if msg := e.Error(); !strings.HasPrefix(msg, "apierr: ") {
		t.Fatalf("Error() = %q", msg)
	}
}
