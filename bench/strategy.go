package bench

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/streamgate/streamgate"
)

// SDK is the official anthropic-sdk-go client with its default retries (2,
// honouring retry-after, else 0.5s x 2^n capped at 8s with jitter), no
// mid-stream retry, and Concurrency workers: what a user already has.
type SDK struct {
	// Concurrency is the number of requests in flight (default 16).
	Concurrency int
}

// Name implements Strategy.
func (SDK) Name() string { return "sdk" }

// Run implements Strategy.
func (s SDK) Run(ctx context.Context, baseURL, apiKey string, sc Scenario) []Outcome {
	client := anthropic.NewClient(option.WithBaseURL(baseURL), option.WithAPIKey(apiKey))
	return runPool(ctx, client, sc, max(s.Concurrency, 16))
}

// Streamgate is the same SDK client with streamgate's Transport plugged in
// through option.WithHTTPClient and the SDK's own retries off; every request
// is submitted at once and the Transport schedules them.
type Streamgate struct {
	// Label names the variant in results (default "streamgate").
	Label string
	// Options are extra Transport options.
	Options []streamgate.Option
}

// Name implements Strategy.
func (s Streamgate) Name() string {
	if s.Label != "" {
		return s.Label
	}
	return "streamgate"
}

// Run implements Strategy.
func (s Streamgate) Run(ctx context.Context, baseURL, apiKey string, sc Scenario) []Outcome {
	opts := append([]streamgate.Option{streamgate.WithWindow(sc.Sim.Window)}, s.Options...)
	tr := streamgate.NewTransport(opts...)
	defer tr.Close()
	client := anthropic.NewClient(
		option.WithBaseURL(baseURL),
		option.WithAPIKey(apiKey),
		option.WithHTTPClient(&http.Client{Transport: tr}),
		option.WithMaxRetries(0),
	)
	return runPool(ctx, client, sc, len(sc.Requests))
}

// runPool streams every request with workers goroutines.
func runPool(ctx context.Context, client anthropic.Client, sc Scenario, workers int) []Outcome {
	outs := make([]Outcome, len(sc.Requests))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(sc.Requests)) {
		wg.Go(func() {
			for i := range next {
				outs[i] = streamOne(ctx, client, sc.Requests[i])
			}
		})
	}
	for i := range sc.Requests {
		next <- i
	}
	close(next)
	wg.Wait()
	return outs
}

func streamOne(ctx context.Context, client anthropic.Client, r Request) Outcome {
	start := time.Now()
	stream := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: int64(r.MaxTokens),
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(r.Prompt))},
	})
	defer stream.Close()
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			return Outcome{Err: err, Latency: time.Since(start)}
		}
	}
	out := Outcome{Err: stream.Err(), Latency: time.Since(start)}
	for _, b := range msg.Content {
		out.Text += b.Text
	}
	return out
}
