package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// Budget is the front end the transport uses: it reads the clock, names
// reservations and keeps the ledger of reservations it has opened, over any
// Store. Make one with New; the zero Budget is not usable. A Budget is safe
// for concurrent use.
type Budget struct {
	store Store
	clock Clock // nil: the real clock
	newID func() string
	open  atomic.Int64
}

// New returns a Budget over store. It honours WithClock and
// WithIDGenerator.
func New(store Store, opts ...Option) *Budget {
	o := buildOptions(opts)
	b := &Budget{store: store, clock: o.clock, newID: o.newID}
	if b.newID == nil {
		b.newID = counterIDs()
	}
	return b
}

// counterIDs returns a generator of ids made of a random prefix, unique to
// the generator with overwhelming probability, and a counter.
func counterIDs() func() string {
	var raw [8]byte
	_, _ = rand.Read(raw[:]) // never fails on supported platforms
	prefix := hex.EncodeToString(raw[:]) + "-"
	var n atomic.Uint64
	return func() string { return prefix + strconv.FormatUint(n.Add(1), 10) }
}

func (b *Budget) now() time.Time {
	if b.clock == nil {
		return time.Now()
	}
	return b.clock.Now()
}

// Store returns the Store the Budget works on.
func (b *Budget) Store() Store { return b.store }

// Reserve asks the store to admit a request costing charge now (requests,
// input tokens) and hold (output tokens it may produce). It returns the
// open Reservation when admitted, and nil with the Result's wait estimate
// when not. Errors are the store's (ErrExceedsLimit: the cost can never
// fit).
func (b *Budget) Reserve(ctx context.Context, key Key, charge, hold Cost) (*Reservation, Result, error) {
	id := b.newID()
	res, err := b.store.Reserve(ctx, key, id, charge, hold, b.now())
	if err != nil || !res.Admitted {
		return nil, res, err
	}
	b.open.Add(1)
	return &Reservation{b: b, key: key, id: id}, res, nil
}

// Observe reconciles the key's budget with a snapshot that belongs to no
// reservation of this Budget.
func (b *Budget) Observe(ctx context.Context, key Key, snap ratelimit.Snapshot) error {
	return b.store.Observe(ctx, key, "", snap)
}

// SetLimits sets the key's configured limits (-1 = unknown); see
// Store.SetLimits.
func (b *Budget) SetLimits(ctx context.Context, key Key, limits Cost) error {
	return b.store.SetLimits(ctx, key, limits)
}

// View reports the key's budget now.
func (b *Budget) View(ctx context.Context, key Key) (View, error) {
	return b.store.View(ctx, key, b.now())
}

// Open returns the number of reservations this Budget has opened and that
// have not yet been settled or cancelled: zero once every request has
// finished, whatever happened to it.
func (b *Budget) Open() int { return int(b.open.Load()) }

// Reservation is an admitted request's claim on its key's budget. It ends
// in exactly one of Settle or Cancel; after that every method but Observe
// returns ErrClosed and changes nothing. Its methods are safe for
// concurrent use, and talk to the store with a background context so that
// a cancelled request still returns its budget.
type Reservation struct {
	b   *Budget
	key Key
	id  string

	mu    sync.Mutex
	ended bool // requires mu held
}

// ID returns the reservation's id in the store.
func (r *Reservation) ID() string { return r.id }

// Key returns the key the reservation draws from.
func (r *Reservation) Key() Key { return r.key }

// Consume charges n units of dimension d the upstream has produced (output
// tokens as they stream). It returns ErrClosed after the reservation ended,
// and ErrUnknownReservation if the store dropped it (lease expired).
func (r *Reservation) Consume(d ratelimit.Dimension, n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return ErrClosed
	}
	return r.b.store.Consume(context.Background(), r.key, r.id, d, n, r.b.now())
}

// Settle ends the reservation with its actual usage (-1 per unknown
// dimension), refunding or charging the difference and releasing the
// remaining hold. The reservation has ended once Settle returns, even with
// an error from the store: a hold the store could not release expires with
// its lease.
func (r *Reservation) Settle(actual Cost) error {
	return r.end(func(ctx context.Context, now time.Time) error {
		return r.b.store.Settle(ctx, r.key, r.id, actual, now)
	})
}

// Cancel ends the reservation of a request that never reached the
// upstream: it refunds the charge and releases the hold. Like Settle, it
// ends the reservation even when the store reports an error.
func (r *Reservation) Cancel() error {
	return r.end(func(ctx context.Context, now time.Time) error {
		return r.b.store.Cancel(ctx, r.key, r.id, now)
	})
}

func (r *Reservation) end(op func(context.Context, time.Time) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return ErrClosed
	}
	r.ended = true
	r.b.open.Add(-1)
	return op(context.Background(), r.b.now())
}

// Observe reconciles the key's budget with the rate-limit snapshot of this
// reservation's response. After the reservation has ended the snapshot
// still teaches the key, as one belonging to no reservation.
func (r *Reservation) Observe(snap ratelimit.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.id
	if r.ended {
		id = ""
	}
	return r.b.store.Observe(context.Background(), r.key, id, snap)
}
