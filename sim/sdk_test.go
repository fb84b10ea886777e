package sim

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
)

// The official SDKs talk to the simulator unmodified: only the base URL
// and the key are set, as a user would.

func anthropicClient(url string, opts ...aoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]aoption.RequestOption{aoption.WithBaseURL(url), aoption.WithAPIKey("sk-ant-test")}, opts...)...)
}

func openAIClient(url string, opts ...ooption.RequestOption) openai.Client {
	return openai.NewClient(append([]ooption.RequestOption{ooption.WithBaseURL(url + "/v1/"), ooption.WithAPIKey("sk-test")}, opts...)...)
}

func TestAnthropicSDK(t *testing.T) {
	cfg := fastConfig()
	cfg.TokensPerSecond = 20_000
	s, ts := startSim(t, cfg)
	ctx := context.Background()
	client := anthropicClient(ts.URL)
	prompt := "[sim:tokens=120] Tell me about token buckets."
	want := s.Generator().Text(conv(prompt))
	params := anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1000,
		System:    []anthropic.TextBlockParam{{Text: "Be thorough."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
	}
	c := Conversation{System: "Be thorough.", Messages: []Message{{Role: "user", Text: prompt}}}
	want = s.Generator().Text(c)

	t.Run("non-streaming", func(t *testing.T) {
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != want || msg.StopReason != anthropic.StopReasonEndTurn ||
			msg.Usage.OutputTokens != 120 || msg.Usage.InputTokens != int64(InputTokens(c)) {
			t.Fatalf("message %+v", msg)
		}
	})
	t.Run("streaming with accumulate", func(t *testing.T) {
		stream := client.Messages.NewStreaming(ctx, params)
		defer stream.Close()
		var msg anthropic.Message
		for stream.Next() {
			if err := msg.Accumulate(stream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != want || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.OutputTokens != 120 {
			t.Fatalf("accumulated %+v", msg)
		}
	})
	t.Run("prefill continuation", func(t *testing.T) {
		cut := strings.TrimRight(want[:len(want)/2], " \n\t")
		p := params
		p.Messages = append(p.Messages, anthropic.NewAssistantMessage(anthropic.NewTextBlock(cut)))
		msg, err := client.Messages.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if cut+msg.Content[0].Text != want {
			t.Fatalf("prefill + continuation != answer")
		}
	})
	t.Run("count tokens", func(t *testing.T) {
		n, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
			Model:    "claude-sonnet-4-5",
			System:   anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: []anthropic.TextBlockParam{{Text: "Be thorough."}}},
			Messages: params.Messages,
		})
		if err != nil || n.InputTokens != int64(InputTokens(c)) {
			t.Fatalf("count %+v, %v", n, err)
		}
	})
	t.Run("mid-stream overload is an error", func(t *testing.T) {
		s.Reset()
		noRetry := anthropicClient(ts.URL, aoption.WithMaxRetries(0), aoption.WithHeader("x-sim-fault", "529-midstream;at=5"))
		stream := noRetry.Messages.NewStreaming(ctx, params)
		defer stream.Close()
		var msg anthropic.Message
		for stream.Next() {
			_ = msg.Accumulate(stream.Current())
		}
		var apiErr *anthropic.Error
		if err := stream.Err(); !errors.As(err, &apiErr) || !strings.Contains(err.Error(), "overloaded_error") {
			t.Fatalf("stream error %v", err)
		}
		if !strings.HasPrefix(want, msg.Content[0].Text) || msg.Content[0].Text == want {
			t.Fatalf("partial text %q", msg.Content[0].Text)
		}
	})
	t.Run("429 with retry-after is retried by the SDK", func(t *testing.T) {
		if err := s.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		s.Reset()
		// The fault fires once; the SDK's own retry then succeeds.
		retrying := anthropicClient(ts.URL, aoption.WithHeader("x-sim-fault", "429;retry=0.001"))
		msg, err := retrying.Messages.New(ctx, params)
		if err != nil || msg.Content[0].Text != want {
			t.Fatalf("%v", err)
		}
		if err := s.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if log := s.Log(); len(log) != 2 || log[0].Status != 429 || log[1].Status != 200 {
			t.Fatalf("log %+v", log)
		}
	})
	t.Run("typed API error", func(t *testing.T) {
		noRetry := anthropicClient(ts.URL, aoption.WithMaxRetries(0), aoption.WithHeader("x-sim-fault", "spend-cap"))
		_, err := noRetry.Messages.New(ctx, params)
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || !strings.HasPrefix(apiErr.RequestID, "req_011C") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestOpenAISDK(t *testing.T) {
	cfg := fastConfig()
	cfg.TokensPerSecond = 20_000
	s, ts := startSim(t, cfg)
	ctx := context.Background()
	client := openAIClient(ts.URL)
	prompt := "[sim:tokens=90] Explain rate limits."
	c := Conversation{System: "Be concise.", Messages: []Message{{Role: "user", Text: prompt}}}
	want := s.Generator().Text(c)
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be concise."), openai.UserMessage(prompt)},
	}

	t.Run("non-streaming", func(t *testing.T) {
		cc, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if len(cc.Choices) != 1 || cc.Choices[0].Message.Content != want || cc.Choices[0].FinishReason != "stop" ||
			cc.Usage.CompletionTokens != 90 || cc.Usage.PromptTokens != int64(InputTokens(c)) {
			t.Fatalf("completion %+v", cc)
		}
	})
	for _, includeUsage := range []bool{false, true} {
		name := map[bool]string{false: "streaming", true: "streaming with include_usage"}[includeUsage]
		t.Run(name, func(t *testing.T) {
			p := params
			if includeUsage {
				p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := client.Chat.Completions.NewStreaming(ctx, p)
			defer stream.Close()
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != want || acc.Choices[0].FinishReason != "stop" {
				t.Fatalf("accumulated %+v", acc.ChatCompletion)
			}
			if includeUsage && (acc.Usage.CompletionTokens != 90 || acc.Usage.PromptTokens != int64(InputTokens(c))) {
				t.Fatalf("usage %+v", acc.Usage)
			}
			if !includeUsage && acc.Usage.TotalTokens != 0 {
				t.Fatalf("usage without include_usage: %+v", acc.Usage)
			}
		})
	}
	t.Run("continue form", func(t *testing.T) {
		partial := want[:len(want)/3]
		p := params
		p.Messages = append(p.Messages, openai.AssistantMessage(partial), openai.UserMessage("Please continue."))
		cc, err := client.Chat.Completions.New(ctx, p)
		if err != nil || partial+cc.Choices[0].Message.Content != want {
			t.Fatalf("%v", err)
		}
	})
	t.Run("mid-stream error chunk", func(t *testing.T) {
		noRetry := openAIClient(ts.URL, ooption.WithMaxRetries(0), ooption.WithHeader("x-sim-fault", "529-midstream;at=4"))
		stream := noRetry.Chat.Completions.NewStreaming(ctx, params)
		defer stream.Close()
		for stream.Next() {
		}
		if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "overloaded") {
			t.Fatalf("stream error %v", err)
		}
	})
}
