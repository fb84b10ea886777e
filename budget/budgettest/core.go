package budgettest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

func testUnknownLimits(t *testing.T, h *harness) {
	huge := budget.Cost{req: budget.MaxAmount, in: budget.MaxAmount}
	h.admit(t, keyA, "a", huge, budget.Cost{out: budget.MaxAmount}, t0)
	h.admit(t, keyA, "b", huge, budget.Cost{out: budget.MaxAmount}, t0)
	v := h.view(t, keyA, t0)
	for d, dv := range v.Dimensions {
		if dv.Known || dv.Limit != -1 {
			t.Errorf("%s: Known %v Limit %d, want unknown (-1)", ratelimit.Dimension(d), dv.Known, dv.Limit)
		}
	}
	h.wantHeld(t, keyA, out, t0, 2*budget.MaxAmount, 2)
	h.settle(t, keyA, "a", budget.UnknownCost(), t0)
	h.cancel(t, keyA, "b", t0)
	h.wantHeld(t, keyA, out, t0, 0, 0)
}

func testAdmitThenWait(t *testing.T, h *harness) {
	const limit = 10
	h.setLimits(t, keyA, limits(int64(req), limit))
	one := budget.Cost{req: 1}
	for i := range limit {
		h.admit(t, keyA, string(rune('a'+i)), one, budget.Cost{}, t0)
	}
	r := h.refuse(t, keyA, "x", one, budget.Cost{}, t0)
	// One request refills in window/limit.
	if want := window / limit; r.Wait != want || r.Binding != req || r.InFlight {
		t.Fatalf("refused: %+v, want Wait %v Binding %s InFlight false", r, want, req)
	}
	h.refuse(t, keyA, "x", one, budget.Cost{}, t0.Add(r.Wait-time.Nanosecond))
	h.admit(t, keyA, "x", one, budget.Cost{}, t0.Add(r.Wait))
	// Two more take twice as long from the new empty state.
	r2 := h.refuse(t, keyA, "y", budget.Cost{req: 2}, budget.Cost{}, t0.Add(r.Wait))
	if want := 2 * window / limit; r2.Wait != want {
		t.Fatalf("refused for 2: Wait %v, want %v", r2.Wait, want)
	}
}

func testWaitLongest(t *testing.T, h *harness) {
	h.setLimits(t, keyA, limits(int64(req), 6, int64(in), 6000))
	h.admit(t, keyA, "a", budget.Cost{req: 5, in: 6000}, budget.Cost{}, t0)
	tests := []struct {
		name    string
		charge  budget.Cost
		wait    time.Duration
		binding ratelimit.Dimension
	}{
		{"InputOnly", budget.Cost{req: 1, in: 3000}, 30 * time.Second, in},
		{"RequestsLonger", budget.Cost{req: 3, in: 1000}, 20 * time.Second, req},
		{"InputLonger", budget.Cost{req: 3, in: 3000}, 30 * time.Second, in},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.refuse(t, keyA, "b", tt.charge, budget.Cost{}, t0)
			if r.Wait != tt.wait || r.Binding != tt.binding || r.InFlight {
				t.Fatalf("got %+v, want Wait %v Binding %s", r, tt.wait, tt.binding)
			}
		})
	}
	h.wantLevel(t, keyA, req, t0, 1)
	h.wantLevel(t, keyA, in, t0, 0)
}

func testRefill(t *testing.T, h *harness) {
	const limit = 600
	h.setLimits(t, keyA, limits(int64(in), limit))
	h.admit(t, keyA, "a", budget.Cost{in: limit}, budget.Cost{}, t0)
	for _, s := range []int{0, 1, 10, 30, 59, 60, 61, 3600} {
		want := min(limit, perSecond(limit)*float64(s))
		h.wantLevel(t, keyA, in, at(time.Duration(s)*time.Second), want)
	}
}

