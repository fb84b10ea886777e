package ratelimit_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

func ExampleParse() {
	arrived := time.Date(2025, 8, 21, 12, 40, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("anthropic-ratelimit-requests-limit", "50")
	h.Set("anthropic-ratelimit-requests-remaining", "49")
	h.Set("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:01Z")
	h.Set("anthropic-ratelimit-output-tokens-limit", "80000")
	h.Set("anthropic-ratelimit-output-tokens-remaining", "48000")
	h.Set("anthropic-ratelimit-output-tokens-reset", "2025-08-21T12:40:59Z")
	h.Set("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG")

	s := ratelimit.Parse(h, arrived)
	out := s.Bucket(ratelimit.OutputTokens)
	fmt.Println(s.Provider, out.Remaining, out.Limit, out.Granularity)
	full, _ := s.FullAt(ratelimit.OutputTokens)
	fmt.Println("full in", full.Sub(arrived))
	fmt.Println(s)
	// Output:
	// anthropic 48000 80000 1000
	// full in 59s
	// anthropic requests=49/50@1s output_tokens=~48000/80000@59s request_id=req_018EeWyXxfu5pfWkrYcMdjWG
}

func ExampleSnapshot_AvailableIn() {
	arrived := time.Date(2025, 8, 21, 12, 40, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("x-ratelimit-limit-tokens", "30000")
	h.Set("x-ratelimit-remaining-tokens", "1000")
	h.Set("x-ratelimit-reset-tokens", "58s")

	s := ratelimit.Parse(h, arrived)
	// 29000 tokens refill in 58 s, 500 per second: 4000 more take 8 s.
	wait, ok := s.AvailableIn(ratelimit.Tokens, 5000, time.Minute)
	fmt.Println(wait, ok)
	// Already there:
	wait, ok = s.AvailableIn(ratelimit.Tokens, 800, time.Minute)
	fmt.Println(wait, ok)
	// Larger than the whole bucket: never at once.
	_, ok = s.AvailableIn(ratelimit.Tokens, 40000, time.Minute)
	fmt.Println(ok)
	// Output:
	// 8s true
	// 0s true
	// false
}
