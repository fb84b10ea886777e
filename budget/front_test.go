package budget_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

var (
	t0  = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	key = budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_0123456789ab", ModelClass: "claude-sonnet-4"}
)

// fakeClock is a settable Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func limitsOf(d ratelimit.Dimension, n int64) budget.Cost {
	c := budget.UnknownCost()
	c[d] = n
	return c
}

func newBudget(t *testing.T, opts ...budget.Option) (*budget.Budget, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: t0}
	b := budget.New(budget.NewMemory(opts...), append(opts, budget.WithClock(clock))...)
	lim := budget.UnknownCost()
	lim[ratelimit.Requests], lim[ratelimit.InputTokens], lim[ratelimit.OutputTokens] = 10, 10000, 10000
	if err := b.SetLimits(context.Background(), key, lim); err != nil {
		t.Fatal(err)
	}
	return b, clock
}

func mustView(t *testing.T, b *budget.Budget) budget.View {
	t.Helper()
	v, err := b.View(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReservationEndsOnce(t *testing.T) {
	ends := []struct {
		name string
		end  func(*budget.Reservation) error
	}{
		{"Settle", func(r *budget.Reservation) error {
			return r.Settle(budget.Cost{ratelimit.Requests: 1, ratelimit.OutputTokens: 300})
		}},
		{"Cancel", (*budget.Reservation).Cancel},
	}
	for _, first := range ends {
		t.Run(first.name, func(t *testing.T) {
			b, _ := newBudget(t)
			r, res, err := b.Reserve(context.Background(), key, budget.Cost{ratelimit.Requests: 1}, budget.Cost{ratelimit.OutputTokens: 1000})
			if err != nil || !res.Admitted || r == nil {
				t.Fatalf("Reserve = %v, %+v, %v; want an admitted reservation", r, res, err)
			}
			if b.Open() != 1 {
				t.Fatalf("Open() = %d after Reserve, want 1", b.Open())
			}
			if err := r.Consume(ratelimit.OutputTokens, 300); err != nil {
				t.Fatal(err)
			}
			if err := first.end(r); err != nil {
				t.Fatalf("%s: %v", first.name, err)
			}
			after := mustView(t, b)
			if b.Open() != 0 || after.Open != 0 || after.Dimensions[ratelimit.OutputTokens].Held != 0 {
				t.Fatalf("after %s: Open() %d, view %+v; want nothing open or held", first.name, b.Open(), after)
			}
			for _, again := range ends {
				if err := again.end(r); !errors.Is(err, budget.ErrClosed) {
					t.Errorf("%s after %s: %v, want ErrClosed", again.name, first.name, err)
				}
			}
			if err := r.Consume(ratelimit.OutputTokens, 5); !errors.Is(err, budget.ErrClosed) {
				t.Errorf("Consume after %s: %v, want ErrClosed", first.name, err)
			}
			if v := mustView(t, b); v != after || b.Open() != 0 {
				t.Errorf("calls after the end changed the budget: %+v, was %+v (open %d)", v, after, b.Open())
			}
		})
	}
}

func TestBudgetRefused(t *testing.T) {
	b, _ := newBudget(t)
	ctx := context.Background()
	r, res, err := b.Reserve(ctx, key, budget.Cost{ratelimit.InputTokens: 10000}, budget.Cost{})
	if err != nil || r == nil {
		t.Fatalf("first Reserve: %v, %v", r, err)
	}
	r2, res, err := b.Reserve(ctx, key, budget.Cost{ratelimit.InputTokens: 5000}, budget.Cost{})
	if err != nil || r2 != nil || res.Admitted || res.Wait != 30*time.Second || res.Binding != ratelimit.InputTokens {
		t.Fatalf("second Reserve = %v, %+v, %v; want nil, refused for 30s on input_tokens", r2, res, err)
	}
	if b.Open() != 1 {
		t.Fatalf("Open() = %d, want 1: a refusal opens nothing", b.Open())
	}
	r3, _, err := b.Reserve(ctx, key, budget.Cost{ratelimit.InputTokens: 10001}, budget.Cost{})
	if !errors.Is(err, budget.ErrExceedsLimit) || r3 != nil {
		t.Fatalf("oversized Reserve = %v, %v; want nil, ErrExceedsLimit", r3, err)
	}
	if err := r.Cancel(); err != nil || b.Open() != 0 {
		t.Fatalf("Cancel: %v, Open() %d", err, b.Open())
	}
}

// recordingStore records the times a Budget passes to its store.
type recordingStore struct {
	budget.Store
	mu    sync.Mutex
	times []time.Time
}

func (s *recordingStore) record(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, now)
}

func (s *recordingStore) Reserve(ctx context.Context, k budget.Key, id string, c, h budget.Cost, now time.Time) (budget.Result, error) {
	s.record(now)
	return s.Store.Reserve(ctx, k, id, c, h, now)
}

func (s *recordingStore) Consume(ctx context.Context, k budget.Key, id string, d ratelimit.Dimension, n int64, now time.Time) error {
	s.record(now)
	return s.Store.Consume(ctx, k, id, d, n, now)
}

func (s *recordingStore) Settle(ctx context.Context, k budget.Key, id string, a budget.Cost, now time.Time) error {
	s.record(now)
	return s.Store.Settle(ctx, k, id, a, now)
}

func TestBudgetReadsClock(t *testing.T) {
	clock := &fakeClock{now: t0}
	store := &recordingStore{Store: budget.NewMemory()}
	b := budget.New(store, budget.WithClock(clock))
	r, _, err := b.Reserve(context.Background(), key, budget.Cost{}, budget.Cost{ratelimit.OutputTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	_ = r.Consume(ratelimit.OutputTokens, 1)
	clock.Advance(time.Second)
	_ = r.Settle(budget.UnknownCost())
	want := []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)}
	if len(store.times) != len(want) {
		t.Fatalf("store saw times %v, want %v", store.times, want)
	}
	for i := range want {
		if !store.times[i].Equal(want[i]) {
			t.Fatalf("store saw times %v, want %v", store.times, want)
		}
	}
}

func TestBudgetIDs(t *testing.T) {
	t.Run("DefaultUnique", func(t *testing.T) {
		seen := map[string]bool{}
		store := budget.NewMemory()
		for range 2 {
			b := budget.New(store)
			for range 50 {
				r, _, err := b.Reserve(context.Background(), key, budget.Cost{}, budget.Cost{})
				if err != nil {
					t.Fatal(err)
				}
				if seen[r.ID()] {
					t.Fatalf("id %q generated twice", r.ID())
				}
				seen[r.ID()] = true
			}
		}
	})
	t.Run("Generator", func(t *testing.T) {
		b := budget.New(budget.NewMemory(), budget.WithIDGenerator(func() string { return "fixed" }))
		r, _, err := b.Reserve(context.Background(), key, budget.Cost{}, budget.Cost{})
		if err != nil || r.ID() != "fixed" || r.Key() != key {
			t.Fatalf("Reserve = %v, %v; want id fixed on %v", r, err, key)
		}
		_, _, err = b.Reserve(context.Background(), key, budget.Cost{}, budget.Cost{})
		if !errors.Is(err, budget.ErrDuplicateReservation) {
			t.Fatalf("second Reserve with the same id: %v, want ErrDuplicateReservation", err)
		}
		if b.Open() != 1 {
			t.Fatalf("Open() = %d, want 1", b.Open())
		}
	})
}

func TestReservationConcurrentEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBudget(t)
		r, _, err := b.Reserve(context.Background(), key, budget.Cost{ratelimit.InputTokens: 100}, budget.Cost{ratelimit.OutputTokens: 500})
		if err != nil {
			t.Fatal(err)
		}
		const n = 16
		errs := make(chan error, n)
		for i := range n {
			go func() {
				switch i % 3 {
				case 0:
					errs <- r.Settle(budget.UnknownCost())
				case 1:
					errs <- r.Cancel()
				default:
					_ = r.Consume(ratelimit.OutputTokens, 10)
					errs <- r.Cancel()
				}
			}()
		}
		ok := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				ok++
			case !errors.Is(err, budget.ErrClosed):
				t.Errorf("unexpected error %v", err)
			}
		}
		if ok != 1 || b.Open() != 0 {
			t.Fatalf("%d ends succeeded (open %d), want exactly 1 (open 0)", ok, b.Open())
		}
		if v := mustView(t, b); v.Dimensions[ratelimit.OutputTokens].Held != 0 {
			t.Fatalf("held %d after the end, want 0", v.Dimensions[ratelimit.OutputTokens].Held)
		}
	})
}