func testRefillMonotone(t *testing.T, h *harness) {
	const limit = 600
	h.setLimits(t, keyA, limits(int64(in), limit))
	h.admit(t, keyA, "a", budget.Cost{in: limit}, budget.Cost{}, t0)
	h.wantLevel(t, keyA, in, at(30*time.Second), 300)
	// An operation stamped earlier than the key's latest time neither
	// refills nor un-refills.
	h.admit(t, keyA, "b", budget.Cost{in: 100}, budget.Cost{}, at(10*time.Second))
	h.wantLevel(t, keyA, in, at(30*time.Second), 200)
	h.wantLevel(t, keyA, in, at(5*time.Second), 200)
	h.wantLevel(t, keyA, in, at(40*time.Second), 300)
}

func testExceedsLimit(t *testing.T, h *harness) {
	h.setLimits(t, keyA, limits(int64(in), 1000, int64(out), 1000, int64(req), 0))
	tests := []struct {
		name         string
		charge, hold budget.Cost
		dim          ratelimit.Dimension
		need         int64
	}{
		{"Hold", budget.Cost{}, budget.Cost{out: 1001}, out, 1001},
		{"ChargePlusHold", budget.Cost{in: 600}, budget.Cost{in: 600}, in, 1200},
		{"ZeroLimit", budget.Cost{req: 1}, budget.Cost{}, req, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.s.Reserve(h.ctx, keyA, "a", tt.charge, tt.hold, t0)
			wantErr(t, "Reserve", err, budget.ErrExceedsLimit)
			var le *budget.LimitError
			if !errors.As(err, &le) || le.Dimension != tt.dim || le.Need != tt.need {
				t.Fatalf("error %#v, want *LimitError for %s needing %d", err, tt.dim, tt.need)
			}
			h.wantLevel(t, keyA, tt.dim, t0, float64(le.Limit))
			h.wantHeld(t, keyA, tt.dim, t0, 0, 0)
		})
	}
	// Exactly the limit fits, and a zero cost fits a zero limit.
	h.admit(t, keyA, "b", budget.Cost{in: 400}, budget.Cost{in: 600, out: 1000}, t0)
}

func testChargeVersusHold(t *testing.T, h *harness) {
	const limit = 1000
	h.setLimits(t, keyA, limits(int64(in), limit, int64(out), limit))
	h.admit(t, keyA, "a", budget.Cost{in: 400}, budget.Cost{out: 600}, t0)
	h.wantLevel(t, keyA, in, t0, 600)
	h.wantLevel(t, keyA, out, t0, limit) // a hold is not charged
	h.wantHeld(t, keyA, out, t0, 600, 1)

	r := h.refuse(t, keyA, "b", budget.Cost{}, budget.Cost{out: 600}, t0)
	if !r.InFlight || r.Binding != out || r.Wait != 0 {
		t.Fatalf("blocked by holds on a full bucket: %+v, want InFlight, Binding %s, Wait 0", r, out)
	}
	h.admit(t, keyA, "c", budget.Cost{}, budget.Cost{out: 400}, t0)
	r = h.refuse(t, keyA, "d", budget.Cost{}, budget.Cost{out: 1}, t0)
	if !r.InFlight {
		t.Fatalf("bucket full and fully held: %+v, want InFlight", r)
	}
	// Once a's output is produced, refill (not a release) makes room.
	h.consume(t, keyA, "a", out, 600, t0)
	h.wantLevel(t, keyA, out, t0, 400)
	h.wantHeld(t, keyA, out, t0, 400, 2)
	r = h.refuse(t, keyA, "e", budget.Cost{}, budget.Cost{out: 100}, t0)
	if r.InFlight || r.Binding != out || r.Wait != window/10 {
		t.Fatalf("after consume: %+v, want Wait %v, not InFlight", r, window/10)
	}
	h.admit(t, keyA, "e", budget.Cost{}, budget.Cost{out: 100}, t0.Add(r.Wait))
}

