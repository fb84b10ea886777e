package gate_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var inf = math.Inf(1)

// unpaced is a Config without staggering, for tests about order.
func unpaced(concurrency int) gate.Config {
	return gate.Config{InitialConcurrency: concurrency, InitialOpenRate: inf, MaxOpenRate: inf}
}

type result struct {
	name string
	t    *gate.Ticket
	err  error
	at   time.Time
}

// acquire starts an Acquire on its own goroutine and reports on out.
func acquire(ctx context.Context, g *gate.Gate, name string, r gate.Request, out chan<- result) {
	go func() {
		t, err := g.Acquire(ctx, r)
		out <- result{name: name, t: t, err: err, at: time.Now()}
	}()
}

// mustAcquire acquires without waiting or fails the test.
func mustAcquire(t *testing.T, g *gate.Gate, r gate.Request) *gate.Ticket {
	t.Helper()
	tk, err := g.Acquire(t.Context(), r)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return tk
}

// noResult fails if out has a result ready once everything is blocked.
func noResult(t *testing.T, out <-chan result) {
	t.Helper()
	synctest.Wait()
	select {
	case r := <-out:
		t.Fatalf("unexpected result %q (err %v)", r.name, r.err)
	default:
	}
}

func TestOrder(t *testing.T) {
	type arrival struct {
		name string
		req  gate.Request
	}
	tests := []struct {
		name     string
		arrivals []arrival
		want     []string
	}{
		{
			name: "fifo within a class",
			arrivals: []arrival{
				{"a", gate.Request{}}, {"b", gate.Request{}}, {"c", gate.Request{}}, {"d", gate.Request{}},
			},
			want: []string{"a", "b", "c", "d"},
		},
		{
			name: "interactive before batch",
			arrivals: []arrival{
				{"b1", gate.Request{Priority: gate.Batch}},
				{"i1", gate.Request{}},
				{"b2", gate.Request{Priority: gate.Batch}},
				{"i2", gate.Request{Priority: gate.Interactive}},
			},
			want: []string{"i1", "i2", "b1", "b2"},
		},
		{
			name: "retries ahead of new work of their priority",
			arrivals: []arrival{
				{"new1", gate.Request{}},
				{"bretry", gate.Request{Priority: gate.Batch, Retry: true}},
				{"retry1", gate.Request{Retry: true}},
				{"new2", gate.Request{}},
				{"retry2", gate.Request{Retry: true}},
				{"bnew", gate.Request{Priority: gate.Batch}},
			},
			want: []string{"retry1", "retry2", "new1", "new2", "bretry", "bnew"},
		},
		{
			name: "out-of-range priority is batch",
			arrivals: []arrival{
				{"p7", gate.Request{Priority: 7}},
				{"b", gate.Request{Priority: gate.Batch}},
				{"i", gate.Request{}},
			},
			want: []string{"i", "p7", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := gate.New(unpaced(1))
				holder := mustAcquire(t, g, gate.Request{})
				out := make(chan result, len(tt.arrivals))
				for _, a := range tt.arrivals {
					acquire(t.Context(), g, a.name, a.req, out)
					synctest.Wait() // fix the arrival order
				}
				noResult(t, out)
				var got []string
				prev := holder
				for range tt.arrivals {
					prev.Release()
					r := <-out
					if r.err != nil {
						t.Fatalf("%s: %v", r.name, r.err)
					}
					got = append(got, r.name)
					prev = r.t
				}
				prev.Release()
				if !equal(got, tt.want) {
					t.Errorf("order = %v, want %v", got, tt.want)
				}
			})
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tokenBucket is a budget for tests: level refills at rate per second up
// to capacity.
type tokenBucket struct {
	mu       sync.Mutex
	level    float64
	rate     float64
	capacity float64
	last     time.Time
	calls    map[string][]time.Time // when each request's budget was checked
}

func (b *tokenBucket) admit(name string, cost float64) func(time.Time) (time.Duration, bool) {
	return func(now time.Time) (time.Duration, bool) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.calls[name] = append(b.calls[name], now)
		if !b.last.IsZero() {
			b.level = min(b.capacity, b.level+now.Sub(b.last).Seconds()*b.rate)
		}
		b.last = now
		if b.level >= cost {
			b.level -= cost
			return 0, true
		}
		return time.Duration((cost - b.level) / b.rate * float64(time.Second)), false
	}
}

func TestHeadOfLineBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		b := &tokenBucket{level: 3, rate: 1, capacity: 10, last: t0, calls: map[string][]time.Time{}}
		g := gate.New(unpaced(10))
		out := make(chan result, 4)
		acquire(t.Context(), g, "big", gate.Request{Admit: b.admit("big", 8)}, out)
		synctest.Wait()
		for _, n := range []string{"s1", "s2", "s3"} {
			acquire(t.Context(), g, n, gate.Request{Admit: b.admit(n, 1)}, out)
			synctest.Wait()
		}
		// The small requests would fit the 3 tokens available now, but
		// they wait behind the big one, which needs 5 more seconds.
		var got []string
		var at []time.Duration
		for range 4 {
			r := <-out
			if r.err != nil {
				t.Fatalf("%s: %v", r.name, r.err)
			}
			got = append(got, r.name)
			at = append(at, r.at.Sub(t0))
			defer r.t.Release()
		}
		if want := []string{"big", "s1", "s2", "s3"}; !equal(got, want) {
			t.Fatalf("order = %v, want %v", got, want)
		}
		// big needs 8 with 3 available at 1/s: 5s. Each small then needs one
		// more second of refill.
		want := []time.Duration{5 * time.Second, 6 * time.Second, 7 * time.Second, 8 * time.Second}
		for i := range want {
			if at[i] != want[i] {
				t.Errorf("%s admitted at %v, want %v", got[i], at[i], want[i])
			}
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, n := range []string{"s1", "s2", "s3"} {
			if first := b.calls[n][0]; first.Before(t0.Add(want[0])) {
				t.Errorf("%s's budget was checked at +%v, before big was admitted; only the head is asked", n, first.Sub(t0))
			}
		}
	})
}

func TestConcurrencyLimitAndRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(2))
		a := mustAcquire(t, g, gate.Request{})
		b := mustAcquire(t, g, gate.Request{})
		out := make(chan result, 2)
		acquire(t.Context(), g, "c", gate.Request{}, out)
		synctest.Wait()
		acquire(t.Context(), g, "d", gate.Request{}, out)
		noResult(t, out)
		if s := g.Stats(); s.InFlight != 2 || s.Queued[gate.Interactive] != 2 {
			t.Fatalf("stats = %+v, want 2 in flight and 2 queued", s)
		}

		a.Release()
		a.Release() // idempotent: must not free a second slot
		c := <-out
		if c.name != "c" || c.err != nil {
			t.Fatalf("got %q %v, want c admitted", c.name, c.err)
		}
		noResult(t, out)
		if s := g.Stats(); s.InFlight != 2 || s.Queued[gate.Interactive] != 1 {
			t.Fatalf("after double release stats = %+v, want 2 in flight, 1 queued", s)
		}

		g.SetConcurrency(3)
		d := <-out
		if d.name != "d" || d.err != nil {
			t.Fatalf("got %q %v, want d admitted after raising the limit", d.name, d.err)
		}
		for _, tk := range []*gate.Ticket{b, c.t, d.t} {
			tk.Release()
		}
		if s := g.Stats(); s.InFlight != 0 || s.Limit != 3 {
			t.Errorf("final stats = %+v, want 0 in flight, limit 3", s)
		}
	})
}

func TestLowerConcurrencyRevokesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(3))
		held := []*gate.Ticket{
			mustAcquire(t, g, gate.Request{}), mustAcquire(t, g, gate.Request{}), mustAcquire(t, g, gate.Request{}),
		}
		g.SetConcurrency(1)
		out := make(chan result, 1)
		acquire(t.Context(), g, "next", gate.Request{}, out)
		held[0].Release()
		held[1].Release()
		noResult(t, out) // 1 in flight, limit 1
		held[2].Release()
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.t.Release()
	})
}