func TestReservationEndsDespiteExpiredLease(t *testing.T) {
	b, clock := newBudget(t, budget.WithMaxLease(time.Minute))
	r, _, err := b.Reserve(context.Background(), key, budget.Cost{}, budget.Cost{ratelimit.OutputTokens: 500})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := r.Consume(ratelimit.OutputTokens, 1); !errors.Is(err, budget.ErrUnknownReservation) {
		t.Fatalf("Consume after lease expiry: %v, want ErrUnknownReservation", err)
	}
	if b.Open() != 1 {
		t.Fatalf("Open() = %d before Settle, want 1", b.Open())
	}
	if err := r.Settle(budget.UnknownCost()); !errors.Is(err, budget.ErrUnknownReservation) {
		t.Fatalf("Settle after lease expiry: %v, want ErrUnknownReservation", err)
	}
	if err := r.Cancel(); !errors.Is(err, budget.ErrClosed) || b.Open() != 0 {
		t.Fatalf("Cancel after a failed Settle: %v (open %d), want ErrClosed (open 0)", err, b.Open())
	}
}

func TestReservationObserve(t *testing.T) {
	b, _ := newBudget(t)
	snap := ratelimit.Snapshot{At: t0, RetryAfter: -1}
	for i := range snap.Buckets {
		snap.Buckets[i] = ratelimit.UnknownBucket()
	}
	snap.Buckets[ratelimit.InputTokens] = ratelimit.Bucket{Limit: 20000, Remaining: 15000, Granularity: 1}
	r, _, err := b.Reserve(context.Background(), key, budget.Cost{ratelimit.InputTokens: 1000}, budget.Cost{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Observe(snap); err != nil {
		t.Fatal(err)
	}
	// The reservation's own snapshot includes its charge: nothing is kept
	// back for it when the level is raised to the band's floor.
	if lv := mustView(t, b).Dimensions[ratelimit.InputTokens]; lv.Limit != 20000 || lv.Level != 14999.5 {
		t.Fatalf("after Observe: %+v, want limit 20000 level 14999.5", lv)
	}
	if err := r.Settle(budget.UnknownCost()); err != nil {
		t.Fatal(err)
	}
	// After the end, a snapshot still teaches the key.
	snap.Buckets[ratelimit.InputTokens].Remaining = 5000
	if err := r.Observe(snap); err != nil {
		t.Fatal(err)
	}
	if lv := mustView(t, b).Dimensions[ratelimit.InputTokens].Level; lv != 5000 {
		t.Fatalf("level after a late Observe = %v, want 5000", lv)
	}
}

// TestBudgetRealClock runs a Budget on the real clock inside a synctest
// bubble, where time advances only when every goroutine is blocked.
func TestBudgetRealClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := budget.New(budget.NewMemory(budget.WithWindow(6 * time.Second)))
		ctx := context.Background()
		if err := b.SetLimits(ctx, key, limitsOf(ratelimit.Requests, 3)); err != nil {
			t.Fatal(err)
		}
		one := budget.Cost{ratelimit.Requests: 1}
		var admitted []*budget.Reservation
		start := time.Now()
		for len(admitted) < 5 {
			r, res, err := b.Reserve(ctx, key, one, budget.Cost{})
			if err != nil {
				t.Fatal(err)
			}
			if r == nil {
				time.Sleep(res.Wait)
				continue
			}
			admitted = append(admitted, r)
		}
		// 3 at once, then one per window/limit = 2s.
		if got := time.Since(start); got != 4*time.Second {
			t.Fatalf("5 requests at 3 per 6s took %v, want 4s", got)
		}
		for _, r := range admitted {
			if err := r.Settle(one); err != nil {
				t.Fatal(err)
			}
		}
		if b.Open() != 0 {
			t.Fatalf("Open() = %d, want 0", b.Open())
		}
	})
}