func testConsume(t *testing.T, h *harness) {
	const limit = 6000
	h.setLimits(t, keyA, limits(int64(out), limit))
	h.admit(t, keyA, "a", budget.Cost{}, budget.Cost{out: 1000}, t0)
	h.consume(t, keyA, "a", out, 300, t0)
	h.wantLevel(t, keyA, out, t0, limit-300)
	h.wantHeld(t, keyA, out, t0, 700, 1)
	// Production beyond the hold is charged all the same.
	h.consume(t, keyA, "a", out, 1000, t0)
	h.wantLevel(t, keyA, out, t0, limit-1300)
	h.wantHeld(t, keyA, out, t0, 0, 1)
	h.consume(t, keyA, "a", out, 0, t0)
	// Settling with what was consumed changes no level.
	h.settle(t, keyA, "a", budget.Cost{out: 1300}, t0)
	h.wantLevel(t, keyA, out, t0, limit-1300)
	h.wantHeld(t, keyA, out, t0, 0, 0)
	wantErr(t, "Consume after Settle", h.s.Consume(h.ctx, keyA, "a", out, 1, t0), budget.ErrUnknownReservation)
	wantErr(t, "Consume of an unknown key", h.s.Consume(h.ctx, keyOtherFP, "a", out, 1, t0), budget.ErrUnknownReservation)
}

func testSettle(t *testing.T, h *harness) {
	const limit = 10000
	tests := []struct {
		name     string
		d        ratelimit.Dimension
		charge   int64
		hold     int64
		consumed int64
		actual   int64
		when     time.Duration
		want     float64
	}{
		{"Refund", in, 1000, 0, 0, 400, 0, limit - 400},
		{"ExtraCharge", in, 1000, 0, 0, 1500, 0, limit - 1500},
		{"UnknownActualKeepsCharge", in, 1000, 0, 0, -1, 0, limit - 1000},
		{"OutputAboveConsumed", out, 0, 1000, 300, 500, 0, limit - 500},
		{"OutputBelowConsumed", out, 0, 1000, 300, 100, 0, limit - 100},
		{"UnknownActualKeepsConsumed", out, 0, 1000, 300, -1, 0, limit - 300},
		{"RefundCappedAtLimit", in, 1000, 0, 0, 0, window, limit},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_settle", ModelClass: string(rune('a' + i))}
			h.setLimits(t, key, limits(int64(tt.d), limit))
			var charge, hold budget.Cost
			charge[tt.d], hold[tt.d] = tt.charge, tt.hold
			h.admit(t, key, "a", charge, hold, t0)
			if tt.consumed > 0 {
				h.consume(t, key, "a", tt.d, tt.consumed, t0)
			}
			actual := budget.UnknownCost()
			actual[tt.d] = tt.actual
			h.settle(t, key, "a", actual, at(tt.when))
			h.wantLevel(t, key, tt.d, at(tt.when), tt.want)
			h.wantHeld(t, key, tt.d, at(tt.when), 0, 0)
			wantErr(t, "second Settle", h.s.Settle(h.ctx, key, "a", actual, at(tt.when)), budget.ErrUnknownReservation)
		})
	}
}

func testCancel(t *testing.T, h *harness) {
	const limit = 10000
	h.setLimits(t, keyA, limits(int64(req), 10, int64(in), limit, int64(out), limit))
	h.admit(t, keyA, "a", budget.Cost{req: 1, in: 1000}, budget.Cost{out: 1000}, t0)
	h.consume(t, keyA, "a", out, 200, t0)
	h.cancel(t, keyA, "a", t0)
	h.wantLevel(t, keyA, req, t0, 10)
	h.wantLevel(t, keyA, in, t0, limit)
	h.wantLevel(t, keyA, out, t0, limit-200) // produced tokens stay charged
	h.wantHeld(t, keyA, out, t0, 0, 0)
	wantErr(t, "second Cancel", h.s.Cancel(h.ctx, keyA, "a", t0), budget.ErrUnknownReservation)
	wantErr(t, "Settle after Cancel", h.s.Settle(h.ctx, keyA, "a", budget.Cost{}, t0), budget.ErrUnknownReservation)
	wantErr(t, "Cancel of a never-made id", h.s.Cancel(h.ctx, keyA, "nope", t0), budget.ErrUnknownReservation)
	wantErr(t, "Cancel on an unknown key", h.s.Cancel(h.ctx, keyOtherMC, "a", t0), budget.ErrUnknownReservation)
}

