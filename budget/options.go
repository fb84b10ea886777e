package budget

import "time"

// Option configures NewMemory or New. Each option documents which
// constructor it affects; the other ignores it, so one option list can be
// shared.
type Option interface {
	apply(*options)
}

type options struct {
	window   time.Duration
	maxLease time.Duration
	clock    Clock
	newID    func() string
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

func buildOptions(opts []Option) options {
	o := options{window: DefaultWindow, maxLease: DefaultMaxLease}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// WithWindow sets the time a bucket takes to refill from empty to full, so
// the refill rate is limit/window (NewMemory; default DefaultWindow). The
// simulator scales a provider's minute down, and a store serving it must use
// the same window. A non-positive d means the default.
func WithWindow(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d <= 0 {
			d = DefaultWindow
		}
		o.window = d
	})
}

// WithMaxLease sets how long a reservation survives without being touched
// before the store drops it, releasing its hold and keeping its charges
// (NewMemory; default DefaultMaxLease). A non-positive d means the default.
func WithMaxLease(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d <= 0 {
			d = DefaultMaxLease
		}
		o.maxLease = d
	})
}

// WithClock sets the clock a Budget reads the current time from (New;
// default nil, the real clock).
func WithClock(c Clock) Option {
	return optionFunc(func(o *options) { o.clock = c })
}

// WithIDGenerator sets how a Budget names its reservations (New). f must
// return ids unique among the open reservations of every process sharing
// the store, and must be safe for concurrent use. The default is a random
// per-Budget prefix followed by a counter. A nil f means the default.
func WithIDGenerator(f func() string) Option {
	return optionFunc(func(o *options) { o.newID = f })
}

// Clock tells a Budget the time. Use a fake in tests, or the real clock
// inside a testing/synctest bubble.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now returns f().
func (f ClockFunc) Now() time.Time { return f() }
