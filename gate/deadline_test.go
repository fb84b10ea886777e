package gate_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
)

func TestDeadlineFailFast(t *testing.T) {
	decline := func(wait time.Duration) func(time.Time) (time.Duration, bool) {
		return func(time.Time) (time.Duration, bool) { return wait, false }
	}
	tests := []struct {
		name       string
		cfg        gate.Config
		setup      func(g *gate.Gate, now time.Time)
		admit      func(time.Time) (time.Duration, bool)
		deadline   time.Duration
		wantWait   time.Duration
		wantReason gate.WaitReason
	}{
		{
			name:       "cooldown",
			setup:      func(g *gate.Gate, now time.Time) { g.Cooldown(ratelimit.OutputTokens, now.Add(10*time.Second)) },
			deadline:   5 * time.Second,
			wantWait:   10 * time.Second,
			wantReason: gate.WaitCooldown,
		},
		{
			name:       "backoff",
			setup:      func(g *gate.Gate, now time.Time) { g.Backoff(now.Add(7 * time.Second)) },
			deadline:   5 * time.Second,
			wantWait:   7 * time.Second,
			wantReason: gate.WaitBackoff,
		},
		{
			name:       "budget estimate",
			admit:      decline(30 * time.Second),
			deadline:   5 * time.Second,
			wantWait:   30 * time.Second,
			wantReason: gate.WaitBudget,
		},
		{
			name:       "budget estimate equal to the deadline",
			admit:      decline(5 * time.Second),
			deadline:   5 * time.Second,
			wantWait:   5 * time.Second,
			wantReason: gate.WaitBudget,
		},
		{
			name: "stagger",
			cfg:  gate.Config{InitialConcurrency: 2, InitialOpenRate: 0.1, MinOpenRate: 0.1},
			setup: func(g *gate.Gate, now time.Time) {
				tk, _ := g.Acquire(context.Background(), gate.Request{})
				defer tk.Release()
			},
			deadline:   5 * time.Second,
			wantWait:   10 * time.Second,
			wantReason: gate.WaitStagger,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := gate.New(tt.cfg)
				t0 := time.Now()
				if tt.setup != nil {
					tt.setup(g, t0)
				}
				ctx, cancel := context.WithTimeout(t.Context(), tt.deadline)
				defer cancel()
				_, err := g.Acquire(ctx, gate.Request{Admit: tt.admit})
				var werr *gate.WaitError
				if !errors.As(err, &werr) || !errors.Is(err, gate.ErrDeadline) {
					t.Fatalf("err = %v, want a *WaitError wrapping ErrDeadline", err)
				}
				if werr.Wait != tt.wantWait || werr.Reason != tt.wantReason {
					t.Errorf("WaitError = %+v, want wait %v reason %v", werr, tt.wantWait, tt.wantReason)
				}
				if time.Since(t0) != 0 {
					t.Errorf("failed after %v; it must fail at once", time.Since(t0))
				}
				if s := g.Stats(); s.Queued[gate.Interactive] != 0 {
					t.Errorf("a failed request is still queued: %+v", s)
				}
			})
		})
	}
}

func TestDeadlineWaitThatFits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(gate.Config{})
		t0 := time.Now()
		g.Cooldown(ratelimit.Requests, t0.Add(3*time.Second))
		calls := 0
		admit := func(time.Time) (time.Duration, bool) {
			calls++
			return time.Second, calls > 1
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		tk, err := g.Acquire(ctx, gate.Request{Admit: admit})
		if err != nil {
			t.Fatal(err)
		}
		tk.Release()
		if w := tk.Waited(); w != 4*time.Second {
			t.Errorf("Waited = %v, want 4s (3s cooldown, then a 1s budget estimate)", w)
		}
	})
}

func TestCooldownFailsQueuedWaitersWithShortDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(1))
		holder := mustAcquire(t, g, gate.Request{})
		out := make(chan result, 2)
		short, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		acquire(t.Context(), g, "patient", gate.Request{}, out)
		acquire(short, g, "hurried", gate.Request{}, out)
		noResult(t, out)
		time.Sleep(time.Second)
		g.Cooldown(ratelimit.InputTokens, time.Now().Add(20*time.Second))
		r := <-out
		var werr *gate.WaitError
		if r.name != "hurried" || !errors.As(r.err, &werr) {
			t.Fatalf("got %q %v, want hurried to fail with a *WaitError", r.name, r.err)
		}
		if werr.Wait != 20*time.Second || werr.Dimension != ratelimit.InputTokens {
			t.Errorf("WaitError = %+v, want 20s on input_tokens", werr)
		}
		holder.Release()
		r = <-out
		if r.name != "patient" || r.err != nil {
			t.Fatalf("got %q %v, want patient admitted", r.name, r.err)
		}
		r.t.Release()
	})
}

func TestTinyOpenRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(gate.Config{InitialConcurrency: 2, InitialOpenRate: 1e-300, MinOpenRate: 1e-300})
		mustAcquire(t, g, gate.Request{}).Release()
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		_, err := g.Acquire(ctx, gate.Request{})
		var werr *gate.WaitError
		if !errors.As(err, &werr) || werr.Reason != gate.WaitStagger || werr.Wait < 24*time.Hour {
			t.Fatalf("err = %v, want a stagger WaitError of more than a day", err)
		}
	})
}
