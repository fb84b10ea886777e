package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/streamgate/streamgate/sim"
)

// The official SDKs talk to the proxy unmodified: only the base URL and
// the key are set, as a user sets ANTHROPIC_BASE_URL / OPENAI_BASE_URL. The
// SDKs' own retries are off, so a complete result after an injected fault
// proves the proxy handled it.

func anthropicSDK(t *testing.T, url string, opts ...aoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]aoption.RequestOption{
		aoption.WithBaseURL(url), aoption.WithAPIKey("sk-ant-sdk-test"),
		aoption.WithHTTPClient(testClient(t)), aoption.WithMaxRetries(0),
	}, opts...)...)
}

func openAISDK(t *testing.T, url string, opts ...ooption.RequestOption) openai.Client {
	return openai.NewClient(append([]ooption.RequestOption{
		ooption.WithBaseURL(url + "/v1/"), ooption.WithAPIKey("sk-openai-sdk-test"),
		ooption.WithHTTPClient(testClient(t)), ooption.WithMaxRetries(0),
	}, opts...)...)
}

func messageParams(prompt string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1000,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
	}
}

func chatParams(prompt string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}
}

// anthropicStream runs a streaming request and returns the accumulated text
// and the stream's error.
func anthropicStream(ctx context.Context, c anthropic.Client, p anthropic.MessageNewParams) (anthropic.Message, error) {
	stream := c.Messages.NewStreaming(ctx, p)
	defer stream.Close()
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			return msg, err
		}
	}
	return msg, stream.Err()
}

func messageText(m anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

func openAIStream(ctx context.Context, c openai.Client, p openai.ChatCompletionNewParams) (string, string, error) {
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(ctx, p)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		return "", "", err
	}
	if len(acc.Choices) == 0 {
		return "", "", errors.New("no choices")
	}
	return acc.Choices[0].Message.Content, string(acc.Choices[0].FinishReason), nil
}

func TestAnthropicSDKThroughProxy(t *testing.T) {
	st := startStack(t, fastSim(), Config{})
	ctx := context.Background()
	gen := st.sim.Generator()
	tests := []struct {
		name   string
		stream bool
		fault  string
	}{
		{"non-streaming", false, ""},
		{"streaming", true, ""},
		{"non-streaming after a 529", false, "529"},
		{"streaming after a 529", true, "529"},
		{"streaming after a 429", true, "429;retry=0.05"},
		{"streaming after a 500", true, "500"},
		{"streaming after a connection reset", true, "reset"},
		{"non-streaming after a 503", false, "503"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prompt := "[sim:tokens=80] proxy test " + tt.name
			want := gen.Text(conv(prompt))
			var opts []aoption.RequestOption
			if tt.fault != "" {
				opts = append(opts, aoption.WithHeader(sim.FaultHeader, tt.fault+";id=a"+string(rune('a'+i))))
			}
			client := anthropicSDK(t, st.url, opts...)
			var msg anthropic.Message
			var err error
			if tt.stream {
				msg, err = anthropicStream(ctx, client, messageParams(prompt))
			} else {
				var m *anthropic.Message
				m, err = client.Messages.New(ctx, messageParams(prompt))
				if m != nil {
					msg = *m
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := messageText(msg); got != want {
				t.Fatalf("text %q, want %q", got, want)
			}
			if msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.OutputTokens != 80 {
				t.Fatalf("stop %q, output tokens %d", msg.StopReason, msg.Usage.OutputTokens)
			}
		})
	}
	t.Run("count tokens", func(t *testing.T) {
		p := messageParams("how many tokens is this?")
		client := anthropicSDK(t, st.url)
		n, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: p.Model, Messages: p.Messages})
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(sim.InputTokens(conv("how many tokens is this?"))); n.InputTokens != want {
			t.Fatalf("count %d, want %d", n.InputTokens, want)
		}
	})
}

func TestOpenAISDKThroughProxy(t *testing.T) {
	st := startStack(t, fastSim(), Config{})
	ctx := context.Background()
	gen := st.sim.Generator()
	tests := []struct {
		name   string
		stream bool
		fault  string
	}{
		{"non-streaming", false, ""},
		{"streaming", true, ""},
		{"streaming after a 429", true, "429;retry=0.05"},
		{"streaming after a 503", true, "503"},
		{"non-streaming after a 500", false, "500"},
		{"streaming after a connection reset", true, "reset"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prompt := "[sim:tokens=60] openai proxy test " + tt.name
			want := gen.Text(conv(prompt))
			var opts []ooption.RequestOption
			if tt.fault != "" {
				opts = append(opts, ooption.WithHeader(sim.FaultHeader, tt.fault+";id=o"+string(rune('a'+i))))
			}
			client := openAISDK(t, st.url, opts...)
			var text, finish string
			var err error
			if tt.stream {
				text, finish, err = openAIStream(ctx, client, chatParams(prompt))
			} else {
				var c *openai.ChatCompletion
				c, err = client.Chat.Completions.New(ctx, chatParams(prompt))
				if err == nil {
					text, finish = c.Choices[0].Message.Content, string(c.Choices[0].FinishReason)
					if c.Usage.CompletionTokens != 60 {
						t.Errorf("completion tokens %d, want 60", c.Usage.CompletionTokens)
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if text != want || finish != "stop" {
				t.Fatalf("text %q (finish %q), want %q", text, finish, want)
			}
		})
	}
}

// A stream cut after it started can be resumed by the scheduler, or must
// reach the SDK as an error: never as a shorter answer that looks whole.
func TestMidStreamFaultsNeverLookComplete(t *testing.T) {
	st := startStack(t, fastSim(), Config{})
	ctx := context.Background()
	gen := st.sim.Generator()
	for _, fault := range []string{"drop-midstream;at=20;cut=7", "529-midstream;at=20", "no-terminal", "malformed-event;at=10"} {
		id, _, _ := strings.Cut(fault, ";")
		t.Run("anthropic "+fault, func(t *testing.T) {
			prompt := "[sim:tokens=60] cut " + fault
			want := gen.Text(conv(prompt))
			client := anthropicSDK(t, st.url, aoption.WithHeader(sim.FaultHeader, fault+";id=a"+id))
			msg, err := anthropicStream(ctx, client, messageParams(prompt))
			if err == nil && messageText(msg) != want {
				t.Fatalf("stream ended without error but the text is %q, want %q", messageText(msg), want)
			}
			t.Logf("error: %v", err)
			requireFaultFired(t, st.sim, "a"+id)
		})
		t.Run("openai "+fault, func(t *testing.T) {
			prompt := "[sim:tokens=60] cut " + fault
			want := gen.Text(conv(prompt))
			client := openAISDK(t, st.url, ooption.WithHeader(sim.FaultHeader, fault+";id=o"+id))
			text, _, err := openAIStream(ctx, client, chatParams(prompt))
			if err == nil && text != want {
				t.Fatalf("stream ended without error but the text is %q, want %q", text, want)
			}
			t.Logf("error: %v", err)
			requireFaultFired(t, st.sim, "o"+id)
		})
	}
}

// requireFaultFired fails the test unless the simulator injected the
// fault with the given id, so a test about a fault cannot pass without it.
func requireFaultFired(t *testing.T, s *sim.Server, id string) {
	t.Helper()
	if err := s.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, rec := range s.Log() {
		if strings.HasSuffix(rec.Fault, ";id="+id) || strings.Contains(rec.Fault, ";id="+id+";") {
			return
		}
	}
	t.Fatalf("fault %q never fired", id)
}
