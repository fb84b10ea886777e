package metrics

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var key = budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_0123456789ab", ModelClass: "claude-sonnet-4"}

func TestEventsDriveCounters(t *testing.T) {
	m := New(WithoutRuntimeMetrics())
	ep := streamgate.AnthropicMessages
	events := []streamgate.Event{
		{Kind: streamgate.EventQueued, Key: key, Endpoint: ep},
		{Kind: streamgate.EventAdmitted, Key: key, Endpoint: ep, Wait: 250 * time.Millisecond},
		{Kind: streamgate.EventHeaders, Key: key, Status: 529},
		{Kind: streamgate.EventRetry, Key: key, Class: apierr.Overloaded},
		{Kind: streamgate.EventHeaders, Key: key, Status: 200},
		{Kind: streamgate.EventCompleted, Key: key, Endpoint: ep, InputTokens: 40, OutputTokens: 100},
		{Kind: streamgate.EventHeaders, Key: key, Status: 200},
		{Kind: streamgate.EventFailed, Key: key, Endpoint: ep, Status: 200, Class: apierr.RateLimited, OutputTokens: 70},
		{Kind: streamgate.EventHeaders, Key: key, Status: 400},
		{Kind: streamgate.EventFailed, Key: key, Endpoint: ep, Status: 400, Class: apierr.InvalidRequest},
		{Kind: streamgate.EventCancelled, Key: key, Endpoint: ep, OutputTokens: 5},
		{Kind: streamgate.EventResume, Key: key, Endpoint: ep, Class: apierr.Overloaded, OutputTokens: 30, Wasted: 3},
		{Kind: streamgate.EventRejected, Key: key, Endpoint: ep, Err: errors.New("queue full")},
	}
	for _, e := range events {
		m.Observe(e)
	}
	lv := func(extra ...string) []string { return keyValues(key, extra...) }
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"completed", testutil.ToFloat64(m.requests.WithLabelValues(lv("anthropic_messages", "completed")...)), 1},
		{"failed", testutil.ToFloat64(m.requests.WithLabelValues(lv("anthropic_messages", "failed")...)), 2},
		{"cancelled", testutil.ToFloat64(m.requests.WithLabelValues(lv("anthropic_messages", "cancelled")...)), 1},
		{"rejected", testutil.ToFloat64(m.requests.WithLabelValues(lv("anthropic_messages", "rejected")...)), 1},
		{"529s", testutil.ToFloat64(m.responses.WithLabelValues(lv("529")...)), 1},
		{"200s", testutil.ToFloat64(m.responses.WithLabelValues(lv("200")...)), 2},
		{"retries", testutil.ToFloat64(m.retries.WithLabelValues(lv("overloaded")...)), 1},
		{"mid-stream errors", testutil.ToFloat64(m.streamErrors.WithLabelValues(lv("rate_limited")...)), 1},
		{"pre-stream failure is not a stream error", testutil.ToFloat64(m.streamErrors.WithLabelValues(lv("invalid_request")...)), 0},
		{"wasted by failure", testutil.ToFloat64(m.wasted.WithLabelValues(lv("failed")...)), 70},
		{"wasted by cancel", testutil.ToFloat64(m.wasted.WithLabelValues(lv("cancelled")...)), 5},
		{"wasted by resume", testutil.ToFloat64(m.wasted.WithLabelValues(lv("resumed")...)), 3},
		{"resumes", testutil.ToFloat64(m.resumes.WithLabelValues(lv()...)), 1},
		{"resumed interruption is a stream error", testutil.ToFloat64(m.streamErrors.WithLabelValues(lv("overloaded")...)), 1},
		{"input tokens", testutil.ToFloat64(m.inputTokens.WithLabelValues(lv()...)), 40},
		{"output tokens", testutil.ToFloat64(m.outputTokens.WithLabelValues(lv()...)), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if n := testutil.CollectAndCount(m.wait); n != 1 {
		t.Fatalf("admission wait histogram has %d series", n)
	}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP streamgate_admission_wait_seconds Time requests waited in the admission queue before being sent upstream.
# TYPE streamgate_admission_wait_seconds histogram
`+histogramText(key, 0.25, m)), "streamgate_admission_wait_seconds"); err != nil {
		t.Fatal(err)
	}
}

// histogramText renders the expected exposition of one observation v in
// the default wait buckets.
func histogramText(k budget.Key, v float64, m *Metrics) string {
	var b strings.Builder
	labels := `fingerprint="` + k.Fingerprint + `",model_class="` + k.ModelClass + `",provider="` + k.Provider.String() + `"`
	for i := range 17 {
		le := 1e-3 * math.Pow(2, float64(i))
		n := 0
		if v <= le {
			n = 1
		}
		b.WriteString("streamgate_admission_wait_seconds_bucket{" + labels + `,le="` + formatFloat(le) + `"} ` + formatFloat(float64(n)) + "\n")
	}
	b.WriteString("streamgate_admission_wait_seconds_bucket{" + labels + `,le="+Inf"} 1` + "\n")
	b.WriteString("streamgate_admission_wait_seconds_sum{" + labels + "} " + formatFloat(v) + "\n")
	b.WriteString("streamgate_admission_wait_seconds_count{" + labels + "} 1\n")
	return b.String()
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// fakeSource is a Source with one key.
type fakeSource struct {
	b     *budget.Budget
	stats gate.Stats
}

func (f fakeSource) Keys() map[budget.Key]gate.Stats { return map[budget.Key]gate.Stats{key: f.stats} }
func (f fakeSource) Budget() *budget.Budget          { return f.b }

func TestScrapeReadsTheBudget(t *testing.T) {
	ctx := context.Background()
	b := budget.New(budget.NewMemory(budget.WithWindow(time.Minute)))
	limits := budget.UnknownCost()
	limits[ratelimit.Requests], limits[ratelimit.OutputTokens] = 50, 8000
	if err := b.SetLimits(ctx, key, limits); err != nil {
		t.Fatal(err)
	}
	var charge, hold budget.Cost
	charge[ratelimit.Requests], hold[ratelimit.OutputTokens] = 1, 1000
	res, result, err := b.Reserve(ctx, key, charge, hold)
	if err != nil || !result.Admitted {
		t.Fatalf("reserve: %+v %v", result, err)
	}
	defer res.Cancel()
	var st gate.Stats
	st.Queued[gate.Batch], st.InFlight, st.Limit, st.OpenRate = 3, 1, 8, 2.5
	m := New(WithoutRuntimeMetrics())
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	if strings.Contains(scrape(), "streamgate_budget_limit") {
		t.Fatal("gauges reported before Watch")
	}
	m.Watch(fakeSource{b: b, stats: st})
	text := scrape()
	labels := `fingerprint="fp_0123456789ab",model_class="claude-sonnet-4",provider="anthropic"`
	for _, want := range []string{
		`streamgate_queue_depth{fingerprint="fp_0123456789ab",model_class="claude-sonnet-4",priority="batch",provider="anthropic"} 3`,
		`streamgate_queue_depth{fingerprint="fp_0123456789ab",model_class="claude-sonnet-4",priority="interactive",provider="anthropic"} 0`,
		`streamgate_in_flight{` + labels + `} 1`,
		`streamgate_concurrency_limit{` + labels + `} 8`,
		`streamgate_open_rate{` + labels + `} 2.5`,
		`streamgate_budget_limit{dimension="requests",` + labels + `} 50`,
		`streamgate_budget_limit{dimension="output_tokens",` + labels + `} 8000`,
		`streamgate_budget_held{dimension="output_tokens",` + labels + `} 1000`,
		`streamgate_budget_open_reservations{` + labels + `} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}
	// Remaining reflects the request just charged (49, plus a sliver of
	// refill since).
	if !strings.Contains(text, `streamgate_budget_remaining{dimension="requests",`+labels+`} 49`) {
		t.Errorf("remaining requests not ~49:\n%s", text)
	}
	if strings.Contains(text, `streamgate_budget_limit{dimension="input_tokens"`) {
		t.Error("an unknown dimension has a limit")
	}
}

