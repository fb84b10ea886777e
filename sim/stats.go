package sim

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// Stats is what GET /sim/stats returns: totals since the last Reset and
// the sampled level of every bucket of every key.
type Stats struct {
	// Now is when the stats were taken (Config.Clock).
	Now time.Time `json:"now"`
	// Interval is the sampling interval of the series.
	Interval time.Duration `json:"interval_ns"`
	Totals   Totals        `json:"totals"`
	// Keys has one entry per (provider, key) seen, sorted by provider then key.
	Keys []KeyStats `json:"keys"`
}

// Totals are counts over every request since the last Reset.
type Totals struct {
	Requests     int64            `json:"requests"`
	ByStatus     map[string]int64 `json:"by_status"`
	ByEnd        map[string]int64 `json:"by_end"`
	ByFault      map[string]int64 `json:"by_fault"`
	InputTokens  int64            `json:"input_tokens"`
	OutputTokens int64            `json:"output_tokens"`
	// ActiveStreams is how many admitted requests (streaming or not) are
	// generating now; PeakActiveStreams the most at once since Reset.
	ActiveStreams     int64 `json:"active_streams"`
	PeakActiveStreams int64 `json:"peak_active_streams"`
}

// KeyStats are one key's buckets on one provider's endpoint.
type KeyStats struct {
	// Key is the API key's fingerprint.
	Key      string        `json:"key"`
	Provider string        `json:"provider"`
	Buckets  []BucketStats `json:"buckets"`
}

// BucketStats is one bucket: its limit, its level now, and its sampled
// levels, oldest first (at most Config.StatsSamples).
type BucketStats struct {
	Dimension string   `json:"dimension"`
	Limit     int64    `json:"limit"`
	Level     float64  `json:"level"`
	Series    []Sample `json:"series"`
}

// Sample is a bucket's level at one instant.
type Sample struct {
	T     time.Time `json:"t"`
	Level float64   `json:"level"`
}

// series is a bounded ring of samples.
type series struct {
	s    []Sample
	head int
}

func (r *series) add(max int, x Sample) {
	if len(r.s) < max {
		r.s = append(r.s, x)
		return
	}
	r.s[r.head] = x
	r.head = (r.head + 1) % max
}

func (r *series) ordered() []Sample {
	out := make([]Sample, 0, len(r.s))
	out = append(out, r.s[r.head:]...)
	return append(out, r.s[:r.head]...)
}

// sample appends every bucket's level at now to its series.
func (a *account) sample(now time.Time, max int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for d, b := range a.b {
		if b != nil {
			a.series[d].add(max, Sample{T: now, Level: b.levelAt(now)})
		}
	}
}

// stats returns the account's KeyStats at now.
func (a *account) stats(now time.Time) KeyStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	ks := KeyStats{Key: a.key, Provider: a.provider.String()}
	for d, b := range a.b {
		if b == nil {
			continue
		}
		ks.Buckets = append(ks.Buckets, BucketStats{
			Dimension: ratelimit.Dimension(d).String(),
			Limit:     int64(b.limit),
			Level:     b.levelAt(now),
			Series:    a.series[d].ordered(),
		})
	}
	return ks
}

// totals accumulates Totals. Safe for concurrent use.
type totals struct {
	mu sync.Mutex
	t  Totals
}

func newTotals() *totals {
	return &totals{t: emptyTotals()}
}

func emptyTotals() Totals {
	return Totals{ByStatus: map[string]int64{}, ByEnd: map[string]int64{}, ByFault: map[string]int64{}}
}

func (t *totals) add(r *Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.t.Requests++
	t.t.ByStatus[strconv.Itoa(r.Status)]++
	t.t.ByEnd[r.End]++
	if r.Fault != "" {
		name, _, _ := cutSemicolon(r.Fault)
		t.t.ByFault[name]++
	}
	t.t.InputTokens += int64(r.InputTokens + r.CacheCreationTokens + r.CacheReadTokens)
	t.t.OutputTokens += int64(r.OutputTokens)
}

func (t *totals) snapshot() Totals {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := emptyTotals()
	c.Requests, c.InputTokens, c.OutputTokens = t.t.Requests, t.t.InputTokens, t.t.OutputTokens
	for k, v := range t.t.ByStatus {
		c.ByStatus[k] = v
	}
	for k, v := range t.t.ByEnd {
		c.ByEnd[k] = v
	}
	for k, v := range t.t.ByFault {
		c.ByFault[k] = v
	}
	return c
}

func (t *totals) reset() {
	t.mu.Lock()
	t.t = emptyTotals()
	t.mu.Unlock()
}

func cutSemicolon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ';' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// sortKeyStats orders keys by provider, then fingerprint.
func sortKeyStats(ks []KeyStats) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Provider != ks[j].Provider {
			return ks[i].Provider < ks[j].Provider
		}
		return ks[i].Key < ks[j].Key
	})
}
