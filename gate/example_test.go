package gate_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
)

func Example() {
	g := gate.New(gate.Config{})

	// The engine's budget check: reserve the request's estimated cost in
	// the budget store, or say when to ask again.
	tokens := 50_000
	admit := func(now time.Time) (time.Duration, bool) {
		if tokens < 20_000 {
			return 10 * time.Second, false
		}
		tokens -= 20_000
		return 0, true
	}

	t, err := g.Acquire(context.Background(), gate.Request{Admit: admit})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("admitted; tokens left:", tokens)
	fmt.Println("in flight:", g.Stats().InFlight)

	// ... send the request; when its response body is finished or closed:
	t.Release()
	fmt.Println("in flight:", g.Stats().InFlight)
	// Output:
	// admitted; tokens left: 30000
	// in flight: 1
	// in flight: 0
}

func ExampleWaitError() {
	g := gate.New(gate.Config{})
	// A 429 put the key's output tokens into cooldown for 30 seconds.
	g.Cooldown(ratelimit.OutputTokens, time.Now().Add(30*time.Second))

	// A caller that can wait at most 5 seconds fails at once, and learns
	// how long it would have waited: a proxy sends that as retry-after.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := g.Acquire(ctx, gate.Request{})
	var werr *gate.WaitError
	if errors.As(err, &werr) {
		fmt.Println(errors.Is(err, gate.ErrDeadline), werr.Reason, werr.Dimension)
		fmt.Println("retry-after:", werr.Wait.Round(time.Second).Seconds())
	}
	// Output:
	// true cooldown output_tokens
	// retry-after: 30
}
