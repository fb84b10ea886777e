package gate_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
)

// scenario drives a Gate through a byte-coded sequence of operations and
// checks its invariants after every step. Each byte is an operation (low 3
// bits) and its parameter (the rest):
//
//	0 arrive    a request (priority, retry, deadline and cost from the parameter)
//	1 release   the oldest admitted ticket, twice
//	2 advance   the simulated clock by (parameter+1) x 50ms
//	3 limit     SetConcurrency(parameter % 6)
//	4 cooldown  until now + parameter x 100ms
//	5 backoff   until now + parameter x 100ms
//	6 ramp      Succeeded or RateLimited
//	7 cancel    a waiting request
//
// Invariants: no admission beyond the concurrency limit, during a cooldown
// or backoff, before the stagger interval, of a Batch request while an
// Interactive one waits, or out of FIFO order within a lane; Stats agrees
// with the tickets held and the requests waiting; every ticket released
// (twice) leaves nothing in flight.
type scenario struct {
	t *testing.T
	g *gate.Gate

	mu       sync.Mutex
	level    float64 // a token budget refilling at 5/s up to 20
	last     time.Time
	lastOpen time.Time
	lastSeq  [4]int // last admitted sequence number per lane
	held     []*gate.Ticket
	cancels  map[int]context.CancelFunc
	waiting  map[int]bool
	admitted int
	failed   int
	nextSeq  int
	wg       sync.WaitGroup
}

func runScenario(t *testing.T, ops []byte) {
	s := &scenario{
		t: t,
		g: gate.New(gate.Config{
			MaxQueue: 6, MaxConcurrency: 4, InitialConcurrency: 2,
			InitialOpenRate: 4, MinOpenRate: 1, MaxOpenRate: 16, OpenRateGrowth: 2,
		}),
		level:   20,
		last:    time.Now(),
		cancels: map[int]context.CancelFunc{},
		waiting: map[int]bool{},
	}
	for _, b := range ops {
		s.step(int(b&7), int(b>>3))
		synctest.Wait()
		s.check()
	}
	s.g.Close()
	s.wg.Wait()
	s.mu.Lock()
	for _, tk := range s.held {
		tk.Release()
		tk.Release()
	}
	s.held = nil
	for _, c := range s.cancels {
		c()
	}
	s.mu.Unlock()
	if st := s.g.Stats(); st.InFlight != 0 || st.Queued != [gate.NumPriorities]int{} {
		t.Errorf("after releasing everything: %+v", st)
	}
}

func (s *scenario) step(op, p int) {
	switch op {
	case 0:
		s.arrive(p)
	case 1:
		s.mu.Lock()
		if len(s.held) > 0 {
			tk := s.held[0]
			s.held = s.held[1:]
			s.mu.Unlock()
			tk.Release()
			tk.Release()
			return
		}
		s.mu.Unlock()
	case 2:
		time.Sleep(time.Duration(p+1) * 50 * time.Millisecond)
	case 3:
		s.g.SetConcurrency(p % 6)
	case 4:
		s.g.Cooldown(ratelimit.Dimension(p%ratelimit.NumDimensions), time.Now().Add(time.Duration(p)*100*time.Millisecond))
	case 5:
		s.g.Backoff(time.Now().Add(time.Duration(p) * 100 * time.Millisecond))
	case 6:
		if p&1 == 0 {
			s.g.Succeeded()
		} else {
			s.g.RateLimited()
		}
	case 7:
		s.mu.Lock()
		for id := 1; id <= s.nextSeq; id++ {
			if s.waiting[id] && id%4 == p%4 {
				s.cancels[id]()
				break
			}
		}
		s.mu.Unlock()
	}
}

func (s *scenario) arrive(p int) {
	r := gate.Request{Priority: gate.Priority(p & 1), Retry: p&2 != 0}
	lane := 2*int(r.Priority) + 1
	if r.Retry {
		lane--
	}
	cost := float64(1 + (p>>3)%8)
	ctx, cancel := context.WithCancel(context.Background())
	if p&4 != 0 {
		ctx, cancel = context.WithTimeout(context.Background(), time.Duration(1+p>>3)*200*time.Millisecond)
	}
	s.mu.Lock()
	s.nextSeq++
	id := s.nextSeq
	s.cancels[id] = cancel
	s.waiting[id] = true
	s.mu.Unlock()
	r.Admit = func(now time.Time) (time.Duration, bool) { return s.admit(now, r.Priority, lane, id, cost) }
	s.wg.Go(func() {
		tk, err := s.g.Acquire(ctx, r)
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.waiting, id)
		if err == nil {
			s.held = append(s.held, tk)
			s.admitted++
			return
		}
		s.failed++
		var werr *gate.WaitError
		switch {
		case errors.Is(err, gate.ErrQueueFull), errors.Is(err, gate.ErrClosed),
			errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case errors.As(err, &werr):
			if werr.Wait <= 0 {
				s.t.Errorf("WaitError with a non-positive wait: %v", werr)
			}
		default:
			s.t.Errorf("unexpected error: %v", err)
		}
	})
}

