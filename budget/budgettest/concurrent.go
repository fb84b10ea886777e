package budgettest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

// tally adds up what concurrent workers were admitted and used.
type tally struct {
	requests, input, output atomic.Int64
}

// hammer runs workers goroutines making attempts reservations each against
// key: one request, a pseudo-random input charge of 1..300 and an output
// hold of 100, of which 0..99 is consumed before settling with the actual
// amounts. nowOf gives each call's time.
func hammer(t *testing.T, h *harness, key budget.Key, workers, attempts int, nowOf func() time.Time) *tally {
	t.Helper()
	var (
		sum  tally
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range attempts {
				id := fmt.Sprintf("w%d-%d", w, i)
				charge := budget.Cost{req: 1, in: 1 + rng.Int64N(300)}
				r, err := h.s.Reserve(h.ctx, key, id, charge, budget.Cost{out: 100}, nowOf())
				if err != nil {
					errs <- fmt.Errorf("Reserve(%s): %w", id, err)
					return
				}
				if !r.Admitted {
					continue
				}
				n := rng.Int64N(100)
				if err := h.s.Consume(h.ctx, key, id, out, n, nowOf()); err != nil {
					errs <- fmt.Errorf("Consume(%s): %w", id, err)
					return
				}
				actual := budget.Cost{req: 1, in: charge[in], out: n}
				if err := h.s.Settle(h.ctx, key, id, actual, nowOf()); err != nil {
					errs <- fmt.Errorf("Settle(%s): %w", id, err)
					return
				}
				sum.requests.Add(1)
				sum.input.Add(charge[in])
				sum.output.Add(n)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if sum.requests.Load() == 0 {
		t.Fatal("no reservation was admitted")
	}
	return &sum
}

func testConcurrent(t *testing.T, h *harness) {
	const reqLimit, inLimit, outLimit = 50, 10000, 1000
	h.setLimits(t, keyA, limits(int64(req), reqLimit, int64(in), inLimit, int64(out), outLimit))
	sum := hammer(t, h, keyA, 8, 200, func() time.Time { return t0 })
	if n := sum.requests.Load(); n > reqLimit {
		t.Errorf("admitted %d requests, limit %d", n, reqLimit)
	}
	if n := sum.input.Load(); n > inLimit {
		t.Errorf("admitted %d input tokens, limit %d", n, inLimit)
	}
	if n := sum.output.Load(); n > outLimit {
		t.Errorf("produced %d output tokens, limit %d", n, outLimit)
	}
	// The ledger balances: the levels are the limits less exactly what was
	// used, and nothing is held.
	h.wantLevel(t, keyA, req, t0, float64(reqLimit-sum.requests.Load()))
	h.wantLevel(t, keyA, in, t0, float64(inLimit-sum.input.Load()))
	h.wantLevel(t, keyA, out, t0, float64(outLimit-sum.output.Load()))
	h.wantHeld(t, keyA, out, t0, 0, 0)
}

func testConcurrentRefill(t *testing.T, h *harness) {
	const reqLimit, inLimit = 20, 3000
	const step = 10 * time.Millisecond
	h.setLimits(t, keyA, limits(int64(req), reqLimit, int64(in), inLimit))
	var ticks atomic.Int64
	sum := hammer(t, h, keyA, 8, 200, func() time.Time {
		return t0.Add(time.Duration(ticks.Add(1)) * step)
	})
	elapsed := (time.Duration(ticks.Load()) * step).Seconds()
	if n, most := float64(sum.requests.Load()), reqLimit+perSecond(reqLimit)*elapsed; n > most {
		t.Errorf("admitted %v requests in %vs, at most %v fit", n, elapsed, most)
	}
	if n, most := float64(sum.input.Load()), inLimit+perSecond(inLimit)*elapsed; n > most {
		t.Errorf("admitted %v input tokens in %vs, at most %v fit", n, elapsed, most)
	}
	h.wantHeld(t, keyA, out, t0.Add(time.Duration(ticks.Load())*step), 0, 0)
}

// testLedger runs a long pseudo-random mix of operations on three keys,
// checking after each that no level exceeds its limit and that held equals
// the sum of the open reservations' remaining holds, then ends every
// reservation and checks that nothing is held or open.
func testLedger(t *testing.T, h *harness) {
	keys := []budget.Key{keyA, keyOtherFP, keyOtherMC}
	for _, k := range keys {
		h.setLimits(t, k, limits(int64(req), 50, int64(in), 20000, int64(out), 8000, int64(ratelimit.Tokens), 30000))
	}
	type open struct {
		key  budget.Key
		id   string
		hold budget.Cost
	}
	var (
		rng     = rand.New(rand.NewPCG(7, 11))
		now     = t0
		opens   []open
		nextID  int
		amount  = func(n int64) int64 { return rng.Int64N(n) }
		pickIdx = func() int { return rng.IntN(len(opens)) }
	)
	check := func(step int) {
		t.Helper()
		var held [3][ratelimit.NumDimensions]int64
		counts := [3]int{}
		for _, o := range opens {
			ki := indexOf(keys, o.key)
			counts[ki]++
			for d := range o.hold {
				held[ki][d] += o.hold[d]
			}
		}
		for ki, k := range keys {
			v := h.view(t, k, now)
			if v.Open != counts[ki] {
				t.Fatalf("step %d, %v: %d open, want %d", step, k, v.Open, counts[ki])
			}
			for d, dv := range v.Dimensions {
				if dv.Known && dv.Level > float64(dv.Limit) {
					t.Fatalf("step %d, %v %s: level %v above limit %d", step, k, ratelimit.Dimension(d), dv.Level, dv.Limit)
				}
				if dv.Held != held[ki][d] {
					t.Fatalf("step %d, %v %s: held %d, want %d", step, k, ratelimit.Dimension(d), dv.Held, held[ki][d])
				}
			}
		}
	}
	for step := range 1500 {
		now = now.Add(time.Duration(rng.Int64N(int64(200 * time.Millisecond))))
		switch op := rng.IntN(10); {
		case op < 4 || len(opens) == 0:
			k := keys[rng.IntN(len(keys))]
			id := fmt.Sprintf("r%d", nextID)
			nextID++
			inTok := amount(3000)
			charge := budget.Cost{req: 1, in: inTok, ratelimit.Tokens: inTok}
			hold := budget.Cost{out: amount(2000)}
			hold[ratelimit.Tokens] = hold[out]
			r, err := h.s.Reserve(h.ctx, k, id, charge, hold, now)
			if err != nil {
				t.Fatalf("step %d: Reserve: %v", step, err)
			}
			if r.Admitted {
				opens = append(opens, open{k, id, hold})
			}
		case op < 6:
			o := &opens[pickIdx()]
			n := amount(1500)
			h.consume(t, o.key, o.id, out, n, now)
			o.hold[out] -= min(n, o.hold[out])
		case op < 8:
			i := pickIdx()
			o := opens[i]
			if rng.IntN(2) == 0 {
				actual := budget.Cost{req: 1, in: amount(3000), out: amount(3000), ratelimit.Tokens: -1}
				h.settle(t, o.key, o.id, actual, now)
			} else {
				h.cancel(t, o.key, o.id, now)
			}
			opens = append(opens[:i], opens[i+1:]...)
		default:
			o := opens[pickIdx()]
			snap := snapshot(now, in, 20000, amount(20001), []int64{1, 1000}[rng.IntN(2)])
			snap.Buckets[out] = ratelimit.Bucket{Limit: 8000, Remaining: amount(8001), Granularity: 1000}
			h.observe(t, o.key, o.id, snap)
		}
		check(step)
	}
	for _, o := range opens {
		h.cancel(t, o.key, o.id, now)
	}
	opens = nil
	check(-1)
}

func indexOf(keys []budget.Key, k budget.Key) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}