func testIDs(t *testing.T, h *harness) {
	h.setLimits(t, keyA, limits(int64(in), 1000))
	h.admit(t, keyA, "a", budget.Cost{in: 100}, budget.Cost{}, t0)
	_, err := h.s.Reserve(h.ctx, keyA, "a", budget.Cost{in: 100}, budget.Cost{out: 5}, t0)
	wantErr(t, "duplicate Reserve", err, budget.ErrDuplicateReservation)
	h.wantLevel(t, keyA, in, t0, 900)
	h.wantHeld(t, keyA, out, t0, 0, 1)
	// Ids are per key, and reusable once ended.
	h.admit(t, keyOtherFP, "a", budget.Cost{in: 100}, budget.Cost{}, t0)
	h.settle(t, keyA, "a", budget.UnknownCost(), t0)
	h.admit(t, keyA, "a", budget.Cost{in: 100}, budget.Cost{}, t0)
	h.wantLevel(t, keyA, in, t0, 800)
}

func testInvalid(t *testing.T, h *harness) {
	h.setLimits(t, keyA, limits(int64(in), 1000))
	h.admit(t, keyA, "a", budget.Cost{}, budget.Cost{out: 10}, t0)
	tests := []struct {
		name string
		err  error
	}{
		{"EmptyID", func() error {
			_, err := h.s.Reserve(h.ctx, keyA, "", budget.Cost{}, budget.Cost{}, t0)
			return err
		}()},
		{"NegativeCharge", func() error {
			_, err := h.s.Reserve(h.ctx, keyA, "b", budget.Cost{in: -1}, budget.Cost{}, t0)
			return err
		}()},
		{"NegativeHold", func() error {
			_, err := h.s.Reserve(h.ctx, keyA, "b", budget.Cost{}, budget.Cost{out: -5}, t0)
			return err
		}()},
		{"HugeCharge", func() error {
			_, err := h.s.Reserve(h.ctx, keyA, "b", budget.Cost{req: budget.MaxAmount + 1}, budget.Cost{}, t0)
			return err
		}()},
		{"NegativeConsume", h.s.Consume(h.ctx, keyA, "a", out, -1, t0)},
		{"BadDimension", h.s.Consume(h.ctx, keyA, "a", ratelimit.Dimension(ratelimit.NumDimensions), 1, t0)},
		{"SettleBelowUnknown", h.s.Settle(h.ctx, keyA, "a", budget.Cost{out: -2}, t0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.err, budget.ErrInvalid) })
	}
	h.wantLevel(t, keyA, in, t0, 1000)
	h.wantHeld(t, keyA, out, t0, 10, 1)
}

func testLease(t *testing.T, h *harness) {
	const limit = 1000
	h.setLimits(t, keyA, limits(int64(in), limit, int64(out), limit))
	h.admit(t, keyA, "a", budget.Cost{}, budget.Cost{out: 300}, t0)
	h.admit(t, keyA, "b", budget.Cost{}, budget.Cost{out: 700}, at(time.Second))
	h.wantHeld(t, keyA, out, at(lease-time.Nanosecond), 1000, 2)
	h.wantHeld(t, keyA, out, at(lease), 700, 1)
	wantErr(t, "Settle after expiry", h.s.Settle(h.ctx, keyA, "a", budget.Cost{}, at(lease)), budget.ErrUnknownReservation)
	h.wantHeld(t, keyA, out, at(lease+time.Second), 0, 0)
	wantErr(t, "Cancel after expiry", h.s.Cancel(h.ctx, keyA, "b", at(lease+time.Second)), budget.ErrUnknownReservation)

	// An expired reservation's consumed tokens stay charged: only time
	// refills the debt.
	start := at(lease + time.Second)
	h.admit(t, keyA, "c", budget.Cost{in: 600}, budget.Cost{out: 100}, start)
	h.consume(t, keyA, "c", out, 20000, start)
	end := start.Add(lease)
	h.wantHeld(t, keyA, out, end, 0, 0)
	h.wantLevel(t, keyA, out, end, limit-20000+perSecond(limit)*lease.Seconds())
}

