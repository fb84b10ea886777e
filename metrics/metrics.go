// Package metrics exposes streamgate's scheduling as Prometheus metrics. A
// Metrics is fed two ways: every streamgate.Event (register Observe with
// streamgate.WithObserver) drives the counters and histograms, and at
// scrape time it reads the queue depth, streams in flight and every budget
// dimension of every key from a Source (a *streamgate.Transport).
//
// Labels identify a budget by provider, API key fingerprint and model
// class. An API key itself is never a label: the fingerprint
// (fingerprint.Of) is the only name a key has here.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
)

// Namespace prefixes every metric name.
const Namespace = "streamgate"

// Source is what the scrape-time gauges are read from. *streamgate.Transport
// implements it.
type Source interface {
	// Keys returns every budget key with its gate statistics.
	Keys() map[budget.Key]gate.Stats
	// Budget returns the budget the keys are scheduled against.
	Budget() *budget.Budget
}

var _ Source = (*streamgate.Transport)(nil)

// Option configures New.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	runtime        bool
	latencyBuckets []float64
	waitBuckets    []float64
	viewTimeout    time.Duration
}

// WithoutRuntimeMetrics leaves the Go runtime and process collectors out
// of the registry (they are included by default).
func WithoutRuntimeMetrics() Option {
	return optionFunc(func(o *options) { o.runtime = false })
}

// WithLatencyBuckets sets the buckets, in seconds, of the added-latency
// histogram (default: 50µs to about 0.8s, doubling).
func WithLatencyBuckets(b []float64) Option {
	return optionFunc(func(o *options) {
		if len(b) > 0 {
			o.latencyBuckets = b
		}
	})
}

// WithWaitBuckets sets the buckets, in seconds, of the admission-wait
// histogram (default: 1ms to about 65s, doubling).
func WithWaitBuckets(b []float64) Option {
	return optionFunc(func(o *options) {
		if len(b) > 0 {
			o.waitBuckets = b
		}
	})
}

// Label names.
const (
	LabelProvider    = "provider"
	LabelFingerprint = "fingerprint"
	LabelModelClass  = "model_class"
	LabelEndpoint    = "endpoint"
	LabelOutcome     = "outcome"
	LabelCode        = "code"
	LabelClass       = "class"
	LabelReason      = "reason"
	LabelDimension   = "dimension"
	LabelPriority    = "priority"
)

var keyLabels = []string{LabelProvider, LabelFingerprint, LabelModelClass}

func withKey(extra ...string) []string {
	return append(append([]string{}, keyLabels...), extra...)
}

// Metrics holds streamgate's Prometheus metrics in its own registry. Make
// one with New; the zero value is not usable. It is safe for concurrent
// use: Observe may be called from any goroutine.
type Metrics struct {
	reg         *prometheus.Registry
	viewTimeout time.Duration

	requests     *prometheus.CounterVec
	responses    *prometheus.CounterVec
	streamErrors *prometheus.CounterVec
	retries      *prometheus.CounterVec
	resumes      *prometheus.CounterVec
	wasted       *prometheus.CounterVec
	inputTokens  *prometheus.CounterVec
	outputTokens *prometheus.CounterVec
	wait         *prometheus.HistogramVec
	added        prometheus.Histogram

	mu  sync.Mutex
	src Source
}

// New returns Metrics registered in a fresh registry.
func New(opts ...Option) *Metrics {
	o := options{
		runtime:        true,
		latencyBuckets: prometheus.ExponentialBuckets(50e-6, 2, 15),
		waitBuckets:    prometheus.ExponentialBuckets(1e-3, 2, 17),
		viewTimeout:    2 * time.Second,
	}
	for _, opt := range opts {
		opt.apply(&o)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, withKey(labels...))
	}
	m := &Metrics{
		reg:         prometheus.NewRegistry(),
		viewTimeout: o.viewTimeout,
		requests: counter("requests_total",
			"Scheduled requests by how they ended: completed, failed, rejected (not admitted) or cancelled (the caller went away).",
			LabelEndpoint, LabelOutcome),
		responses: counter("upstream_responses_total",
			"Upstream responses by HTTP status code (every attempt, including 429, 529 and 5xx).",
			LabelCode),
		streamErrors: counter("stream_errors_total",
			"Streams interrupted after they had started (error event, truncation, stall), by failure class.",
			LabelClass),
		retries: counter("retries_total",
			"Attempts that failed and were retried, by failure class.",
			LabelClass),
		resumes: counter("resumes_total",
			"Interrupted streams resumed by a continuation request."),
		wasted: counter("wasted_output_tokens_total",
			"Output tokens produced upstream and then lost: the stream failed, was resumed (the part cut in transit) or its caller went away.",
			LabelReason),
		inputTokens: counter("input_tokens_total",
			"Input tokens of completed requests, as reported by the provider."),
		outputTokens: counter("output_tokens_total",
			"Output tokens of completed requests, as reported by the provider."),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "admission_wait_seconds",
			Help:    "Time requests waited in the admission queue before being sent upstream.",
			Buckets: o.waitBuckets,
		}, withKey()),
		added: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "added_latency_seconds",
			Help:    "Time the proxy itself added to a request, outside admission waits and the upstream: routing and authentication before scheduling, and passing the response head on to the client.",
			Buckets: o.latencyBuckets,
		}),
	}
	m.reg.MustRegister(m.requests, m.responses, m.streamErrors, m.retries, m.resumes, m.wasted,
		m.inputTokens, m.outputTokens, m.wait, m.added, (*budgetCollector)(m))
	if o.runtime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry holding every metric, to serve it or to
