package apierr_test

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/streamgate/streamgate/apierr"
)

func ExampleFromResponse() {
	h := http.Header{}
	h.Set("retry-after", "17")
	h.Set("request-id", "req_011CZRtHe9vmeRRMu6G4rMhJ")
	body := []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 8,000 output tokens per minute."},"request_id":"req_011CZRtHe9vmeRRMu6G4rMhJ"}`)

	e := apierr.FromResponse(429, h, body, time.Now())
	fmt.Println(e.Provider, e.Class.String(), e.Dimension, e.RetryAfter, e.Retryable())

	spendCap := []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits.","details":{"error_code":"enforced_spend_limit_reached"}}}`)
	e = apierr.FromResponse(429, http.Header{}, spendCap, time.Now())
	fmt.Println(e.Class.String(), e.Retryable())
	// Output:
	// anthropic rate_limited output_tokens 17s true
	// quota_exhausted false
}

func ExampleError_Is() {
	body := []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	var err error = apierr.FromEvent(0, body)
	err = fmt.Errorf("streamgate: stream interrupted: %w", err)

	fmt.Println(errors.Is(err, apierr.Overloaded), errors.Is(err, apierr.RateLimited))
	var e *apierr.Error
	if errors.As(err, &e) {
		fmt.Println(e.MidStream, e.StatusCode)
		fmt.Println(e)
	}
	// Output:
	// true false
	// true 200
	// apierr: stream overloaded_error: Overloaded
}
