package budget

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// Defaults for the Store-wide configuration.
const (
	// DefaultWindow is the time a bucket takes to refill from empty to its
	// limit: the providers' limits are per minute.
	DefaultWindow = 60 * time.Second
	// DefaultMaxLease is how long a reservation survives without being
	// touched (reserved, consumed against or observed) before the store drops
	// it.
	DefaultMaxLease = 10 * time.Minute
)

// Sentinel errors. Stores return them wrapped; test with errors.Is.
var (
	// ErrExceedsLimit means a reservation asks for more than a dimension's
	// limit: it can never be admitted, however long the caller waits. The
	// error is a *LimitError naming the dimension.
	ErrExceedsLimit = errors.New("budget: cost exceeds limit")
	// ErrUnknownReservation means no open reservation has the given id: it
	// was never made, has already been settled or cancelled, or its lease
	// expired.
	ErrUnknownReservation = errors.New("budget: unknown reservation")
	// ErrDuplicateReservation means Reserve was called with the id of a
	// reservation that is still open on that key.
	ErrDuplicateReservation = errors.New("budget: duplicate reservation id")
	// ErrClosed means a Reservation has already been settled or cancelled.
	ErrClosed = errors.New("budget: reservation already ended")
	// ErrInvalid means an argument is malformed: an empty reservation id, a
	// negative amount where only amounts are allowed, or a dimension out of
	// range.
	ErrInvalid = errors.New("budget: invalid argument")
)

// LimitError is the error a Store returns when a cost can never fit a
// dimension's limit. It matches ErrExceedsLimit under errors.Is.
type LimitError struct {
	// Dimension is the first dimension (in Dimension order) whose limit the
	// cost exceeds.
	Dimension ratelimit.Dimension
	// Need is the cost in that dimension: charge plus hold.
	Need int64
	// Limit is the dimension's limit.
	Limit int64
}

// Error implements error.
func (e *LimitError) Error() string {
	return fmt.Sprintf("budget: cost %d exceeds %s limit %d", e.Need, e.Dimension, e.Limit)
}

// Is reports whether target is ErrExceedsLimit.
func (e *LimitError) Is(target error) bool { return target == ErrExceedsLimit }

// Key names one rate-limit budget: an account (by API key fingerprint) of a
// provider, for one model class. Providers limit each model class
// separately. The zero Key is valid (an unknown provider, empty fingerprint
// and model class) and distinct from every other Key. Key is comparable and
// may be used as a map key.
type Key struct {
	// Provider is the API family.
	Provider ratelimit.Provider
	// Fingerprint identifies the API key; it comes from fingerprint.Of and
	// is never the key itself.
	Fingerprint string
	// ModelClass is the group of models sharing one set of limits, e.g.
	// "claude-sonnet-4".
	ModelClass string
}

// String returns "provider/fingerprint/modelclass", e.g.
// "anthropic/fp_0123456789ab/claude-sonnet-4". ParseKey inverts it as long
// as the fingerprint contains no "/" (fingerprint.Of never produces one).
func (k Key) String() string {
	return k.Provider.String() + "/" + k.Fingerprint + "/" + k.ModelClass
}

// ParseKey is the inverse of Key.String. The model class is everything
// after the second "/", so it may itself contain slashes. It returns an
// error wrapping ErrInvalid if s has fewer than two slashes or names an
// unknown provider.
func ParseKey(s string) (Key, error) {
	p, rest, ok1 := strings.Cut(s, "/")
	fp, class, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 {
		return Key{}, fmt.Errorf("budget: key %q: want provider/fingerprint/modelclass: %w", s, ErrInvalid)
	}
	var prov ratelimit.Provider
	switch p {
	case ratelimit.Anthropic.String():
		prov = ratelimit.Anthropic
	case ratelimit.OpenAI.String():
		prov = ratelimit.OpenAI
	case ratelimit.ProviderUnknown.String():
		prov = ratelimit.ProviderUnknown
	default:
		return Key{}, fmt.Errorf("budget: key %q: unknown provider %q: %w", s, p, ErrInvalid)
	}
	return Key{Provider: prov, Fingerprint: fp, ModelClass: class}, nil
}

// Cost is an amount per dimension, indexed by ratelimit.Dimension: requests,
// tokens. The zero Cost costs nothing. Where a Cost means limits (SetLimits)
// or actual usage (Settle), -1 means unknown.
type Cost [ratelimit.NumDimensions]int64

// UnknownCost returns a Cost with every dimension -1 (unknown), the starting
// point for SetLimits and Settle arguments that know only some dimensions.
func UnknownCost() Cost {
	var c Cost
	for i := range c {
		c[i] = -1
	}
	return c
}

