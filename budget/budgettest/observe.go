package budgettest

import (
	"strconv"
	"testing"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

func testObserveLearns(t *testing.T, h *harness) {
	h.observe(t, keyA, "", snapshot(t0, in, 60000, 30000, 1000))
	v := h.view(t, keyA, t0).Dimensions[in]
	if !v.Known || v.Limit != 60000 {
		t.Fatalf("after Observe: %+v, want limit 60000 known", v)
	}
	h.wantLevel(t, keyA, in, t0, 30000)

	// A limit without a remaining count: full, less the open charges made
	// while the limit was unknown.
	h.admit(t, keyOtherFP, "a", budget.Cost{in: 5000}, budget.Cost{}, t0)
	h.observe(t, keyOtherFP, "", snapshot(t0, in, 60000, -1, 0))
	h.wantLevel(t, keyOtherFP, in, t0, 55000)
}

// setupLevel gives key an input limit of 60,000 and a level of level at t0
// with no open reservation.
func setupLevel(t *testing.T, h *harness, key budget.Key, level int64) {
	t.Helper()
	h.setLimits(t, key, limits(int64(in), 60000))
	if level < 60000 {
		h.admit(t, key, "setup", budget.Cost{in: 60000 - level}, budget.Cost{}, t0)
		h.settle(t, key, "setup", budget.UnknownCost(), t0)
	}
	h.wantLevel(t, key, in, t0, float64(level))
}

// testObserveWorkedExample is the example in the package documentation.
func testObserveWorkedExample(t *testing.T, h *harness) {
	tests := []struct {
		remaining int64
		want      float64
	}{
		{30000, 30000}, // above the band: another consumer
		{52000, 43500}, // below: raised, keeping room for B
		{45000, 40000}, // inside the band
	}
	for _, tt := range tests {
		name := strconv.FormatInt(tt.remaining, 10)
		t.Run(name, func(t *testing.T) {
			key := budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_example", ModelClass: name}
			setupLevel(t, h, key, 53000)
			h.admit(t, key, "A", budget.Cost{in: 5000}, budget.Cost{}, t0)
			h.admit(t, key, "B", budget.Cost{in: 8000}, budget.Cost{}, t0)
			h.wantLevel(t, key, in, t0, 40000)
			h.observe(t, key, "A", snapshot(t0, in, 60000, tt.remaining, 1000))
			h.wantLevel(t, key, in, t0, tt.want)
		})
	}
}

func testObserveBand(t *testing.T, h *harness) {
	tests := []struct {
		name        string
		remaining   int64
		granularity int64
		want        float64
	}{
		{"InsideRoundedBand", 40400, 1000, 40000},
		{"InsideRoundedBandBelow", 39600, 1000, 40000},
		{"ExactCountRaises", 40400, 1, 40399.5},
		{"AboveBandOtherConsumer", 39400, 1000, 39400},
		{"BelowBandRaisedToEdge", 40600, 1000, 40100},
		{"ZeroGranularityMeansExact", 41000, 0, 40999.5},
		{"ExactCountLowers", 39999, 1, 39999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_band", ModelClass: tt.name}
			setupLevel(t, h, key, 40000)
			h.observe(t, key, "", snapshot(t0, in, 60000, tt.remaining, tt.granularity))
			h.wantLevel(t, key, in, t0, tt.want)
		})
	}
}

