package retry_test

import (
	"fmt"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/retry"
)

func ExamplePolicy_Decide() {
	var p retry.Policy // the defaults: 5 attempts, 5 minutes, 1s doubling to 60s
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	noJitter := func() float64 { return 0 }

	// A 429 whose retry-after is above the backoff: retry-after wins.
	rateLimited := &apierr.Error{Class: apierr.RateLimited, RetryAfter: 20 * time.Second}
	d := p.Decide(retry.Attempt{N: 1, Err: rateLimited, Start: start, Now: start}, noJitter)
	fmt.Println(d.Retry, d.Delay, "-", d.Reason)

	// A 529 on the third attempt: exponential backoff.
	overloaded := &apierr.Error{Class: apierr.Overloaded, RetryAfter: -1}
	d = p.Decide(retry.Attempt{N: 3, Err: overloaded, Start: start, Now: start.Add(time.Minute)}, noJitter)
	fmt.Println(d.Retry, d.Delay, "-", d.Reason)

	// A spend cap is never retried.
	spendCap := &apierr.Error{Class: apierr.QuotaExhausted, RetryAfter: -1}
	d = p.Decide(retry.Attempt{N: 1, Err: spendCap, Start: start, Now: start}, noJitter)
	fmt.Println(d.Retry, "-", d.Reason)
	// Output:
	// true 20s - rate_limited: retry in 20s (retry-after)
	// true 4s - overloaded: retry in 4s (backoff)
	// false - quota_exhausted: retrying cannot help
}

func ExampleBudget() {
	// Retries may add at most 10% to the traffic (a second argument would
	// add a minimum number of retries per second for quiet clients).
	b := retry.NewBudget(0.1, 0)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for range 30 {
		b.OnRequest(now) // once per request, retries excluded
	}
	granted := 0
	for range 10 {
		if b.TryRetry(now) {
			granted++
		}
	}
	fmt.Println("retries granted after 30 requests:", granted)
	// Output: retries granted after 30 requests: 3
}
