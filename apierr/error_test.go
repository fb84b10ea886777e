package apierr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/streamgate/streamgate/ratelimit"
)

func TestFromEvent(t *testing.T) {
	tests := []struct {
		name     string
		p        ratelimit.Provider
		data     string
		want     Class
		typ      string
		provider ratelimit.Provider
	}{
		{"anthropic overloaded", ratelimit.Anthropic, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, Overloaded, "overloaded_error", ratelimit.Anthropic},
		{"anthropic rate limit", ratelimit.Anthropic, `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 8,000 output tokens per minute."}}`, RateLimited, "rate_limit_error", ratelimit.Anthropic},
		{"anthropic api error", ratelimit.Anthropic, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, ServerError, "api_error", ratelimit.Anthropic},
		{"anthropic unknown type", ratelimit.Anthropic, `{"type":"error","error":{"type":"mystery_error","message":"?"}}`, Unknown, "mystery_error", ratelimit.Anthropic},
		{"anthropic shape, provider unknown", ratelimit.ProviderUnknown, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, Overloaded, "overloaded_error", ratelimit.Anthropic},
		{"openai server error", ratelimit.OpenAI, `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`, ServerError, "server_error", ratelimit.OpenAI},
		{"openai overloaded code", ratelimit.ProviderUnknown, `{"error":{"code":"server_is_overloaded","message":"Our servers are currently overloaded. Please try again later.","param":null,"type":"service_unavailable_error"},"sequence_number":2,"type":"error"}`, Overloaded, "service_unavailable_error", ratelimit.OpenAI},
		{"openai rate limit", ratelimit.OpenAI, `{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 30000, Requested 900.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`, RateLimited, "tokens", ratelimit.OpenAI},
		{"openai quota", ratelimit.OpenAI, `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, QuotaExhausted, "insufficient_quota", ratelimit.OpenAI},
		{"string error", ratelimit.OpenAI, `{"error":"upstream failed"}`, Unknown, "", ratelimit.OpenAI},
		{"numeric status code", ratelimit.OpenAI, `{"error":{"message":"bad gateway","code":502}}`, ServerError, "", ratelimit.OpenAI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := FromEvent(tt.p, []byte(tt.data))
			if e == nil {
				t.Fatal("FromEvent = nil")
			}
			if e.Class != tt.want || e.Type != tt.typ || e.Provider != tt.provider {
				t.Errorf("Class, Type, Provider = %v, %q, %v; want %v, %q, %v", e.Class, e.Type, e.Provider, tt.want, tt.typ, tt.provider)
			}
			if e.StatusCode != 200 || !e.MidStream || e.RetryAfter != -1 {
				t.Errorf("StatusCode, MidStream, RetryAfter = %d, %v, %v; want 200, true, -1", e.StatusCode, e.MidStream, e.RetryAfter)
			}
			if string(e.Body) != tt.data {
				t.Errorf("Body = %q", e.Body)
			}
		})
	}
}

func TestFromEventDimension(t *testing.T) {
	e := FromEvent(ratelimit.Anthropic, []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 8,000 output tokens per minute."}}`))
	if !e.DimensionKnown || e.Dimension != ratelimit.OutputTokens {
		t.Errorf("Dimension = %v (known %v), want output_tokens", e.Dimension, e.DimensionKnown)
	}
}

func TestFromEventNotAnError(t *testing.T) {
	for _, data := range []string{
		``,
		`[DONE]`,
		`{"type":"ping"}`,
		`{"type":"message_stop"}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"error"}}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`,
		`{"error":null}`,
		`{"error":false}`,
		`{"error":[1]}`,
		`{"type":"error","error":{"type":"overloaded_error"`,
		`Overloaded`,
	} {
		t.Run(data, func(t *testing.T) {
			if e := FromEvent(ratelimit.Anthropic, []byte(data)); e != nil {
				t.Errorf("FromEvent(%q) = %v, want nil", data, e)
			}
		})
	}
}

// errTimeoutLike is a net.Error that also claims to be
// context.DeadlineExceeded, as the net package's dial timeout does.
type errTimeoutLike struct{}

func (errTimeoutLike) Error() string        { return "i/o timeout" }
func (errTimeoutLike) Timeout() bool        { return true }
func (errTimeoutLike) Temporary() bool      { return true }
func (errTimeoutLike) Is(target error) bool { return target == context.DeadlineExceeded }