func testObserveUnseen(t *testing.T, h *harness) {
	setupLevel(t, h, keyA, 40000)
	h.admit(t, keyA, "A", budget.Cost{in: 10000}, budget.Cost{}, t0)
	h.admit(t, keyA, "B", budget.Cost{in: 10000}, budget.Cost{}, t0)
	steps := []struct {
		id   string
		want float64
	}{
		{"", 50000 - 0.5 - 20000},  // A and B unseen
		{"A", 50000 - 0.5 - 10000}, // A's own snapshot includes A
		{"", 50000 - 0.5 - 10000},  // A stays seen
		{"B", 50000 - 0.5},         // nothing unseen
	}
	for _, s := range steps {
		h.observe(t, keyA, s.id, snapshot(t0, in, 60000, 50000, 1))
		h.wantLevel(t, keyA, in, t0, s.want)
	}
	// An ended reservation is not in flight any more.
	setupLevel(t, h, keyOtherFP, 20000)
	h.admit(t, keyOtherFP, "C", budget.Cost{in: 10000}, budget.Cost{}, t0)
	h.cancel(t, keyOtherFP, "C", t0)
	h.observe(t, keyOtherFP, "", snapshot(t0, in, 60000, 50000, 1))
	h.wantLevel(t, keyOtherFP, in, t0, 50000-0.5)
}

func testObserveStale(t *testing.T, h *harness) {
	setupLevel(t, h, keyA, 60000)
	h.observe(t, keyA, "", snapshot(at(10*time.Second), in, 60000, 30000, 1))
	h.wantLevel(t, keyA, in, at(10*time.Second), 30000)
	// An older snapshot still teaches the limit and marks its reservation
	// seen, but leaves the level alone.
	h.admit(t, keyA, "A", budget.Cost{in: 1000}, budget.Cost{}, at(10*time.Second))
	h.observe(t, keyA, "A", snapshot(at(5*time.Second), in, 90000, 10000, 1))
	v := h.view(t, keyA, at(10*time.Second)).Dimensions[in]
	if v.Limit != 90000 || !approx(v.Level, 29000) {
		t.Fatalf("after a stale snapshot: %+v, want limit 90000 level 29000", v)
	}
	// A snapshot as new as the last applied one is applied; A is seen, so
	// the band's floor does not make room for it.
	h.observe(t, keyA, "", snapshot(at(10*time.Second), in, 90000, 50000, 1))
	h.wantLevel(t, keyA, in, at(10*time.Second), 50000-0.5)
}

func testObserveRefillsToAt(t *testing.T, h *harness) {
	// 1,000 tokens a second. Level 30,000 at t0 is 40,000 ten seconds
	// later, above a reported 35,000.
	setupLevel(t, h, keyA, 30000)
	h.observe(t, keyA, "", snapshot(at(10*time.Second), in, 60000, 35000, 1))
	h.wantLevel(t, keyA, in, at(10*time.Second), 35000)
}

func testObserveCarriesForward(t *testing.T, h *harness) {
	// The key has already been refilled to t0+20s (level 20,000) when a
	// snapshot taken at t0+5s arrives: its count is carried forward by
	// 15s of refill before comparing.
	setupLevel(t, h, keyA, 0)
	h.wantLevel(t, keyA, in, at(20*time.Second), 20000)
	h.observe(t, keyA, "", snapshot(at(5*time.Second), in, 60000, 10000, 1))
	h.wantLevel(t, keyA, in, at(20*time.Second), 25000-0.5)
	// Carried forward, a count is capped at the limit.
	h.observe(t, keyA, "", snapshot(at(6*time.Second), in, 60000, 59000, 1))
	h.wantLevel(t, keyA, in, at(20*time.Second), 60000-0.5)
}

func testObserveUnusable(t *testing.T, h *harness) {
	setupLevel(t, h, keyA, 30000)
	tests := []struct {
		name string
		snap ratelimit.Snapshot
	}{
		{"RemainingWithoutLimit", snapshot(t0, out, -1, 500, 1)},
		{"NothingKnown", snapshot(t0, in, -1, -1, 0)},
		{"ZeroTimeTeachesLimitOnly", snapshot(time.Time{}, req, 50, 0, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.observe(t, keyA, "no-such-reservation", tt.snap)
			v := h.view(t, keyA, t0)
			if v.Dimensions[out].Known {
				t.Fatalf("output limit became known: %+v", v.Dimensions[out])
			}
			h.wantLevel(t, keyA, in, t0, 30000)
		})
	}
	h.wantLevel(t, keyA, req, t0, 50)
}
