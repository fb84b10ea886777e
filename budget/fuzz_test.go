package budget_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

// opReader decodes fuzz input into operation parameters; past the end of
// the input it yields zeros.
type opReader struct{ b []byte }

func (r *opReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// n returns a number in [0, limit) from two bytes.
func (r *opReader) n(limit int64) int64 {
	v := int64(r.byte())<<8 | int64(r.byte())
	return v % limit
}

// fuzzRes is the test's model of an open reservation.
type fuzzRes struct {
	key     budget.Key
	id      string
	hold    budget.Cost // remaining
	expires time.Time
}

// FuzzLedger runs random sequences of operations with monotone times on a
// Memory with a short window and lease, against a model of the open
// reservations. After every operation no level may exceed its limit, held
// must equal the model's remaining holds (never negative) and the open
// count must match; once every reservation has ended nothing is held.
func FuzzLedger(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 10, 0, 200, 3, 0, 5, 1, 0, 1, 0, 50, 2, 0, 0, 3})
	f.Add([]byte("\x00\x00\x10\x00\x20\x01\x00\x00\x30\x04\x07\x00\x00\x00\x05\x02\x00\x00\x00\x01\x06\x01\x00\x20"))
	f.Add([]byte("reserve consume settle cancel observe setlimits view"))
	const (
		window = 6 * time.Second
		lease  = 30 * time.Second
	)
	keys := []budget.Key{
		{Provider: ratelimit.Anthropic, Fingerprint: "fp_a", ModelClass: "m"},
		{Provider: ratelimit.OpenAI, Fingerprint: "fp_b", ModelClass: "m"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		m := budget.NewMemory(budget.WithWindow(window), budget.WithMaxLease(lease))
		r := &opReader{b: data}
		now := t0
		var open []fuzzRes
		nextID := 0
		cost := func(limit int64) budget.Cost {
			var c budget.Cost
			for d := range c {
				if r.byte()%3 == 0 {
					c[d] = r.n(limit)
				}
			}
			return c
		}
		for op := 0; len(r.b) > 0 && op < 400; op++ {
			now = now.Add(time.Duration(r.byte()) * 50 * time.Millisecond)
			open = slices.DeleteFunc(open, func(o fuzzRes) bool { return !now.Before(o.expires) })
			k := keys[r.byte()%2]
			var pick *fuzzRes
			if len(open) > 0 {
				pick = &open[int(r.byte())%len(open)]
			}
			switch code := r.byte() % 6; {
			case code == 0 || pick == nil:
				id := strconv.Itoa(nextID)
				nextID++
				hold := cost(20000)
				res, err := m.Reserve(ctx, k, id, cost(20000), hold, now)
				switch {
				case errors.Is(err, budget.ErrExceedsLimit):
				case err != nil:
					t.Fatalf("op %d: Reserve: %v", op, err)
				case res.Admitted:
					open = append(open, fuzzRes{k, id, hold, now.Add(lease)})
				case res.Wait < 0:
					t.Fatalf("op %d: refused with negative Wait %v", op, res.Wait)
				}
			case code == 1:
				d := ratelimit.Dimension(r.byte() % byte(ratelimit.NumDimensions))
				n := r.n(30000)
				if err := m.Consume(ctx, pick.key, pick.id, d, n, now); err != nil {
					t.Fatalf("op %d: Consume: %v", op, err)
				}
				pick.hold[d] -= min(n, pick.hold[d])
				pick.expires = now.Add(lease)
			case code == 2 || code == 3:
				var err error
				if code == 2 {
					actual := cost(30000)
					for d := range actual {
						if r.byte()%4 == 0 {
							actual[d] = -1
						}
					}
					err = m.Settle(ctx, pick.key, pick.id, actual, now)
				} else {
					err = m.Cancel(ctx, pick.key, pick.id, now)
				}
				if err != nil {
					t.Fatalf("op %d: end: %v", op, err)
				}
				i := slices.IndexFunc(open, func(o fuzzRes) bool { return o.id == pick.id })
				open = slices.Delete(open, i, i+1)
			case code == 4:
				snap := ratelimit.Snapshot{At: now.Add(-time.Duration(r.byte()) * 10 * time.Millisecond), RetryAfter: -1}
				for d := range snap.Buckets {
					snap.Buckets[d] = ratelimit.Bucket{Limit: r.n(40000) - 2, Remaining: r.n(40000) - 2, Granularity: []int64{0, 1, 1000}[r.byte()%3]}
				}
				id := ""
				if r.byte()%2 == 0 {
					id = pick.id
					k = pick.key
					pick.expires = maxTime(pick.expires, snap.At.Add(lease))
				}
				if err := m.Observe(ctx, k, id, snap); err != nil {
					t.Fatalf("op %d: Observe: %v", op, err)
				}
			default:
				lim := cost(40000)
				for d := range lim {
					lim[d]--
				}
				if err := m.SetLimits(ctx, k, lim); err != nil {
					t.Fatalf("op %d: SetLimits: %v", op, err)
				}
			}
			checkLedger(t, m, keys, open, now)
		}
		for _, o := range open {
			if err := m.Cancel(ctx, o.key, o.id, now); err != nil {
				t.Fatalf("final Cancel(%s): %v", o.id, err)
			}
		}
		checkLedger(t, m, keys, nil, now)
	})
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func checkLedger(t *testing.T, m *budget.Memory, keys []budget.Key, open []fuzzRes, now time.Time) {
	t.Helper()
	for _, k := range keys {
		var held budget.Cost
		count := 0
		for _, o := range open {
			if o.key == k {
				count++
				for d := range held {
					held[d] += o.hold[d]
				}
			}
		}
		v, err := m.View(context.Background(), k, now)
		if err != nil {
			t.Fatal(err)
		}
		if v.Open != count {
			t.Fatalf("%v: %d open, model has %d", k, v.Open, count)
		}
		for d, dv := range v.Dimensions {
			if dv.Held < 0 || dv.Held != held[d] {
				t.Fatalf("%v %s: held %d, model %d", k, ratelimit.Dimension(d), dv.Held, held[d])
			}
			if dv.Known && dv.Level > float64(dv.Limit) {
				t.Fatalf("%v %s: level %v above limit %d", k, ratelimit.Dimension(d), dv.Level, dv.Limit)
			}
		}
	}
}
