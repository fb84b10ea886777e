package budget

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// Memory is the in-process Store: the budgets of one process's keys behind
// one mutex. Its operations never block on anything but that mutex and
// ignore their context. Use NewMemory to make one; the zero Memory is not
// usable. A Memory is safe for concurrent use.
type Memory struct {
	cfg options

	mu   sync.Mutex
	keys map[Key]*keyState // requires mu held
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-process Store. It honours WithWindow and
// WithMaxLease.
func NewMemory(opts ...Option) *Memory {
	return &Memory{cfg: buildOptions(opts), keys: make(map[Key]*keyState)}
}

// Window returns the time a bucket takes to refill from empty.
func (m *Memory) Window() time.Duration { return m.cfg.window }

// MaxLease returns how long an untouched reservation survives.
func (m *Memory) MaxLease() time.Duration { return m.cfg.maxLease }

// state returns key's state, creating it if needed. It requires m.mu held.
func (m *Memory) state(key Key) *keyState {
	ks := m.keys[key]
	if ks == nil {
		ks = newKeyState()
		m.keys[key] = ks
	}
	return ks
}

// Reserve implements Store.
func (m *Memory) Reserve(_ context.Context, key Key, id string, charge, hold Cost, now time.Time) (Result, error) {
	if id == "" || !amountsOK(&charge, false) || !amountsOK(&hold, false) {
		return Result{}, fmt.Errorf("budget: reserve %q: empty id or amount outside [0, MaxAmount]: %w", id, ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state(key).reserve(id, &charge, &hold, now, &m.cfg)
}

// Consume implements Store.
func (m *Memory) Consume(_ context.Context, key Key, id string, d ratelimit.Dimension, n int64, now time.Time) error {
	if int(d) >= ratelimit.NumDimensions || n < 0 || n > MaxAmount {
		return fmt.Errorf("budget: consume %q: %d %s: %w", id, n, d, ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.keys[key]
	if ks == nil {
		return fmt.Errorf("budget: consume %q: %w", id, ErrUnknownReservation)
	}
	return ks.consume(id, int(d), n, now, &m.cfg)
}

// Settle implements Store.
func (m *Memory) Settle(_ context.Context, key Key, id string, actual Cost, now time.Time) error {
	if !amountsOK(&actual, true) {
		return fmt.Errorf("budget: settle %q: amount outside [-1, MaxAmount]: %w", id, ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.keys[key]
	if ks == nil {
		return fmt.Errorf("budget: settle %q: %w", id, ErrUnknownReservation)
	}
	return ks.settle(id, &actual, now, &m.cfg)
}

// Cancel implements Store.
func (m *Memory) Cancel(_ context.Context, key Key, id string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.keys[key]
	if ks == nil {
		return fmt.Errorf("budget: cancel %q: %w", id, ErrUnknownReservation)
	}
	return ks.cancel(id, now, &m.cfg)
}

// Observe implements Store.
func (m *Memory) Observe(_ context.Context, key Key, id string, snap ratelimit.Snapshot) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state(key).observe(id, &snap, &m.cfg)
	return nil
}

// SetLimits implements Store.
func (m *Memory) SetLimits(_ context.Context, key Key, limits Cost) error {
	for d, v := range limits {
		if v > MaxAmount {
			limits[d] = MaxAmount
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state(key).setLimits(&limits)
	return nil
}

// View implements Store.
func (m *Memory) View(_ context.Context, key Key, now time.Time) (View, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.keys[key]
	if ks == nil {
		return newKeyState().view(now, m.cfg.window), nil
	}
	return ks.view(now, m.cfg.window), nil
}

// Keys implements Store.
func (m *Memory) Keys(context.Context) ([]Key, error) {
	m.mu.Lock()
	keys := make([]Key, 0, len(m.keys))
	for k := range m.keys {
		keys = append(keys, k)
	}
	m.mu.Unlock()
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.String(), b.String()) })
	return keys, nil
}