func TestAddedLatencyHistogram(t *testing.T) {
	m := New(WithoutRuntimeMetrics(), WithLatencyBuckets([]float64{0.001, 0.01}))
	m.ObserveAddedLatency(500 * time.Microsecond)
	m.ObserveAddedLatency(5 * time.Millisecond)
	m.ObserveAddedLatency(-time.Millisecond) // clamped to 0
	err := testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP streamgate_added_latency_seconds Time the proxy itself added to a request, outside admission waits and the upstream: routing and authentication before scheduling, and passing the response head on to the client.
# TYPE streamgate_added_latency_seconds histogram
streamgate_added_latency_seconds_bucket{le="0.001"} 2
streamgate_added_latency_seconds_bucket{le="0.01"} 3
streamgate_added_latency_seconds_bucket{le="+Inf"} 3
streamgate_added_latency_seconds_sum 0.0055
streamgate_added_latency_seconds_count 3
`), "streamgate_added_latency_seconds")
	if err != nil {
		t.Fatal(err)
	}
}

func TestRuntimeMetricsByDefault(t *testing.T) {
	names := func(m *Metrics) string {
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, f := range fams {
			b.WriteString(f.GetName() + "\n")
		}
		return b.String()
	}
	if !strings.Contains(names(New()), "go_goroutines\n") {
		t.Fatal("no Go runtime metrics by default")
	}
	if strings.Contains(names(New(WithoutRuntimeMetrics())), "go_goroutines\n") {
		t.Fatal("runtime metrics despite WithoutRuntimeMetrics")
	}
}
