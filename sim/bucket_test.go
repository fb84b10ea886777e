package sim

import (
	"math"
	"testing"
	"time"
)

func TestBucketRefillsContinuously(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	b := newBucket(600, time.Minute, t0) // 10 per second
	b.take(t0, 600)
	tests := []struct {
		after time.Duration
		want  float64
	}{
		{0, 0},
		{100 * time.Millisecond, 1},
		{time.Second, 10},
		{30 * time.Second, 300},
		{2 * time.Minute, 600}, // capped at the limit
	}
	for _, tt := range tests {
		t.Run(tt.after.String(), func(t *testing.T) {
			if got := b.levelAt(t0.Add(tt.after)); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("level after %v = %v, want %v", tt.after, got, tt.want)
			}
		})
	}
}

func TestBucketWaitForIsExactAndSufficient(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	b := newBucket(60, 6*time.Second, t0) // 10 per second
	b.take(t0, 55)                        // level 5
	d, ok := b.waitFor(t0, 12)
	if !ok || d != 700*time.Millisecond {
		t.Fatalf("waitFor(12) = %v, %v; want 700ms", d, ok)
	}
	if !b.has(t0.Add(d), 12) {
		t.Fatal("12 tokens not available after the computed wait")
	}
	if b.has(t0.Add(d-time.Millisecond), 12) {
		t.Fatal("12 tokens available before the computed wait")
	}
	if _, ok := b.waitFor(t0, 61); ok {
		t.Fatal("waitFor above the limit reported ok")
	}
	if d, _ := b.waitFor(t0, 3); d != 0 {
		t.Fatalf("waitFor(3) with level 5 = %v, want 0", d)
	}
}

func TestBucketTakeUpTo(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	b := newBucket(10, time.Second, t0)
	b.take(t0, 7.5) // level 2.5
	if got := b.takeUpTo(t0, 5); got != 2 {
		t.Fatalf("takeUpTo(5) = %d, want 2", got)
	}
	if got := b.takeUpTo(t0, 5); got != 0 {
		t.Fatalf("second takeUpTo(5) = %d, want 0", got)
	}
	if got := b.levelAt(t0); math.Abs(got-0.5) > 1e-9 {
		t.Fatalf("level = %v, want 0.5", got)
	}
}

func TestRetryAfterSecondsRoundsUp(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {2500 * time.Millisecond, 3}} {
		if got := retryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