func TestSetConcurrencyClamps(t *testing.T) {
	tests := []struct {
		n, want int
	}{
		{-5, 1}, {0, 1}, {1, 1}, {10, 10}, {64, 64}, {65, 64}, {1 << 30, 64},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			g := gate.New(gate.Config{})
			g.SetConcurrency(tt.n)
			if got := g.Stats().Limit; got != tt.want {
				t.Errorf("SetConcurrency(%d): limit %d, want %d", tt.n, got, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name      string
		cfg       gate.Config
		wantLimit int
		wantRate  float64
	}{
		{"zero", gate.Config{}, gate.DefaultInitialConcurrency, gate.DefaultInitialOpenRate},
		{"initial concurrency above max", gate.Config{MaxConcurrency: 8, InitialConcurrency: 100}, 8, 2},
		{"negative values", gate.Config{InitialConcurrency: -1, InitialOpenRate: -3}, 1, 2},
		{"NaN rate", gate.Config{InitialOpenRate: math.NaN()}, 1, 2},
		{"initial rate above max", gate.Config{InitialOpenRate: 100, MaxOpenRate: 5}, 1, 5},
		{"initial rate below min", gate.Config{InitialOpenRate: 0.1}, 1, gate.DefaultMinOpenRate},
		{"min above max", gate.Config{MinOpenRate: 3, MaxOpenRate: 1, InitialOpenRate: 0.1}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := gate.New(tt.cfg).Stats()
			if s.Limit != tt.wantLimit || s.OpenRate != tt.wantRate {
				t.Errorf("limit %d rate %v, want %d %v", s.Limit, s.OpenRate, tt.wantLimit, tt.wantRate)
			}
		})
	}
}

func TestStaggerRamp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := gate.Config{
			InitialConcurrency: 64, InitialOpenRate: 2, MinOpenRate: 1, MaxOpenRate: 8,
			OpenRateGrowth: 2, OpenRateCut: 0.25,
		}
		g := gate.New(cfg)
		// What happens after each opening: the documented ramp rule applied
		// to an independent model of the rate.
		const (
			none = iota
			success
			limited
		)
		events := []int{none, success, success, success, limited, limited, success}
		out := make(chan result, len(events)+1)
		for i := range len(events) + 1 {
			acquire(t.Context(), g, string(rune('a'+i)), gate.Request{}, out)
			synctest.Wait()
		}
		rate := cfg.InitialOpenRate
		var prev time.Time
		for i := range len(events) + 1 {
			r := <-out
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.t.Release()
			if i > 0 {
				want := time.Duration(float64(time.Second) / rate)
				if gap := r.at.Sub(prev); gap != want {
					t.Errorf("opening %d: gap %v, want %v (rate %v/s)", i, gap, want, rate)
				}
			}
			prev = r.at
			if i == len(events) {
				break
			}
			switch events[i] {
			case success:
				g.Succeeded()
				rate = min(rate*cfg.OpenRateGrowth, cfg.MaxOpenRate)
			case limited:
				g.RateLimited()
				rate = max(rate*cfg.OpenRateCut, cfg.MinOpenRate)
			}
			if got := g.Stats().OpenRate; got != rate {
				t.Errorf("after event %d: OpenRate %v, want %v", i, got, rate)
			}
		}
	})
}

func TestCooldownHoldsEveryoneThenPaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(gate.Config{InitialConcurrency: 10, InitialOpenRate: 4, MaxOpenRate: 4})
		t0 := time.Now()
		until := t0.Add(10 * time.Second)
		g.Cooldown(ratelimit.OutputTokens, until)
		g.Cooldown(ratelimit.InputTokens, t0.Add(5*time.Second)) // shorter: ignored
		if s := g.Stats(); !s.CooldownUntil.Equal(until) || s.CooldownDimension != ratelimit.OutputTokens {
			t.Fatalf("stats = %+v, want cooldown on output_tokens until %v", s, until)
		}
		out := make(chan result, 5)
		names := []string{"a", "b", "c", "d", "e"}
		for _, n := range names {
			acquire(t.Context(), g, n, gate.Request{}, out)
			synctest.Wait()
		}
		time.Sleep(until.Sub(t0) - time.Nanosecond)
		noResult(t, out)
		for i, n := range names {
			r := <-out
			if r.err != nil || r.name != n {
				t.Fatalf("got %q %v, want %q", r.name, r.err, n)
			}
			defer r.t.Release()
			// In order, at the opening rate: no burst when the cooldown ends.
			if want := until.Add(time.Duration(i) * 250 * time.Millisecond); !r.at.Equal(want) {
				t.Errorf("%s admitted at +%v, want +%v", n, r.at.Sub(t0), want.Sub(t0))
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(4))
		t0 := time.Now()
		g.Backoff(t0.Add(3 * time.Second))
		g.Backoff(t0.Add(time.Second)) // shorter: ignored
		g.Cooldown(ratelimit.Requests, t0.Add(2*time.Second))
		if s := g.Stats(); !s.BackoffUntil.Equal(t0.Add(3 * time.Second)) {
			t.Fatalf("BackoffUntil = %v, want +3s", s.BackoffUntil.Sub(t0))
		}
		out := make(chan result, 1)
		acquire(t.Context(), g, "a", gate.Request{}, out)
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.t.Release()
		if got := r.at.Sub(t0); got != 3*time.Second {
			t.Errorf("admitted at +%v, want +3s (the later of backoff and cooldown)", got)
		}
	})
}

func TestContextCancelRemovesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(1))
		holder := mustAcquire(t, g, gate.Request{})
		ctx, cancel := context.WithCancel(t.Context())
		var mu sync.Mutex
		asked := map[string]int{}
		admit := func(name string) func(time.Time) (time.Duration, bool) {
			return func(time.Time) (time.Duration, bool) {
				mu.Lock()
				defer mu.Unlock()
				asked[name]++
				return 0, true
			}
		}
		out := make(chan result, 2)
		acquire(ctx, g, "cancelled", gate.Request{Admit: admit("cancelled")}, out)
		synctest.Wait()
		acquire(t.Context(), g, "next", gate.Request{Admit: admit("next")}, out)
		noResult(t, out)

		cancel()
		r := <-out
		if r.name != "cancelled" || !errors.Is(r.err, context.Canceled) || r.t != nil {
			t.Fatalf("got %q %v %v, want cancelled with context.Canceled and no ticket", r.name, r.t, r.err)
		}
		if s := g.Stats(); s.Queued[gate.Interactive] != 1 || s.InFlight != 1 {
			t.Fatalf("stats = %+v, want 1 queued, 1 in flight", s)
		}
		holder.Release()
		r = <-out
		if r.name != "next" || r.err != nil {
			t.Fatalf("got %q %v, want next admitted", r.name, r.err)
		}
		r.t.Release()
		mu.Lock()
		defer mu.Unlock()
		if asked["cancelled"] != 0 || asked["next"] != 1 {
			t.Errorf("Admit calls = %v, want none for the cancelled request", asked)
		}
	})
}

func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(gate.Config{MaxQueue: 2})
		holder := mustAcquire(t, g, gate.Request{})
		out := make(chan result, 2)
		acquire(t.Context(), g, "a", gate.Request{}, out)
		acquire(t.Context(), g, "b", gate.Request{Priority: gate.Batch}, out)
		noResult(t, out)
		_, err := g.Acquire(t.Context(), gate.Request{Retry: true})
		if !errors.Is(err, gate.ErrQueueFull) {
			t.Fatalf("err = %v, want ErrQueueFull", err)
		}
		holder.Release()
		for range 2 {
			r := <-out
			if r.err != nil {
				t.Fatal(r.err)
			}
			r.t.Release()
		}
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(1))
		holder := mustAcquire(t, g, gate.Request{})
		out := make(chan result, 2)
		acquire(t.Context(), g, "a", gate.Request{}, out)
		acquire(t.Context(), g, "b", gate.Request{Priority: gate.Batch}, out)
		noResult(t, out)
		g.Close()
		g.Close()
		for range 2 {
			if r := <-out; !errors.Is(r.err, gate.ErrClosed) {
				t.Errorf("%s: err = %v, want ErrClosed", r.name, r.err)
			}
		}
		if _, err := g.Acquire(t.Context(), gate.Request{}); !errors.Is(err, gate.ErrClosed) {
			t.Errorf("Acquire after Close: err = %v, want ErrClosed", err)
		}
		holder.Release()
		if s := g.Stats(); s.InFlight != 0 || s.Queued != [gate.NumPriorities]int{} {
			t.Errorf("stats after close = %+v, want empty", s)
		}
	})
}

