package budget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

func TestKeyString(t *testing.T) {
	tests := []struct {
		key  budget.Key
		want string
	}{
		{budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_0123456789ab", ModelClass: "claude-sonnet-4"}, "anthropic/fp_0123456789ab/claude-sonnet-4"},
		{budget.Key{Provider: ratelimit.OpenAI, Fingerprint: "fp_none", ModelClass: "meta-llama/llama-3"}, "openai/fp_none/meta-llama/llama-3"},
		{budget.Key{}, "unknown//"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.key.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			back, err := budget.ParseKey(tt.want)
			if err != nil || back != tt.key {
				t.Fatalf("ParseKey(%q) = %+v, %v; want %+v", tt.want, back, err, tt.key)
			}
		})
	}
}

func TestParseKeyErrors(t *testing.T) {
	for _, s := range []string{"", "anthropic", "anthropic/fp_x", "azure/fp_x/gpt-4o", "Anthropic/fp_x/m"} {
		t.Run(s, func(t *testing.T) {
			if k, err := budget.ParseKey(s); !errors.Is(err, budget.ErrInvalid) {
				t.Fatalf("ParseKey(%q) = %+v, %v; want ErrInvalid", s, k, err)
			}
		})
	}
}

func TestLimitError(t *testing.T) {
	var err error = &budget.LimitError{Dimension: ratelimit.OutputTokens, Need: 9000, Limit: 8000}
	if !errors.Is(err, budget.ErrExceedsLimit) || errors.Is(err, budget.ErrInvalid) {
		t.Fatalf("errors.Is on %v: want ErrExceedsLimit only", err)
	}
	if got, want := err.Error(), "budget: cost 9000 exceeds output_tokens limit 8000"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestUnknownCost(t *testing.T) {
	for d, v := range budget.UnknownCost() {
		if v != -1 {
			t.Fatalf("UnknownCost()[%s] = %d, want -1", ratelimit.Dimension(d), v)
		}
	}
}

func TestMemoryOptions(t *testing.T) {
	tests := []struct {
		name          string
		opts          []budget.Option
		window, lease time.Duration
	}{
		{"Defaults", nil, budget.DefaultWindow, budget.DefaultMaxLease},
		{"Set", []budget.Option{budget.WithWindow(6 * time.Second), budget.WithMaxLease(time.Minute)}, 6 * time.Second, time.Minute},
		{"NonPositiveMeansDefault", []budget.Option{budget.WithWindow(-1), budget.WithMaxLease(0)}, budget.DefaultWindow, budget.DefaultMaxLease},
		{"NilOptionIgnored", []budget.Option{nil, budget.WithClock(nil)}, budget.DefaultWindow, budget.DefaultMaxLease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := budget.NewMemory(tt.opts...)
			if m.Window() != tt.window || m.MaxLease() != tt.lease {
				t.Fatalf("Window %v, MaxLease %v; want %v, %v", m.Window(), m.MaxLease(), tt.window, tt.lease)
			}
			ctx := context.Background()
			if err := m.SetLimits(ctx, key, limitsOf(ratelimit.Requests, 10)); err != nil {
				t.Fatal(err)
			}
			// The window sets the refill rate: a drained bucket is full one
			// window later, and refills a tenth of its limit in a tenth.
			if _, err := m.Reserve(ctx, key, "a", budget.Cost{ratelimit.Requests: 10}, budget.Cost{ratelimit.OutputTokens: 1}, t0); err != nil {
				t.Fatal(err)
			}
			res, err := m.Reserve(ctx, key, "b", budget.Cost{ratelimit.Requests: 1}, budget.Cost{}, t0)
			if err != nil || res.Admitted || res.Wait != tt.window/10 {
				t.Fatalf("Reserve on an empty bucket = %+v, %v; want Wait %v", res, err, tt.window/10)
			}
			v, _ := m.View(ctx, key, t0.Add(tt.window))
			if v.Dimensions[ratelimit.Requests].Level != 10 {
				t.Fatalf("level one window later = %v, want 10", v.Dimensions[ratelimit.Requests].Level)
			}
			// The lease drops the untouched reservation.
			if v, _ := m.View(ctx, key, t0.Add(tt.lease-1)); v.Open != 1 {
				t.Fatalf("open just before the lease ends = %d, want 1", v.Open)
			}
			if v, _ := m.View(ctx, key, t0.Add(tt.lease)); v.Open != 0 {
				t.Fatalf("open when the lease ends = %d, want 0", v.Open)
			}
		})
	}
}

func TestMemoryViewOfUnknownKey(t *testing.T) {
	m := budget.NewMemory()
	v, err := m.View(context.Background(), key, t0)
	if err != nil {
		t.Fatal(err)
	}
	for d, dv := range v.Dimensions {
		if dv.Known || dv.Limit != -1 || dv.Held != 0 {
			t.Fatalf("%s of an unseen key: %+v, want unknown", ratelimit.Dimension(d), dv)
		}
	}
	if keys, _ := m.Keys(context.Background()); len(keys) != 0 {
		t.Fatalf("Keys() after View of an unseen key = %v, want none", keys)
	}
}

func TestMemoryWaitBeyondRange(t *testing.T) {
	// A debt so deep its refill time overflows a Duration reports the
	// longest Duration instead of wrapping around.
	m := budget.NewMemory(budget.WithWindow(time.Duration(1 << 62)))
	ctx := context.Background()
	_ = m.SetLimits(ctx, key, limitsOf(ratelimit.OutputTokens, 1))
	if _, err := m.Reserve(ctx, key, "a", budget.Cost{}, budget.Cost{ratelimit.OutputTokens: 1}, t0); err != nil {
		t.Fatal(err)
	}
	if err := m.Consume(ctx, key, "a", ratelimit.OutputTokens, budget.MaxAmount, t0); err != nil {
		t.Fatal(err)
	}
	res, err := m.Reserve(ctx, key, "b", budget.Cost{}, budget.Cost{ratelimit.OutputTokens: 1}, t0)
	if err != nil || res.Admitted || res.Wait <= 0 {
		t.Fatalf("Reserve under a huge debt = %+v, %v; want refused with a positive Wait", res, err)
	}
}
