package ratelimit

import (
	"math"
	"strings"
	"testing"
	"time"
)

// snap returns a Snapshot at arrival with every bucket unknown except the
// given ones.
func snap(buckets map[Dimension]Bucket) Snapshot {
	s := Snapshot{At: arrival, RetryAfter: -1}
	for i := range s.Buckets {
		s.Buckets[i] = UnknownBucket()
	}
	for d, b := range buckets {
		s.Buckets[d] = b
	}
	return s
}

func known(remaining, limit int64) Bucket {
	return Bucket{Limit: limit, Remaining: remaining, Granularity: 1}
}

func TestSnapshotBucket(t *testing.T) {
	s := snap(map[Dimension]Bucket{OutputTokens: known(3, 9)})
	if b := s.Bucket(OutputTokens); b.Remaining != 3 || b.Limit != 9 {
		t.Errorf("Bucket(output_tokens) = %+v", b)
	}
	for _, d := range []Dimension{Dimension(NumDimensions), 255} {
		if b := s.Bucket(d); b != UnknownBucket() {
			t.Errorf("Bucket(%d) = %+v, want UnknownBucket()", d, b)
		}
	}
}

func TestSnapshotBinding(t *testing.T) {
	big := int64(1) << 62
	tests := []struct {
		name    string
		buckets map[Dimension]Bucket
		want    Dimension
		wantOK  bool
	}{
		{"none known", nil, 0, false},
		{"only partial buckets", map[Dimension]Bucket{Requests: {Limit: 50, Remaining: -1}, Tokens: {Limit: -1, Remaining: 3}}, 0, false},
		{"zero limit ignored", map[Dimension]Bucket{Requests: known(0, 0)}, 0, false},
		{"single", map[Dimension]Bucket{Tokens: known(10, 100)}, Tokens, true},
		{"lowest fraction wins over lowest count", map[Dimension]Bucket{
			Requests:     known(5, 50),        // 10%
			OutputTokens: known(48000, 80000), // 60%
			InputTokens:  known(1000, 40000),  // 2.5%
		}, InputTokens, true},
		{"exhausted output with healthy requests", map[Dimension]Bucket{
			Requests:     known(42, 50),
			OutputTokens: known(0, 8000),
		}, OutputTokens, true},
		{"tie goes to the lower dimension", map[Dimension]Bucket{
			Tokens:       known(1, 2),
			OutputTokens: known(2, 4),
		}, OutputTokens, true},
		{"exact comparison of huge values", map[Dimension]Bucket{
			Requests: known(big-1, big), // just under 1
			Tokens:   known(big-2, big), // further under 1
		}, Tokens, true},
		{"remaining above limit", map[Dimension]Bucket{
			Requests: known(90, 50),
			Tokens:   known(60, 50),
		}, Tokens, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := snap(tt.buckets).Binding()
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Errorf("Binding = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSnapshotFullAt(t *testing.T) {
	reset := arrival.Add(42 * time.Second)
	s := snap(map[Dimension]Bucket{
		OutputTokens: {Limit: 10, Remaining: 1, Reset: reset, Granularity: 1},
		Requests:     known(1, 10),
	})
	if got, ok := s.FullAt(OutputTokens); !ok || !got.Equal(reset) {
		t.Errorf("FullAt(output_tokens) = %v, %v; want %v, true", got, ok, reset)
	}
	if _, ok := s.FullAt(Requests); ok {
		t.Error("FullAt(requests) known without a reset")
	}
	if _, ok := s.FullAt(Dimension(200)); ok {
		t.Error("FullAt(invalid) known")
	}
}

func TestSnapshotAvailableIn(t *testing.T) {
	at := func(d time.Duration) time.Time { return arrival.Add(d) }
	tests := []struct {
		name   string
		b      Bucket
		n      int64
		window time.Duration
		want   time.Duration
		wantOK bool
	}{
		{"enough remaining", known(10, 50), 5, time.Minute, 0, true},
		{"exactly enough", known(5, 50), 5, time.Minute, 0, true},
		{"n zero", known(0, 50), 0, time.Minute, 0, true},
		{"n negative", known(0, 50), -3, time.Minute, 0, true},
		{"unknown bucket", UnknownBucket(), 1, time.Minute, 0, false},
		{"unknown remaining", Bucket{Limit: 50, Remaining: -1}, 1, time.Minute, 0, false},
		{"more than the limit", known(50, 50), 51, time.Minute, 0, false},
		{"zero limit", known(0, 0), 1, time.Minute, 0, false},
		// 60 RPM refills 1 per second: 3 requests from empty take 3 s.
		{"window rate", known(0, 60), 3, time.Minute, 3 * time.Second, true},
		{"window rate partial", known(2, 60), 3, time.Minute, time.Second, true},
		// 3 per second: one unit takes 1/3 s, rounded up to the nanosecond.
		{"rounds up", known(0, 3), 1, time.Second, 333333334, true},
		{"no window and no reset", known(0, 60), 1, 0, 0, false},
		// Reset says the 60 missing requests refill in 30 s: 2 per second.
		{"reset rate", Bucket{Limit: 60, Remaining: 0, Reset: at(30 * time.Second), Granularity: 1}, 3, time.Minute, 1500 * time.Millisecond, true},
		{"reset rate, n = limit", Bucket{Limit: 60, Remaining: 0, Reset: at(30 * time.Second), Granularity: 1}, 60, time.Minute, 30 * time.Second, true},
		{"reset in the past uses window", Bucket{Limit: 60, Remaining: 0, Reset: at(-time.Second), Granularity: 1}, 3, time.Minute, 3 * time.Second, true},
		{"reset now uses window", Bucket{Limit: 60, Remaining: 0, Reset: arrival, Granularity: 1}, 3, time.Minute, 3 * time.Second, true},
		// Granularity 1000: "1000" may mean 500, so 1000 is not yet there.
		// 500 missing at (80000-500)/60s: 500*60/79500 s.
		{"rounded remaining is conservative", Bucket{Limit: 80000, Remaining: 1000, Reset: at(time.Minute), Granularity: 1000}, 1000, time.Minute, 377358491, true},
		{"same bucket reported exactly", Bucket{Limit: 80000, Remaining: 1000, Reset: at(time.Minute), Granularity: 1}, 1000, time.Minute, 0, true},
		{"rounded zero is not negative", Bucket{Limit: 8000, Remaining: 0, Granularity: 1000}, 8000, time.Minute, time.Minute, true},
		{"rounded remaining without reset", Bucket{Limit: 8000, Remaining: 2000, Granularity: 1000}, 2000, time.Minute, 3750 * time.Millisecond, true},
		// Output tokens: level 7500 of 80000, full in 36 s; 2500 missing:
		// 2500*36/72500 s = 1.2413793103... s, rounded up.
		{"otpm", Bucket{Limit: 80000, Remaining: 8000, Reset: at(36 * time.Second), Granularity: 1000}, 10000, time.Minute, 1241379311, true},
		{"huge values do not overflow", known(0, math.MaxInt64), math.MaxInt64, time.Duration(math.MaxInt64), time.Duration(math.MaxInt64), true},
		// (M/2)*(M-1)/M is M/2 minus about a half: rounded up, M/2.
		{"huge reset rate", Bucket{Limit: math.MaxInt64, Remaining: 0, Reset: at(time.Duration(math.MaxInt64 - 1)), Granularity: 1}, math.MaxInt64 / 2, time.Minute, time.Duration(math.MaxInt64 / 2), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snap(map[Dimension]Bucket{OutputTokens: tt.b})
			got, ok := s.AvailableIn(OutputTokens, tt.n, tt.window)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("AvailableIn(%d, %v) = %v, %v; want %v, %v", tt.n, tt.window, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestAvailableInMonotone checks the model's shape rather than single
// values: asking for more never takes less time, and never longer than a
// whole refill.
func TestAvailableInMonotone(t *testing.T) {
	buckets := []Bucket{
		known(0, 50),
		{Limit: 80000, Remaining: 12000, Reset: arrival.Add(17 * time.Second), Granularity: 1000},
		{Limit: 8000, Remaining: 0, Reset: arrival.Add(time.Minute), Granularity: 1000},
	}
	for i, b := range buckets {
		s := snap(map[Dimension]Bucket{Tokens: b})
		bound := time.Minute
		if b.Reset.After(arrival) {
			bound = b.Reset.Sub(arrival)
		}
		prev := time.Duration(-1)
		for n := int64(0); n <= b.Limit; n += max(1, b.Limit/97) {
			d, ok := s.AvailableIn(Tokens, n, time.Minute)
			if !ok {
				t.Fatalf("bucket %d: AvailableIn(%d) not ok", i, n)
			}
			if d < prev {
				t.Errorf("bucket %d: AvailableIn(%d) = %v < %v for fewer units", i, n, d, prev)
			}
			if d > bound {
				t.Errorf("bucket %d: AvailableIn(%d) = %v beyond a full refill %v", i, n, d, bound)
			}
			prev = d
		}
	}
}

func TestSnapshotString(t *testing.T) {
	s := snap(map[Dimension]Bucket{
		Requests:     {Limit: 50, Remaining: 49, Reset: arrival.Add(time.Second), Granularity: 1},
		OutputTokens: {Limit: 80000, Remaining: 8000, Reset: arrival.Add(45 * time.Second), Granularity: 1000},
		Tokens:       {Limit: -1, Remaining: -1, Reset: arrival.Add(1500 * time.Millisecond)},
	})
	s.Provider = Anthropic
	s.RetryAfter = 30 * time.Second
	s.ShouldRetry = ShouldRetryTrue
	s.RequestID = "req_01"
	want := "anthropic requests=49/50@1s output_tokens=~8000/80000@45s tokens=?/?@1.5s retry_after=30s should_retry=true request_id=req_01"
	if got := s.String(); got != want {
		t.Errorf("String() =\n %s\nwant\n %s", got, want)
	}

	empty := Parse(nil, arrival)
	if got := empty.String(); got != "unknown" {
		t.Errorf("empty String() = %q, want %q", got, "unknown")
	}

	odd := snap(nil)
	odd.RequestID = "req 1\n"
	if got := odd.String(); !strings.HasSuffix(got, `request_id="req 1\n"`) || strings.Contains(got, "\n") {
		t.Errorf("String() with an odd request id = %q, want it quoted on one line", got)
	}
}