// admit is every request's budget check; it also checks the admission
// invariants, since it runs exactly when the Gate has decided everything
// else allows the request.
func (s *scenario) admit(now time.Time, prio gate.Priority, lane, seq int, cost float64) (time.Duration, bool) {
	st := s.g.Stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.InFlight > st.Limit {
		s.t.Errorf("budget checked with %d in flight (including this one), limit %d", st.InFlight, st.Limit)
	}
	if now.Before(st.CooldownUntil) || now.Before(st.BackoffUntil) {
		s.t.Errorf("budget checked during a hold: now %v, cooldown %v, backoff %v", now, st.CooldownUntil, st.BackoffUntil)
	}
	if prio == gate.Batch && st.Queued[gate.Interactive] > 0 {
		s.t.Errorf("batch request checked while %d interactive wait", st.Queued[gate.Interactive])
	}
	if !s.lastOpen.IsZero() {
		if gap, min := now.Sub(s.lastOpen), time.Duration(float64(time.Second)/st.OpenRate); gap < min {
			s.t.Errorf("opening %v after the previous one; the stagger is %v", gap, min)
		}
	}
	if seq <= s.lastSeq[lane] {
		s.t.Errorf("lane %d: request %d checked after request %d was admitted", lane, seq, s.lastSeq[lane])
	}
	s.level = min(20, s.level+now.Sub(s.last).Seconds()*5)
	s.last = now
	if s.level < cost {
		return time.Duration((cost - s.level) / 5 * float64(time.Second)), false
	}
	s.level -= cost
	s.lastOpen = now
	s.lastSeq[lane] = seq
	return 0, true
}

// check compares Stats with what the scenario knows once every goroutine is
// blocked.
func (s *scenario) check() {
	st := s.g.Stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.InFlight != len(s.held) {
		s.t.Errorf("Stats.InFlight = %d, but %d tickets are held", st.InFlight, len(s.held))
	}
	if q := st.Queued[0] + st.Queued[1]; q != len(s.waiting) {
		s.t.Errorf("Stats.Queued = %v, but %d requests wait", st.Queued, len(s.waiting))
	}
	if q := st.Queued[0] + st.Queued[1]; q > 6 {
		s.t.Errorf("%d queued beyond MaxQueue 6", q)
	}
}

var scenarioSeeds = [][]byte{
	{0, 0, 0, 0, 2, 1, 1, 1, 1},
	{0 | 1<<3, 0, 0 | 2<<3, 0 | 1<<3, 4 | 20<<3, 2 | 31<<3, 1, 1, 2 | 31<<3, 1},
	{0 | 4<<3, 0 | 4<<3, 5 | 30<<3, 0 | 12<<3, 7, 2 | 10<<3, 1, 1},
	{3 | 5<<3, 0, 0, 0, 0, 0, 0, 6, 6, 6, 2, 1, 1, 1, 6 | 1<<3, 2, 1, 1},
	{0 | 28<<3, 0 | 28<<3, 0 | 29<<3, 2 | 20<<3, 1, 2 | 20<<3, 1, 2 | 20<<3, 1},
}

func FuzzGate(f *testing.F) {
	for _, s := range scenarioSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 256 {
			ops = ops[:256]
		}
		synctest.Test(t, func(t *testing.T) { runScenario(t, ops) })
	})
}

// TestRandomScenarios runs random operation sequences (seeded, so a
// failure is reproducible) through the same invariant checks as FuzzGate.
func TestRandomScenarios(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		ops := make([]byte, 20+rng.IntN(100))
		for j := range ops {
			ops[j] = byte(rng.Uint32())
		}
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runScenario(t, ops) })
			if t.Failed() {
				t.Logf("scenario %d: ops %v", i, ops)
			}
		})
	}
}