// gather it into another.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Watch sets the Source the scrape-time gauges are read from (nil stops
// reporting them). The Transport is usually built with Observe as its
// observer, so Watch is called once it exists.
func (m *Metrics) Watch(src Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.src = src
}

func (m *Metrics) source() Source {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.src
}

// ObserveAddedLatency records time the proxy itself added to one request.
func (m *Metrics) ObserveAddedLatency(d time.Duration) {
	m.added.Observe(max(d, 0).Seconds())
}

func keyValues(k budget.Key, extra ...string) []string {
	return append([]string{k.Provider.String(), k.Fingerprint, k.ModelClass}, extra...)
}

// Observe updates the metrics with one Event. Pass it to
// streamgate.WithObserver; it does not block.
func (m *Metrics) Observe(e streamgate.Event) {
	k := e.Key
	switch e.Kind {
	case streamgate.EventAdmitted:
		m.wait.WithLabelValues(keyValues(k)...).Observe(e.Wait.Seconds())
	case streamgate.EventRejected:
		m.requests.WithLabelValues(keyValues(k, e.Endpoint.String(), "rejected")...).Inc()
	case streamgate.EventHeaders:
		m.responses.WithLabelValues(keyValues(k, strconv.Itoa(e.Status))...).Inc()
	case streamgate.EventRetry:
		m.retries.WithLabelValues(keyValues(k, e.Class.String())...).Inc()
	case streamgate.EventCompleted:
		m.requests.WithLabelValues(keyValues(k, e.Endpoint.String(), "completed")...).Inc()
		if e.InputTokens > 0 {
			m.inputTokens.WithLabelValues(keyValues(k)...).Add(float64(e.InputTokens))
		}
		if e.OutputTokens > 0 {
			m.outputTokens.WithLabelValues(keyValues(k)...).Add(float64(e.OutputTokens))
		}
	case streamgate.EventFailed:
		m.requests.WithLabelValues(keyValues(k, e.Endpoint.String(), "failed")...).Inc()
		if e.Status == http.StatusOK {
			// A failure after a 200 is a stream interrupted mid-way.
			m.streamErrors.WithLabelValues(keyValues(k, e.Class.String())...).Inc()
			if e.OutputTokens > 0 {
				m.wasted.WithLabelValues(keyValues(k, "failed")...).Add(float64(e.OutputTokens))
			}
		}
	case streamgate.EventResume:
		// An interruption the Transport recovers from by continuing the
		// stream: count the interruption, the resume and what was lost.
		m.resumes.WithLabelValues(keyValues(k)...).Inc()
		m.streamErrors.WithLabelValues(keyValues(k, e.Class.String())...).Inc()
		if e.Wasted > 0 {
			m.wasted.WithLabelValues(keyValues(k, "resumed")...).Add(float64(e.Wasted))
		}
	case streamgate.EventCancelled:
		m.requests.WithLabelValues(keyValues(k, e.Endpoint.String(), "cancelled")...).Inc()
		if e.OutputTokens > 0 {
			m.wasted.WithLabelValues(keyValues(k, "cancelled")...).Add(float64(e.OutputTokens))
		}
	}
}

// budgetCollector reads the Source at scrape time.
type budgetCollector Metrics

var (
	descQueue = prometheus.NewDesc(Namespace+"_queue_depth",
		"Requests waiting for admission, by priority.", withKey(LabelPriority), nil)
	descInFlight = prometheus.NewDesc(Namespace+"_in_flight",
		"Admitted requests and streams not yet finished.", withKey(), nil)
	descConcurrency = prometheus.NewDesc(Namespace+"_concurrency_limit",
		"The gate's current limit on requests in flight.", withKey(), nil)
	descOpenRate = prometheus.NewDesc(Namespace+"_open_rate",
		"The gate's current rate of opening new streams, per second.", withKey(), nil)
	descLimit = prometheus.NewDesc(Namespace+"_budget_limit",
		"A budget dimension's limit per window (known dimensions only).", withKey(LabelDimension), nil)
	descRemaining = prometheus.NewDesc(Namespace+"_budget_remaining",
		"A budget dimension's predicted remaining level, refilled to now (known dimensions only).", withKey(LabelDimension), nil)
	descHeld = prometheus.NewDesc(Namespace+"_budget_held",
		"Output reserved for streams in flight and not yet produced.", withKey(LabelDimension), nil)
	descOpen = prometheus.NewDesc(Namespace+"_budget_open_reservations",
		"Open budget reservations.", withKey(), nil)
)

// Describe implements prometheus.Collector.
func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descInFlight, descConcurrency, descOpenRate, descLimit, descRemaining, descHeld, descOpen} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	src := (*Metrics)(c).source()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.viewTimeout)
	defer cancel()
	b := src.Budget()
	for k, st := range src.Keys() {
		lv := keyValues(k)
		for p := range gate.NumPriorities {
			ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(st.Queued[p]), keyValues(k, gate.Priority(p).String())...)
		}
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight), lv...)
		ch <- prometheus.MustNewConstMetric(descConcurrency, prometheus.GaugeValue, float64(st.Limit), lv...)
		ch <- prometheus.MustNewConstMetric(descOpenRate, prometheus.GaugeValue, st.OpenRate, lv...)
		if b == nil {
			continue
		}
		v, err := b.View(ctx, k)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(v.Open), lv...)
		for d, dv := range v.Dimensions {
			dim := ratelimit.Dimension(d).String()
			if dv.Held > 0 || dv.Known {
				ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(dv.Held), keyValues(k, dim)...)
			}
			if !dv.Known {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(dv.Limit), keyValues(k, dim)...)
			ch <- prometheus.MustNewConstMetric(descRemaining, prometheus.GaugeValue, dv.Level, keyValues(k, dim)...)
		}
	}
}
