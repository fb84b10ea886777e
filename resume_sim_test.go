package streamgate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/sim"
)

// resumeSim is a simulator fast enough for many interrupted streams.
func resumeSim(t *testing.T) (*sim.Server, string) {
	return simUpstream(t, sim.Config{Window: 3 * time.Second, TokensPerSecond: 20_000})
}

// midStreamFaults are the interruptions a resume must heal.
var midStreamFaults = []string{"529-midstream", "drop-midstream", "no-terminal", "stall-midstream"}

type resumeCase struct {
	model  string
	fault  string
	at     int
	cut    int
	times  int
	tokens int
	prompt string
}

func (rc resumeCase) header() string {
	h := fmt.Sprintf("%s;at=%d;times=%d;id=%s", rc.fault, rc.at, rc.times, rc.prompt)
	if rc.fault == "drop-midstream" {
		h += fmt.Sprintf(";cut=%d", rc.cut)
	}
	return h
}

func randomCases(seed uint64, n int, model string) []resumeCase {
	rng := rand.New(rand.NewPCG(seed, 2))
	cs := make([]resumeCase, n)
	for i := range cs {
		tokens := 20 + rng.IntN(120)
		cs[i] = resumeCase{
			model:  model,
			fault:  midStreamFaults[rng.IntN(len(midStreamFaults))],
			at:     1 + rng.IntN(tokens-1),
			cut:    rng.IntN(40),
			times:  1 + rng.IntN(3),
			tokens: tokens,
			prompt: fmt.Sprintf("[sim:tokens=%d] resume case %d seed %d", tokens, i, seed),
		}
	}
	return cs
}

func newResumeTransport() *streamgate.Transport {
	return streamgate.NewTransport(fastRetries(), streamgate.WithWindow(3*time.Second),
		streamgate.WithIdleTimeout(300*time.Millisecond))
}

// TestResumeWithAnthropicSDK: streams interrupted at random points (error
// events, dropped connections with cuts inside events and multi-byte
// characters, missing terminal events, stalls), several times over, reach
// anthropic-sdk-go's accumulator as one complete message whose text is
// exactly the simulator's answer, for a model that accepts prefill and for
// one that rejects it.
func TestResumeWithAnthropicSDK(t *testing.T) {
	for _, model := range []string{"claude-sonnet-4-5", "claude-opus-4-6"} {
		t.Run(model, func(t *testing.T) {
			s, url := resumeSim(t)
			tr := newResumeTransport()
			defer tr.Close()
			client := anthropic.NewClient(aoption.WithBaseURL(url), aoption.WithAPIKey("sk-resume"),
				aoption.WithHTTPClient(&http.Client{Transport: tr}), aoption.WithMaxRetries(0))
			cases := randomCases(uint64(len(model)), 24, model)
			var wg sync.WaitGroup
			errs := make([]error, len(cases))
			for i, rc := range cases {
				wg.Go(func() { errs[i] = checkAnthropic(client, s, rc) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("case %d %+v: %v", i, cases[i], err)
				}
			}
			if open := tr.Budget().Open(); open != 0 {
				t.Errorf("%d reservations left open", open)
			}
		})
	}
}

func checkAnthropic(client anthropic.Client, s *sim.Server, rc resumeCase) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
		Model:     anthropic.Model(rc.model),
		MaxTokens: 1000,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(rc.prompt))},
	}, aoption.WithHeader(sim.FaultHeader, rc.header()))
	defer stream.Close()
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			return fmt.Errorf("accumulate: %w", err)
		}
	}
	if err := stream.Err(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	want := s.Generator().Text(conv(rc.prompt))
	if len(msg.Content) != 1 || msg.Content[0].Text != want {
		var got string
		for _, b := range msg.Content {
			got += b.Text
		}
		return fmt.Errorf("%d blocks, text %q\nwant %q", len(msg.Content), got, want)
	}
	if msg.StopReason != anthropic.StopReasonEndTurn {
		return fmt.Errorf("stop reason %q", msg.StopReason)
	}
	if msg.Usage.OutputTokens < int64(rc.tokens) {
		return fmt.Errorf("usage reports %d output tokens for a %d-token answer", msg.Usage.OutputTokens, rc.tokens)
	}
	return nil
}

// TestResumeWithOpenAISDK: the same through openai-go's accumulator, with
// and without the usage chunk.
func TestResumeWithOpenAISDK(t *testing.T) {
	s, url := resumeSim(t)
	tr := newResumeTransport()
	defer tr.Close()
	client := openai.NewClient(ooption.WithBaseURL(url+"/v1/"), ooption.WithAPIKey("sk-resume-oa"),
		ooption.WithHTTPClient(&http.Client{Transport: tr}), ooption.WithMaxRetries(0))
	cases := randomCases(99, 24, "gpt-4o")
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, rc := range cases {
		wg.Go(func() { errs[i] = checkOpenAI(client, s, rc, i%2 == 0) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("case %d %+v: %v", i, cases[i], err)
		}
	}
}

func checkOpenAI(client openai.Client, s *sim.Server, rc resumeCase, usage bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	params := openai.ChatCompletionNewParams{
		Model:               rc.model,
		MaxCompletionTokens: openai.Int(300),
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage(rc.prompt)},
	}
	if usage {
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	}
	stream := client.Chat.Completions.NewStreaming(ctx, params, ooption.WithHeader(sim.FaultHeader, rc.header()))
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		if !acc.AddChunk(stream.Current()) {
			return errors.New("accumulator rejected a chunk")
		}
	}
	if err := stream.Err(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	want := s.Generator().Text(conv(rc.prompt))
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != want || acc.Choices[0].FinishReason != "stop" {
		return fmt.Errorf("choices %+v\nwant %q", acc.Choices, want)
	}
	if usage && acc.Usage.CompletionTokens < int64(rc.tokens) {
		return fmt.Errorf("usage reports %d completion tokens for a %d-token answer", acc.Usage.CompletionTokens, rc.tokens)
	}
	return nil
}

// TestResumeOffGivesTypedError: with resumption off the same cut is a
// *StreamError, never a truncated success.
func TestResumeOffGivesTypedError(t *testing.T) {
	_, url := resumeSim(t)
	tr := streamgate.NewTransport(fastRetries(), streamgate.WithWindow(3*time.Second), streamgate.WithResume(false))
	defer tr.Close()
	client := anthropic.NewClient(aoption.WithBaseURL(url), aoption.WithAPIKey("sk-off"),
		aoption.WithHTTPClient(&http.Client{Transport: tr}), aoption.WithMaxRetries(0))
	stream := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 500,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("[sim:tokens=60] off"))},
	}, aoption.WithHeader(sim.FaultHeader, "drop-midstream;at=20;cut=7"))
	for stream.Next() {
	}
	if err := stream.Err(); !errors.Is(err, streamgate.ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
}
