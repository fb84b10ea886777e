package streamgate_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/sim"
)

// A Transport drops into anthropic-sdk-go through option.WithHTTPClient.
// streamgate owns retries, so the SDK's own are turned off; when
// streamgate gives up it marks the response x-should-retry: false, so an
// SDK left at its defaults does not multiply attempts either.
func ExampleNewTransport_anthropic() {
	upstream := httptest.NewServer(sim.New(sim.Config{TokensPerSecond: 5000})) // stands in for api.anthropic.com
	defer upstream.Close()

	tr := streamgate.NewTransport()
	defer tr.Close()
	client := anthropic.NewClient(
		aoption.WithBaseURL(upstream.URL),
		aoption.WithAPIKey("sk-ant-example"),
		aoption.WithHTTPClient(&http.Client{Transport: tr}),
		aoption.WithMaxRetries(0),
	)
	stream := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("[sim:tokens=40] Hello"))},
	})
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			panic(err)
		}
	}
	if err := stream.Err(); err != nil {
		// An interrupted stream is an error here (a *streamgate.StreamError),
		// never a truncated message.
		panic(err)
	}
	fmt.Println(msg.StopReason, msg.Usage.OutputTokens)
	// Output: end_turn 40
}

// The same Transport serves openai-go and any OpenAI-compatible server.
func ExampleNewTransport_openai() {
	upstream := httptest.NewServer(sim.New(sim.Config{TokensPerSecond: 5000}))
	defer upstream.Close()

	tr := streamgate.NewTransport(streamgate.WithMaxAdmissionWait(30 * time.Second))
	defer tr.Close()
	client := openai.NewClient(
		ooption.WithBaseURL(upstream.URL+"/v1/"),
		ooption.WithAPIKey("sk-example"),
		ooption.WithHTTPClient(&http.Client{Transport: tr}),
		ooption.WithMaxRetries(0),
	)
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "gpt-4o",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[sim:tokens=25] Hello")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		panic(err)
	}
	fmt.Println(acc.Choices[0].FinishReason, acc.Usage.CompletionTokens)
	// Output: stop 25
}