// Result is the outcome of a Reserve call.
type Result struct {
	// Admitted reports whether the reservation was made.
	Admitted bool
	// Wait is, when not admitted, the estimated time until the request
	// would fit, from the refill rates alone (0 if admitted). When InFlight
	// is set it is only the time until the binding bucket is full.
	Wait time.Duration
	// Binding is the dimension that blocked admission (the one needing the
	// longest wait, a dimension blocked by in-flight holds first). It is
	// meaningless when Admitted is true.
	Binding ratelimit.Dimension
	// InFlight reports that refill alone cannot make room in the binding
	// dimension: output held for streams in flight must be produced or
	// released first, so the caller should retry after a reservation ends
	// (or poll) rather than rely on Wait.
	InFlight bool
}

// DimensionView is a Store's state for one dimension of one key.
type DimensionView struct {
	// Known reports whether the limit is known. An unknown dimension does
	// not constrain admission, and Limit and Level are meaningless.
	Known bool
	// Limit is the bucket's capacity per window, or -1 if unknown.
	Limit int64
	// Level is the predicted server-side remaining count, refilled to the
	// time of the View. It never exceeds Limit but may be negative after
	// usage beyond what was reserved.
	Level float64
	// Held is output reserved for reservations in flight and not yet
	// produced; it is tracked even when the limit is unknown.
	Held int64
}

// Available is what a new reservation could take now: Level - Held.
func (v DimensionView) Available() float64 { return v.Level - float64(v.Held) }

// View is a snapshot of one key's budget, for metrics and status pages.
type View struct {
	// Dimensions holds one entry per ratelimit.Dimension.
	Dimensions [ratelimit.NumDimensions]DimensionView
	// Open is the number of open reservations on the key.
	Open int
}

// Store keeps the budgets of many keys. Every method is one atomic
// operation on one key's state (Keys excepted), with plain values in and
// out, so that an implementation may live in another process (Redis) and
// be shared by many streamgate processes. Reservation ids are chosen by the
// caller and must be unique per key among open reservations.
//
// Methods that depend on time take it as a parameter (Observe uses the
// snapshot's At); a Store never reads a clock to decide what now is, unless
// it documents that it substitutes a shared clock (such as a Redis server's)
// for the one passed in. Refill is computed from the latest time a key has
// seen, so a now earlier than that refills nothing.
//
// Implementations must be safe for concurrent use and pass the conformance
// suite in package budgettest. The package documentation describes the
// semantics in full.
type Store interface {
	// Reserve admits a reservation if, in every dimension with a known
	// limit, level - held >= charge + hold: it then takes charge from the
	// level, adds hold to held and records the reservation under id.
	// Otherwise it changes nothing and reports how long to wait. A cost that
	// exceeds a limit outright returns a *LimitError (ErrExceedsLimit); an id
	// already open on the key returns ErrDuplicateReservation; negative
	// amounts or an empty id return ErrInvalid.
	Reserve(ctx context.Context, key Key, id string, charge, hold Cost, now time.Time) (Result, error)
	// Consume charges n (>= 0) units of dimension d that the upstream
	// produced for reservation id: the level drops by n and the
	// reservation's remaining hold in d by min(n, hold). It renews the
	// reservation's lease.
	Consume(ctx context.Context, key Key, id string, d ratelimit.Dimension, n int64, now time.Time) error
	// Settle ends reservation id with its actual usage: per dimension it
	// charges (or refunds) actual - (charge + consumed) and releases the
	// remaining hold. A negative actual in a dimension means unknown: what
	// was charged and consumed stands.
	Settle(ctx context.Context, key Key, id string, actual Cost, now time.Time) error
	// Cancel ends reservation id for a request that never reached the
	// upstream: it refunds the charge and releases the hold. Amounts already
	// consumed stay charged.
	Cancel(ctx context.Context, key Key, id string, now time.Time) error
	// Observe reconciles the key's budget with a response's rate-limit
	// snapshot: it learns limits and adopts the remaining counts (see the
	// package documentation for the policy). id names the reservation whose
	// response carried the snapshot, or is "". An unknown id is not an
	// error.
	Observe(ctx context.Context, key Key, id string, snap ratelimit.Snapshot) error
	// SetLimits sets configured limits (-1 = unknown) for the dimensions
	// whose limit has not been learned from a snapshot.
	SetLimits(ctx context.Context, key Key, limits Cost) error
	// View reports the key's state refilled to now. An unseen key has every
	// dimension unknown.
	View(ctx context.Context, key Key, now time.Time) (View, error)
	// Keys lists the keys the store has state for, sorted by Key.String.
	Keys(ctx context.Context) ([]Key, error)
}
