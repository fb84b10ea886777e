// Package budgettest is the conformance suite for budget.Store
// implementations. A Store's tests call Run with a constructor of fresh,
// empty stores; every Store streamgate ships (the in-process Memory, the
// Redis store) passes it.
//
// The suite drives time explicitly through the now arguments and snapshot
// times; it never sleeps. A store that normally substitutes its own clock
// (a Redis server's TIME) must offer a mode that honours the times passed
// in to run the suite. The stores must use budget.DefaultWindow and
// budget.DefaultMaxLease.
package budgettest

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

// t0 is the suite's epoch: every case measures time from it.
var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

const (
	window = budget.DefaultWindow
	lease  = budget.DefaultMaxLease
)

// Keys used by the suite: keyA and the ones differing from it in one field.
var (
	keyA       = budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_00000000000a", ModelClass: "claude-sonnet-4"}
	keyOtherFP = budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_00000000000b", ModelClass: "claude-sonnet-4"}
	keyOtherMC = budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_00000000000a", ModelClass: "claude-opus-4"}
	keyOtherPr = budget.Key{Provider: ratelimit.OpenAI, Fingerprint: "fp_00000000000a", ModelClass: "claude-sonnet-4"}
)

const (
	req = ratelimit.Requests
	in  = ratelimit.InputTokens
	out = ratelimit.OutputTokens
)

// Run runs the conformance suite. newStore must return a new, empty Store
// each time it is called, using the default window and lease; it may
// register cleanups on t.
func Run(t *testing.T, newStore func(t *testing.T) budget.Store) {
	cases := []struct {
		name string
		run  func(*testing.T, *harness)
	}{
		{"UnknownLimitsDoNotConstrain", testUnknownLimits},
		{"AdmitUntilEmptyThenWait", testAdmitThenWait},
		{"WaitIsTheLongestDimension", testWaitLongest},
		{"ContinuousRefill", testRefill},
		{"RefillIgnoresTimeGoingBack", testRefillMonotone},
		{"ExceedsLimit", testExceedsLimit},
		{"ChargeVersusHold", testChargeVersusHold},
		{"LiveConsume", testConsume},
		{"Settle", testSettle},
		{"Cancel", testCancel},
		{"ReservationIDs", testIDs},
		{"InvalidArguments", testInvalid},
		{"LeaseExpiry", testLease},
		{"LeaseRenewal", testLeaseRenewal},
		{"SetLimits", testSetLimits},
		{"ObserveLearnsLimits", testObserveLearns},
		{"ObserveWorkedExample", testObserveWorkedExample},
		{"ObserveRoundingBand", testObserveBand},
		{"ObserveUnseenCharges", testObserveUnseen},
		{"ObserveStaleSnapshot", testObserveStale},
		{"ObserveRefillsToSnapshotTime", testObserveRefillsToAt},
		{"ObserveCarriesSnapshotForward", testObserveCarriesForward},
		{"ObserveIgnoresUnusableValues", testObserveUnusable},
		{"KeysAreIsolated", testIsolation},
		{"ConcurrentReserveNeverOverAdmits", testConcurrent},
		{"ConcurrentWithRefillNeverOverAdmits", testConcurrentRefill},
		{"LedgerBalances", testLedger},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, &harness{s: newStore(t), ctx: context.Background()})
		})
	}
}

