package sim

import (
	"errors"
	"testing"
	"time"
)

func TestParseFaultSpec(t *testing.T) {
	tests := []struct {
		in   string
		want FaultSpec
		err  bool
	}{
		{in: "529", want: FaultSpec{Name: "529", At: -1, Times: 1}},
		{in: "drop-midstream;at=12;cut=7", want: FaultSpec{Name: FaultDropMidstream, At: 12, Cut: 7, Times: 1}},
		{in: " stall-midstream ; AT=3 ; times=2 ; id=job-9 ", want: FaultSpec{Name: FaultStallMidstream, At: 3, Times: 2, ID: "job-9"}},
		{in: "slow-first-token;delay=1.5s", want: FaultSpec{Name: FaultSlowFirstToken, At: -1, Times: 1, Delay: 1500 * time.Millisecond}},
		{in: "slow-first-token;delay=2", want: FaultSpec{Name: FaultSlowFirstToken, At: -1, Times: 1, Delay: 2 * time.Second}},
		{in: "429;retry=3", want: FaultSpec{Name: Fault429, At: -1, Times: 1, Retry: 3 * time.Second}},
		{in: "529;at=-1;times=0;cut=x;bogus=1;noequals", want: FaultSpec{Name: Fault529, At: -1, Times: 1}},
		{in: "", err: true},
		{in: "530", err: true},
		{in: "drop-mid-stream", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFaultSpec(tt.in)
			if tt.err {
				if !errors.Is(err, ErrUnknownFault) {
					t.Fatalf("err = %v, want ErrUnknownFault", err)
				}
				return
			}
			got.raw = ""
			if err != nil || got != tt.want {
				t.Fatalf("ParseFaultSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseFaultRates(t *testing.T) {
	got, err := ParseFaultRates("529=0.1, drop-midstream=0.05,")
	if err != nil || len(got) != 2 || got[Fault529] != 0.1 || got[FaultDropMidstream] != 0.05 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"529", "nope=0.1", "529=2", "529=-0.1", "529=x"} {
		if _, err := ParseFaultRates(bad); err == nil {
			t.Errorf("ParseFaultRates(%q) accepted", bad)
		}
	}
}

func FuzzParseFaultSpec(f *testing.F) {
	for _, s := range []string{"529", "drop-midstream;at=3;cut=2", "429;retry=1.5", "stall-midstream;times=2;id=x", ";;=", "reset;delay=1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseFaultSpec(s)
		if err != nil {
			return
		}
		if !knownFault(spec.Name) || spec.Times < 1 || spec.At < -1 || spec.Cut < 0 || spec.Delay < 0 || spec.Retry < 0 {
			t.Fatalf("ParseFaultSpec(%q) = %+v violates invariants", s, spec)
		}
		// Rendering and parsing again keeps every parameter.
		again, err := ParseFaultSpec(spec.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", spec.String(), err)
		}
		again.raw, spec.raw = "", ""
		if again != spec {
			t.Fatalf("round trip %q -> %q: %+v != %+v", s, spec.String(), again, spec)
		}
	})
}