func TestFromTransport(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: errTimeoutLike{}}
	tests := []struct {
		name string
		err  error
		want Class
		nil_ bool
	}{
		{"nil", nil, 0, true},
		{"refused", refused, Network, false},
		{"reset", reset, Network, false},
		{"eof before headers", fmt.Errorf("net/http: %w", io.ErrUnexpectedEOF), Network, false},
		{"plain eof", io.EOF, Network, false},
		{"dial timeout", dialTimeout, Network, false},
		{"deadline on the connection", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), Network, false},
		{"caller canceled", context.Canceled, 0, true},
		{"caller deadline", context.DeadlineExceeded, 0, true},
		{"wrapped cancel", fmt.Errorf("Post %q: %w", "https://api.anthropic.com/v1/messages", context.Canceled), 0, true},
		{"joined cancel", errors.Join(reset, context.Canceled), 0, true},
		{"bad certificate", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, Unknown, false},
		{"wrong host", fmt.Errorf("tls: %w", x509.HostnameError{Host: "api.anthropic.com", Certificate: &x509.Certificate{}}), Unknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := FromTransport(tt.err)
			if tt.nil_ {
				if e != nil {
					t.Fatalf("FromTransport = %v, want nil", e)
				}
				return
			}
			if e == nil {
				t.Fatal("FromTransport = nil")
			}
			if e.Class != tt.want || e.StatusCode != 0 || e.RetryAfter != -1 || e.Body != nil {
				t.Errorf("Class, StatusCode, RetryAfter, Body = %v, %d, %v, %q", e.Class, e.StatusCode, e.RetryAfter, e.Body)
			}
			if !errors.Is(e, tt.err) {
				t.Error("the cause is not reachable with errors.Is")
			}
			if e.Retryable() != (tt.want == Network) {
				t.Errorf("Retryable = %v", e.Retryable())
			}
		})
	}

	t.Run("already classified", func(t *testing.T) {
		inner := &Error{Class: Overloaded, StatusCode: 529, RetryAfter: -1}
		if got := FromTransport(fmt.Errorf("round trip: %w", inner)); got != inner {
			t.Errorf("FromTransport = %v, want the wrapped *Error", got)
		}
	})
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		e    *Error
		want string
	}{
		{"full", &Error{StatusCode: 429, Class: RateLimited, Type: "rate_limit_error", Message: "Rate limited", RequestID: "req_x"},
			"apierr: 429 rate_limit_error: Rate limited (request_id req_x)"},
		{"no type", &Error{StatusCode: 502, Class: ServerError},
			"apierr: 502 server_error: Bad Gateway"},
		{"mid-stream", &Error{StatusCode: 200, MidStream: true, Class: Overloaded, Type: "overloaded_error", Message: "Overloaded"},
			"apierr: stream overloaded_error: Overloaded"},
		{"network", &Error{Class: Network, Err: io.ErrUnexpectedEOF},
			"apierr: network: unexpected EOF"},
		{"nil", nil, "apierr: <nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorsIsAs(t *testing.T) {
	e := FromResponse(429, hdr("retry-after", "20"), []byte(anthropicBody("rate_limit_error", "Rate limited")), arrival)
	wrapped := fmt.Errorf("streamgate: send: %w", e)
	if !errors.Is(wrapped, RateLimited) {
		t.Error("errors.Is(wrapped, RateLimited) = false")
	}
	for _, c := range []Class{Unknown, Overloaded, QuotaExhausted, Network} {
		if errors.Is(wrapped, c) {
			t.Errorf("errors.Is(wrapped, %v) = true", c)
		}
	}
	var got *Error
	if !errors.As(wrapped, &got) || got != e {
		t.Fatal("errors.As did not find the *Error")
	}
	if got.RetryAfter.Seconds() != 20 {
		t.Errorf("RetryAfter = %v", got.RetryAfter)
	}
	if errors.Unwrap(e) != nil {
		t.Error("an HTTP error has a cause")
	}
}

func TestRetryable(t *testing.T) {
	classes := []Class{Unknown, RateLimited, Overloaded, ServerError, Timeout, Conflict, QuotaExhausted,
		InvalidRequest, Authentication, Billing, Permission, NotFound, RequestTooLarge, Network}
	retryable := map[Class]bool{RateLimited: true, Overloaded: true, ServerError: true, Timeout: true, Conflict: true, Network: true}
	for _, c := range classes {
		t.Run(c.String(), func(t *testing.T) {
			unset := &Error{Class: c}
			if unset.Retryable() != retryable[c] {
				t.Errorf("no header: Retryable = %v, want %v", unset.Retryable(), retryable[c])
			}
			no := &Error{Class: c, ShouldRetry: ratelimit.ShouldRetryFalse}
			if no.Retryable() {
				t.Error("x-should-retry: false, yet retryable")
			}
			yes := &Error{Class: c, ShouldRetry: ratelimit.ShouldRetryTrue}
			if want := c != QuotaExhausted; yes.Retryable() != want {
				t.Errorf("x-should-retry: true: Retryable = %v, want %v", yes.Retryable(), want)
			}
		})
	}
}