// harness wraps a Store with assertions that fail the test on unexpected
// errors.
type harness struct {
	s   budget.Store
	ctx context.Context
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// limits returns a Cost with the given (dimension, limit) pairs and every
// other dimension unknown.
func limits(pairs ...int64) budget.Cost {
	c := budget.UnknownCost()
	for i := 0; i+1 < len(pairs); i += 2 {
		c[pairs[i]] = pairs[i+1]
	}
	return c
}

func (h *harness) setLimits(t *testing.T, key budget.Key, l budget.Cost) {
	t.Helper()
	if err := h.s.SetLimits(h.ctx, key, l); err != nil {
		t.Fatalf("SetLimits(%v): %v", l, err)
	}
}

func (h *harness) reserve(t *testing.T, key budget.Key, id string, charge, hold budget.Cost, now time.Time) budget.Result {
	t.Helper()
	r, err := h.s.Reserve(h.ctx, key, id, charge, hold, now)
	if err != nil {
		t.Fatalf("Reserve(%q, charge %v, hold %v): %v", id, charge, hold, err)
	}
	return r
}

func (h *harness) admit(t *testing.T, key budget.Key, id string, charge, hold budget.Cost, now time.Time) {
	t.Helper()
	if r := h.reserve(t, key, id, charge, hold, now); !r.Admitted {
		t.Fatalf("Reserve(%q, charge %v, hold %v) = %+v, want admitted", id, charge, hold, r)
	}
}

func (h *harness) refuse(t *testing.T, key budget.Key, id string, charge, hold budget.Cost, now time.Time) budget.Result {
	t.Helper()
	r := h.reserve(t, key, id, charge, hold, now)
	if r.Admitted {
		t.Fatalf("Reserve(%q, charge %v, hold %v) admitted, want refused", id, charge, hold)
	}
	return r
}

func (h *harness) consume(t *testing.T, key budget.Key, id string, d ratelimit.Dimension, n int64, now time.Time) {
	t.Helper()
	if err := h.s.Consume(h.ctx, key, id, d, n, now); err != nil {
		t.Fatalf("Consume(%q, %s, %d): %v", id, d, n, err)
	}
}

func (h *harness) settle(t *testing.T, key budget.Key, id string, actual budget.Cost, now time.Time) {
	t.Helper()
	if err := h.s.Settle(h.ctx, key, id, actual, now); err != nil {
		t.Fatalf("Settle(%q, %v): %v", id, actual, err)
	}
}

func (h *harness) cancel(t *testing.T, key budget.Key, id string, now time.Time) {
	t.Helper()
	if err := h.s.Cancel(h.ctx, key, id, now); err != nil {
		t.Fatalf("Cancel(%q): %v", id, err)
	}
}

func (h *harness) observe(t *testing.T, key budget.Key, id string, snap ratelimit.Snapshot) {
	t.Helper()
	if err := h.s.Observe(h.ctx, key, id, snap); err != nil {
		t.Fatalf("Observe(%q): %v", id, err)
	}
}

func (h *harness) view(t *testing.T, key budget.Key, now time.Time) budget.View {
	t.Helper()
	v, err := h.s.View(h.ctx, key, now)
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return v
}

// wantLevel checks dimension d's level at now.
func (h *harness) wantLevel(t *testing.T, key budget.Key, d ratelimit.Dimension, now time.Time, want float64) {
	t.Helper()
	dv := h.view(t, key, now).Dimensions[d]
	if !dv.Known {
		t.Fatalf("%s at %v: limit unknown, want level %v", d, now.Sub(t0), want)
	}
	if !approx(dv.Level, want) {
		t.Fatalf("%s level at %v = %v, want %v", d, now.Sub(t0), dv.Level, want)
	}
}

// wantHeld checks dimension d's held amount and the open reservation count
// at now.
func (h *harness) wantHeld(t *testing.T, key budget.Key, d ratelimit.Dimension, now time.Time, held int64, open int) {
	t.Helper()
	v := h.view(t, key, now)
	if v.Dimensions[d].Held != held || v.Open != open {
		t.Fatalf("%s at %v: held %d with %d open, want held %d with %d open",
			d, now.Sub(t0), v.Dimensions[d].Held, v.Open, held, open)
	}
}

func approx(got, want float64) bool {
	return math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want))
}

// wantErr fails unless err matches target under errors.Is.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// snapshot returns a Snapshot taken at now reporting one bucket.
func snapshot(now time.Time, d ratelimit.Dimension, limit, remaining, granularity int64) ratelimit.Snapshot {
	s := ratelimit.Snapshot{At: now, Provider: ratelimit.Anthropic, RetryAfter: -1}
	for i := range s.Buckets {
		s.Buckets[i] = ratelimit.UnknownBucket()
	}
	s.Buckets[d] = ratelimit.Bucket{Limit: limit, Remaining: remaining, Granularity: granularity}
	return s
}

// rate is dimension refill per second for a limit under the default window.
func perSecond(limit int64) float64 { return float64(limit) * float64(time.Second) / float64(window) }
