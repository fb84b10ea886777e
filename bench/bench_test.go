package bench

import (
	"context"
	"testing"
	"time"
)

func TestTheoreticalMin(t *testing.T) {
	sc := Saturate(10, 6*time.Second, 1)
	sc.Sim.TokensPerSecond = -1 // unpaced: only the budget counts
	var out int64
	for _, r := range sc.Requests {
		out += int64(r.Tokens)
	}
	want := time.Duration(0)
	if out > sc.Sim.Anthropic.OTPM {
		want = time.Duration(float64(out-sc.Sim.Anthropic.OTPM) / float64(sc.Sim.Anthropic.OTPM) * float64(6*time.Second))
	}
	if got := TheoreticalMin(sc); got < want {
		t.Fatalf("TheoreticalMin = %v, below the output budget's %v", got, want)
	}
}

// TestStrategiesComplete runs both strategies on a small backlog: the
// harness must see every streamgate request complete and count what the
// upstream did.
func TestStrategiesComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real streams for seconds")
	}
	sc := Saturate(12, 2*time.Second, 7)
	res, err := Run(context.Background(), sc, Streamgate{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed != len(sc.Requests) || res.TruncatedSuccesses != 0 || res.MidStream != 0 {
		t.Fatalf("streamgate: %+v", res)
	}
	if res.Attempts < 1 || res.UsefulOutput <= 0 {
		t.Fatalf("accounting: %+v", res)
	}
	sdk, err := Run(context.Background(), sc, SDK{})
	if err != nil {
		t.Fatal(err)
	}
	if sdk.Completed+sdk.Failed+sdk.TruncatedSuccesses != len(sc.Requests) {
		t.Fatalf("sdk outcomes do not add up: %+v", sdk)
	}
}
