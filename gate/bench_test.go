package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gate"
)

// BenchmarkAcquireRelease measures the uncontended admission path: a free
// slot, no stagger, a budget check that succeeds.
func BenchmarkAcquireRelease(b *testing.B) {
	g := gate.New(gate.Config{InitialConcurrency: 64, InitialOpenRate: inf, MaxOpenRate: inf})
	ctx := context.Background()
	r := gate.Request{Admit: func(time.Time) (time.Duration, bool) { return 0, true }}
	b.ReportAllocs()
	for b.Loop() {
		t, err := g.Acquire(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		t.Release()
	}
}

// BenchmarkAcquireReleaseParallel measures admission with every P
// acquiring and releasing at once, so some requests queue.
func BenchmarkAcquireReleaseParallel(b *testing.B) {
	g := gate.New(gate.Config{MaxConcurrency: 4, InitialConcurrency: 4, InitialOpenRate: inf, MaxOpenRate: inf})
	r := gate.Request{Admit: func(time.Time) (time.Duration, bool) { return 0, true }}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			t, err := g.Acquire(ctx, r)
			if err != nil {
				b.Error(err)
				return
			}
			t.Release()
		}
	})
}