func testLeaseRenewal(t *testing.T, h *harness) {
	h.setLimits(t, keyA, limits(int64(in), 1000, int64(out), 1000))
	h.admit(t, keyA, "consumed", budget.Cost{}, budget.Cost{out: 100}, t0)
	h.admit(t, keyA, "observed", budget.Cost{}, budget.Cost{out: 200}, t0)
	h.consume(t, keyA, "consumed", out, 1, at(5*time.Minute))
	h.observe(t, keyA, "observed", snapshot(at(8*time.Minute), in, 1000, 1000, 1))
	h.wantHeld(t, keyA, out, at(5*time.Minute+lease-time.Nanosecond), 299, 2)
	h.wantHeld(t, keyA, out, at(5*time.Minute+lease), 200, 1)
	h.wantHeld(t, keyA, out, at(8*time.Minute+lease), 0, 0)
}

func testSetLimits(t *testing.T, h *harness) {
	h.setLimits(t, keyA, limits(int64(in), 1000, int64(out), 2000))
	h.admit(t, keyA, "a", budget.Cost{in: 600}, budget.Cost{}, t0)
	h.refuse(t, keyA, "b", budget.Cost{in: 600}, budget.Cost{}, t0)
	// Lowering a configured limit caps the level.
	h.setLimits(t, keyA, limits(int64(in), 300, int64(out), 2000))
	h.wantLevel(t, keyA, in, t0, 300)
	// -1 makes a dimension unknown again: it stops constraining.
	h.setLimits(t, keyA, limits(int64(out), 2000))
	if v := h.view(t, keyA, t0); v.Dimensions[in].Known {
		t.Fatalf("input limit still known after SetLimits(-1): %+v", v.Dimensions[in])
	}
	h.admit(t, keyA, "b", budget.Cost{in: 600}, budget.Cost{}, t0)
	// A dimension becoming known starts full less the open reservations'
	// charges.
	h.setLimits(t, keyA, limits(int64(in), 5000, int64(out), 2000))
	h.wantLevel(t, keyA, in, t0, 5000-600-600)
	// A limit learned from headers outranks configuration.
	h.observe(t, keyA, "", snapshot(t0, out, 4000, 4000, 1))
	h.setLimits(t, keyA, limits(int64(in), 5000, int64(out), 100))
	if l := h.view(t, keyA, t0).Dimensions[out].Limit; l != 4000 {
		t.Fatalf("learned output limit after SetLimits = %d, want 4000", l)
	}
}

func testIsolation(t *testing.T, h *harness) {
	keys := []budget.Key{keyA, keyOtherFP, keyOtherMC, keyOtherPr}
	for _, k := range keys {
		h.setLimits(t, k, limits(int64(req), 5))
	}
	h.admit(t, keyA, "a", budget.Cost{req: 5}, budget.Cost{out: 10}, t0)
	h.refuse(t, keyA, "b", budget.Cost{req: 1}, budget.Cost{}, t0)
	for _, k := range keys[1:] {
		h.wantLevel(t, k, req, t0, 5)
		h.wantHeld(t, k, out, t0, 0, 0)
		h.admit(t, k, "b", budget.Cost{req: 1}, budget.Cost{}, t0)
	}
	got, err := h.s.Keys(h.ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	want := slices.Clone(keys)
	slices.SortFunc(want, func(a, b budget.Key) int {
		switch {
		case a.String() < b.String():
			return -1
		case a.String() > b.String():
			return 1
		}
		return 0
	})
	if !slices.Equal(got, want) {
		t.Fatalf("Keys() = %v, want %v", got, want)
	}
}
