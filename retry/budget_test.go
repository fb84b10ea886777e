package retry_test

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/retry"
)

func TestBudgetZeroValueGrantsNothing(t *testing.T) {
	var b retry.Budget
	b.OnRequest(t0)
	if b.TryRetry(t0) {
		t.Error("the zero Budget granted a retry")
	}
}

func TestBudgetRatio(t *testing.T) {
	b := retry.NewBudget(0.1, 0)
	for range 9 {
		b.OnRequest(t0)
	}
	if b.TryRetry(t0) {
		t.Fatal("retry granted after 9 requests at ratio 0.1")
	}
	b.OnRequest(t0)
	if !b.TryRetry(t0) {
		t.Fatal("retry refused after 10 requests at ratio 0.1")
	}
	if b.TryRetry(t0) {
		t.Fatal("second retry granted after 10 requests at ratio 0.1")
	}
}

func TestBudgetDepositsExpire(t *testing.T) {
	b := retry.NewBudget(0.5, 0)
	for range 4 {
		b.OnRequest(t0)
	}
	if got := b.Available(t0.Add(retry.BudgetWindow - time.Second)); got != 2 {
		t.Fatalf("Available before expiry = %v, want 2", got)
	}
	if b.TryRetry(t0.Add(retry.BudgetWindow)) {
		t.Error("retry granted from deposits older than the window")
	}
	if got := b.Available(t0.Add(time.Hour)); got != 0 {
		t.Errorf("Available much later = %v, want 0", got)
	}
}

func TestBudgetReserve(t *testing.T) {
	b := retry.NewBudget(0, 1) // 10 retries per 10s window without traffic
	granted := 0
	for range 20 {
		if b.TryRetry(t0) {
			granted++
		}
	}
	if granted != 10 {
		t.Fatalf("granted %d retries from the reserve, want 10", granted)
	}
	if b.TryRetry(t0.Add(retry.BudgetWindow - time.Second)) {
		t.Fatal("reserve refilled before the window passed")
	}
	if !b.TryRetry(t0.Add(retry.BudgetWindow)) {
		t.Fatal("reserve not available again after the window")
	}
}

func TestBudgetClockGoingBack(t *testing.T) {
	b := retry.NewBudget(1, 0)
	b.OnRequest(t0.Add(5 * time.Second))
	b.OnRequest(t0) // earlier: counted in the latest second
	if got := b.Available(t0.Add(5 * time.Second)); got != 2 {
		t.Errorf("Available = %v, want 2", got)
	}
	pre1970 := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	c := retry.NewBudget(1, 0)
	c.OnRequest(pre1970)
	if !c.TryRetry(pre1970.Add(time.Second)) {
		t.Error("times before 1970 must work too")
	}
}

func TestNewBudgetArguments(t *testing.T) {
	tests := []struct {
		name         string
		ratio, min   float64
		requests     int
		wantRetries  int
		wantAvailNow float64
	}{
		{"negative", -1, -1, 10, 0, 0},
		{"NaN", math.NaN(), math.NaN(), 10, 0, 0},
		{"ratio 1", 1, 0, 3, 3, 3},
		{"huge ratio is capped", math.Inf(1), 0, 1, 50, 1e6},
		{"reserve only", 0, 0.5, 0, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := retry.NewBudget(tt.ratio, tt.min)
			for range tt.requests {
				b.OnRequest(t0)
			}
			if got := b.Available(t0); got != tt.wantAvailNow {
				t.Errorf("Available = %v, want %v", got, tt.wantAvailNow)
			}
			granted := 0
			for range 50 {
				if b.TryRetry(t0) {
					granted++
				}
			}
			if granted != tt.wantRetries {
				t.Errorf("granted %d, want %d", granted, tt.wantRetries)
			}
		})
	}
}

// TestBudgetLongRun simulates an hour of traffic in which a varying share
// of requests fails and every failure asks for retries, and checks that
// the budget keeps retries within ratio x requests plus the minimum
// allowance, while still granting most of what the ratio allows.
func TestBudgetLongRun(t *testing.T) {
	tests := []struct {
		name         string
		ratio, min   float64
		ratePerSec   int
		failureShare float64
	}{
		{"total outage", 0.1, 0, 20, 1},
		{"total outage with reserve", 0.1, 1, 20, 1},
		{"partial outage", 0.2, 0.5, 50, 0.5},
		{"light traffic", 0.1, 1, 1, 1},
		{"bursty", 0.05, 0.2, 0, 1},
	}
	const run = time.Hour
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 11))
			b := retry.NewBudget(tt.ratio, tt.min)
			requests, retries, wanted := 0, 0, 0
			for now := t0; now.Before(t0.Add(run)); now = now.Add(100 * time.Millisecond) {
				n := tt.ratePerSec / 10
				if tt.ratePerSec%10 > rng.IntN(10) {
					n++
				}
				if tt.ratePerSec == 0 && rng.IntN(600) == 0 {
					n = 1000 // a burst every minute or so
				}
				for range n {
					b.OnRequest(now)
					requests++
					if rng.Float64() >= tt.failureShare {
						continue
					}
					// Retry until the budget refuses (at most 3 times).
					for range 3 {
						wanted++
						if !b.TryRetry(now) {
							break
						}
						retries++
					}
				}
			}
			bound := tt.ratio*float64(requests) + tt.min*(run+retry.BudgetWindow).Seconds()
			if float64(retries) > bound {
				t.Errorf("%d retries for %d requests, above the bound %.0f", retries, requests, bound)
			}
			// The budget is a limit, not a ban: it grants most of what the
			// ratio allows (or everything that was asked for).
			if floor := 0.9 * min(tt.ratio*float64(requests), float64(wanted)); float64(retries) < floor {
				t.Errorf("%d retries for %d requests (%d wanted); the ratio allows about %.0f", retries, requests, wanted, floor/0.9)
			}
			t.Logf("%d requests, %d retries wanted, %d granted, bound %.0f", requests, wanted, retries, bound)
		})
	}
}

func TestBudgetConcurrent(t *testing.T) {
	b := retry.NewBudget(0.25, 0)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				now := t0.Add(time.Duration(i) * time.Millisecond) // all within one window
				b.OnRequest(now)
				if b.TryRetry(now) {
					granted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := granted.Load(); got > 8*1000/4 || got < 8*1000/4-8 {
		t.Errorf("granted %d retries for 8000 requests at ratio 0.25, want about 2000 and never more", got)
	}
}