func TestAdmitDeclinedWithoutEstimate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(gate.Config{AdmitRetry: 2 * time.Second})
		var calls []time.Duration
		t0 := time.Now()
		admit := func(now time.Time) (time.Duration, bool) {
			calls = append(calls, now.Sub(t0))
			return 0, len(calls) == 3
		}
		tk, err := g.Acquire(t.Context(), gate.Request{Admit: admit})
		if err != nil {
			t.Fatal(err)
		}
		tk.Release()
		want := []time.Duration{0, 2 * time.Second, 4 * time.Second}
		if len(calls) != len(want) || calls[1] != want[1] || calls[2] != want[2] {
			t.Errorf("Admit called at %v, want %v", calls, want)
		}
	})
}

func TestReleaseReasksBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(4))
		other := mustAcquire(t, g, gate.Request{})
		refunded := false
		var mu sync.Mutex
		admit := func(time.Time) (time.Duration, bool) {
			mu.Lock()
			defer mu.Unlock()
			return time.Hour, refunded
		}
		out := make(chan result, 1)
		acquire(t.Context(), g, "a", gate.Request{Admit: admit}, out)
		noResult(t, out)
		// The engine settles other's stream (refunding its unused
		// reservation), then releases its ticket.
		mu.Lock()
		refunded = true
		mu.Unlock()
		t0 := time.Now()
		other.Release()
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.t.Release()
		if time.Since(t0) != 0 {
			t.Errorf("admitted %v after the release, want at once", time.Since(t0))
		}
	})
}

func TestAdmitPanicRestoresState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(1))
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Acquire did not propagate Admit's panic")
				}
			}()
			_, _ = g.Acquire(t.Context(), gate.Request{Admit: func(time.Time) (time.Duration, bool) { panic("boom") }})
		}()
		if s := g.Stats(); s.InFlight != 0 || s.Queued[gate.Interactive] != 0 {
			t.Fatalf("stats after panic = %+v, want empty", s)
		}
		mustAcquire(t, g, gate.Request{}).Release()
	})
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{gate.Interactive.String(), "interactive"},
		{gate.Batch.String(), "batch"},
		{gate.WaitCooldown.String(), "cooldown"},
		{gate.WaitBackoff.String(), "backoff"},
		{gate.WaitStagger.String(), "stagger"},
		{gate.WaitBudget.String(), "budget"},
		{gate.WaitReason(0).String(), "unknown"},
		{(&gate.WaitError{Wait: time.Second, Reason: gate.WaitBudget}).Error(), "gate: estimated wait 1s (budget) exceeds the deadline"},
		{(&gate.WaitError{Wait: time.Second, Reason: gate.WaitCooldown, Dimension: ratelimit.OutputTokens}).Error(),
			"gate: estimated wait 1s (cooldown on output_tokens) exceeds the deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestReleaseNilTicket(t *testing.T) {
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("Release on a nil Ticket panicked: %v", p)
		}
	}()
	var tk *gate.Ticket
	tk.Release()
}

// TestRetryArrivingDuringAdmitIsWoken: a retry that jumps ahead of new work
// while another request is inside a successful Admit must be woken when
// that call ends, not wait for an unrelated event.
func TestRetryArrivingDuringAdmitIsWoken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := gate.New(unpaced(4))
		defer g.Close()
		out := make(chan result, 2)
		inAdmit := make(chan struct{})
		finish := make(chan struct{})
		acquire(t.Context(), g, "new", gate.Request{Admit: func(time.Time) (time.Duration, bool) {
			close(inAdmit)
			<-finish
			return 0, true
		}}, out)
		<-inAdmit
		acquire(t.Context(), g, "retry", gate.Request{Retry: true}, out)
		synctest.Wait() // the retry is now the head, waiting for Admit to end
		close(finish)
		got := map[string]bool{}
		for range 2 {
			r := <-out
			if r.err != nil {
				t.Fatalf("%s: %v", r.name, r.err)
			}
			got[r.name] = true
			defer r.t.Release()
		}
		if !got["new"] || !got["retry"] {
			t.Fatalf("admitted %v", got)
		}
	})
}
