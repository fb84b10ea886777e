package budget_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

func benchMemory(b *testing.B) *budget.Memory {
	b.Helper()
	m := budget.NewMemory()
	lim := budget.Cost{}
	for d := range lim {
		lim[d] = budget.MaxAmount
	}
	if err := m.SetLimits(context.Background(), key, lim); err != nil {
		b.Fatal(err)
	}
	return m
}

func benchIDs(prefix string) []string {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	return ids
}

var (
	benchCharge = budget.Cost{ratelimit.Requests: 1, ratelimit.InputTokens: 1200, ratelimit.Tokens: 1200}
	benchHold   = budget.Cost{ratelimit.OutputTokens: 4096, ratelimit.Tokens: 4096}
	benchActual = budget.Cost{ratelimit.Requests: 1, ratelimit.InputTokens: 1100, ratelimit.OutputTokens: 700, ratelimit.Tokens: 1800}
)

// BenchmarkMemoryReserveSettle measures one admitted request's store
// operations: Reserve then Settle, on one key.
func BenchmarkMemoryReserveSettle(b *testing.B) {
	m := benchMemory(b)
	ctx := context.Background()
	ids := benchIDs("r")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := ids[i&1023]
		now := t0.Add(time.Duration(i))
		res, err := m.Reserve(ctx, key, id, benchCharge, benchHold, now)
		if err != nil || !res.Admitted {
			b.Fatalf("Reserve: %+v, %v", res, err)
		}
		if err := m.Settle(ctx, key, id, benchActual, now); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMemoryReserveSettleParallel is BenchmarkMemoryReserveSettle from
// GOMAXPROCS goroutines sharing one key.
func BenchmarkMemoryReserveSettleParallel(b *testing.B) {
	m := benchMemory(b)
	ctx := context.Background()
	var workers atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ids := benchIDs("w" + strconv.FormatInt(workers.Add(1), 10) + "-")
		i := 0
		for pb.Next() {
			id := ids[i&1023]
			now := t0.Add(time.Duration(i))
			res, err := m.Reserve(ctx, key, id, benchCharge, benchHold, now)
			if err != nil || !res.Admitted {
				b.Errorf("Reserve: %+v, %v", res, err)
				return
			}
			if err := m.Settle(ctx, key, id, benchActual, now); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
