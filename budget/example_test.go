package budget_test

import (
	"context"
	"fmt"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

func ExampleBudget() {
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	b := budget.New(budget.NewMemory(), budget.WithClock(budget.ClockFunc(func() time.Time { return now })))
	key := budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_0123456789ab", ModelClass: "claude-sonnet-4"}

	// Configured limits, until response headers teach the real ones.
	limits := budget.UnknownCost()
	limits[ratelimit.Requests] = 50
	limits[ratelimit.InputTokens] = 30000
	limits[ratelimit.OutputTokens] = 8000
	if err := b.SetLimits(ctx, key, limits); err != nil {
		panic(err)
	}

	// Reserve: one request and its estimated input are charged now; its
	// max_tokens of output is held.
	r, res, err := b.Reserve(ctx, key,
		budget.Cost{ratelimit.Requests: 1, ratelimit.InputTokens: 1200},
		budget.Cost{ratelimit.OutputTokens: 4096})
	if err != nil {
		panic(err)
	}
	fmt.Println("admitted:", res.Admitted)

	// Output tokens are charged live as the stream produces them.
	_ = r.Consume(ratelimit.OutputTokens, 500)
	v, _ := b.View(ctx, key)
	o := v.Dimensions[ratelimit.OutputTokens]
	fmt.Printf("streaming: output level %.0f, held %d\n", o.Level, o.Held)

	// Settle with the usage the stream reported: the input estimate is
	// corrected and the unused output hold released.
	_ = r.Settle(budget.Cost{ratelimit.Requests: 1, ratelimit.InputTokens: 1150, ratelimit.OutputTokens: 812})
	v, _ = b.View(ctx, key)
	o = v.Dimensions[ratelimit.OutputTokens]
	fmt.Printf("settled: input level %.0f, output level %.0f, held %d, open %d\n",
		v.Dimensions[ratelimit.InputTokens].Level, o.Level, o.Held, b.Open())
	fmt.Println("settle again:", r.Settle(budget.Cost{}))
	// Output:
	// admitted: true
	// streaming: output level 7500, held 3596
	// settled: input level 28850, output level 7188, held 0, open 0
	// settle again: budget: reservation already ended
}

func ExampleMemory() {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	m := budget.NewMemory(budget.WithWindow(time.Minute))
	key := budget.Key{Provider: ratelimit.OpenAI, Fingerprint: "fp_0123456789ab", ModelClass: "gpt-4o"}
	limits := budget.UnknownCost()
	limits[ratelimit.Tokens] = 60000 // refills 1,000 tokens a second
	_ = m.SetLimits(ctx, key, limits)

	big := budget.Cost{ratelimit.Tokens: 50000}
	res, _ := m.Reserve(ctx, key, "first", big, budget.Cost{}, t0)
	fmt.Println(res.Admitted)
	res, _ = m.Reserve(ctx, key, "second", big, budget.Cost{}, t0)
	fmt.Println(res.Admitted, res.Binding, res.Wait)
	res, _ = m.Reserve(ctx, key, "second", big, budget.Cost{}, t0.Add(res.Wait))
	fmt.Println(res.Admitted)
	// Output:
	// true
	// false tokens 40s
	// true
}
