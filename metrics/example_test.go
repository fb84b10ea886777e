package metrics_test

import (
	"fmt"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/fingerprint"
	"github.com/streamgate/streamgate/metrics"
	"github.com/streamgate/streamgate/ratelimit"
)

// A Transport's events drive the counters; the Transport is also the
// Source of the scrape-time budget gauges.
func Example() {
	m := metrics.New(metrics.WithoutRuntimeMetrics())
	tr := streamgate.NewTransport(streamgate.WithObserver(m.Observe))
	defer tr.Close()
	m.Watch(tr)

	// What a Transport reports for a request that met a 429 and was then
	// retried to completion:
	key := budget.Key{Provider: ratelimit.Anthropic, Fingerprint: fingerprint.Of("sk-ant-example"), ModelClass: "claude-sonnet-4"}
	m.Observe(streamgate.Event{Kind: streamgate.EventHeaders, Key: key, Status: 429})
	m.Observe(streamgate.Event{Kind: streamgate.EventRetry, Key: key, Class: apierr.RateLimited})
	m.Observe(streamgate.Event{Kind: streamgate.EventHeaders, Key: key, Status: 200})
	m.Observe(streamgate.Event{Kind: streamgate.EventCompleted, Key: key, Endpoint: streamgate.AnthropicMessages, OutputTokens: 120})

	families, _ := m.Registry().Gather()
	for _, f := range families {
		for _, s := range f.GetMetric() {
			if c := s.GetCounter(); c != nil {
				labels := ""
				for _, l := range s.GetLabel() {
					if n := l.GetName(); n == "code" || n == "class" || n == "outcome" {
						labels += " " + n + "=" + l.GetValue()
					}
				}
				fmt.Printf("%s%s %g\n", f.GetName(), labels, c.GetValue())
			}
		}
	}
	// Output:
	// streamgate_output_tokens_total 120
	// streamgate_requests_total outcome=completed 1
	// streamgate_retries_total class=rate_limited 1
	// streamgate_upstream_responses_total code=200 1
	// streamgate_upstream_responses_total code=429 1
}
