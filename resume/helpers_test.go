package resume

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/sse"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func ev(typ, data string) sse.Event { return sse.Event{Type: typ, Data: []byte(data)} }

// msgStream describes an Anthropic stream to generate.
type msgStream struct {
	id           string
	model        string
	input        int64 // message_start usage.input_tokens
	cacheRead    int64
	output       int64 // final usage.output_tokens
	deltas       []string
	stopReason   string
	deltaHasUsIn bool // message_delta repeats the input usage
}

// events returns the stream's events, in the order the API sends them.
func (m msgStream) events() []sse.Event {
	usage := func(out int64) string {
		return fmt.Sprintf(`{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":%d,"output_tokens":%d}`, m.input, m.cacheRead, out)
	}
	out := []sse.Event{
		ev("message_start", `{"type":"message_start","message":{"id":"`+m.id+`","type":"message","role":"assistant","model":"`+m.model+`","content":[],"stop_reason":null,"stop_sequence":null,"usage":`+usage(1)+`}}`),
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		ev("ping", `{"type": "ping"}`),
	}
	for _, d := range m.deltas {
		out = append(out, ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+jsonString(d)+`}}`))
	}
	final := fmt.Sprintf(`{"output_tokens":%d}`, m.output)
	if m.deltaHasUsIn {
		final = usage(m.output)
	}
	out = append(out,
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`),
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+m.stopReason+`","stop_sequence":null},"usage":`+final+`}`),
		ev("message_stop", `{"type":"message_stop"}`),
	)
	return out
}

// chatStream describes an OpenAI stream to generate.
type chatStream struct {
	id      string
	model   string
	created int64
	prompt  int64
	output  int64
	deltas  []string
	usage   bool // stream_options.include_usage
}

func (c chatStream) head() string {
	return fmt.Sprintf(`{"id":%q,"object":"chat.completion.chunk","created":%d,"model":%q,"system_fingerprint":"fp_1","choices":[`, c.id, c.created, c.model)
}

func (c chatStream) tail() string {
	if c.usage {
		return `],"usage":null}`
	}
	return `]}`
}

func (c chatStream) events() []sse.Event {
	out := []sse.Event{ev("", c.head()+`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`+c.tail())}
	for _, d := range c.deltas {
		out = append(out, ev("", c.head()+`{"index":0,"delta":{"content":`+jsonString(d)+`},"logprobs":null,"finish_reason":null}`+c.tail()))
	}
	out = append(out, ev("", c.head()+`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`+c.tail()))
	if c.usage {
		out = append(out, ev("", c.head()+fmt.Sprintf(`],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":0}}}`, c.prompt, c.output, c.prompt+c.output)))
	}
	return append(out, ev("", "[DONE]"))
}

// wire renders events as the bytes of a stream.
func wire(evs []sse.Event) []byte {
	var b []byte
	for _, e := range evs {
		b = sse.AppendEvent(b, e.Type, e.Data)
	}
	return b
}

// parseWire reads every event of a stream's bytes.
func parseWire(t testing.TB, b []byte) []sse.Event {
	t.Helper()
	var out []sse.Event
	rd := sse.NewReader(bytes.NewReader(b))
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading spliced stream: %v", err)
		}
		out = append(out, e)
	}
}

func observeMsg(evs []sse.Event) *sse.MessageStream {
	ms := &sse.MessageStream{}
	for _, e := range evs {
		ms.Observe(e)
	}
	return ms
}

func observeChat(evs []sse.Event) *sse.ChatStream {
	cs := &sse.ChatStream{}
	for _, e := range evs {
		cs.Observe(e)
	}
	return cs
}

// splitText splits s into n-ish pieces at rune boundaries chosen by rng;
// every piece is non-empty.
func splitText(s string, rng *rand.Rand, maxRunes int) []string {
	var out []string
	for s != "" {
		n := 1 + rng.IntN(maxRunes)
		i := 0
		for j := 0; j < n && i < len(s); j++ {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// countTypes counts events by type.
func countTypes(evs []sse.Event) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		m[e.Type]++
	}
	return m
}

// sdkMessage accumulates events the way anthropic-sdk-go does for its
// users; an event the SDK cannot apply is an error.
func sdkMessage(evs []sse.Event) (anthropic.Message, error) {
	var msg anthropic.Message
	for i, e := range evs {
		switch e.Type {
		case "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop":
		default:
			continue
		}
		var u anthropic.MessageStreamEventUnion
		if err := json.Unmarshal(e.Data, &u); err != nil {
			return msg, fmt.Errorf("event %d: %w", i, err)
		}
		if err := msg.Accumulate(u); err != nil {
			return msg, fmt.Errorf("event %d: %w", i, err)
		}
	}
	return msg, nil
}

// sdkChat accumulates chunks the way openai-go does; a chunk the
// accumulator rejects is an error.
func sdkChat(evs []sse.Event) (openai.ChatCompletionAccumulator, error) {
	var acc openai.ChatCompletionAccumulator
	for i, e := range evs {
		d := bytes.TrimSpace(e.Data)
		if len(d) == 0 || string(d) == "[DONE]" {
			continue
		}
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal(d, &c); err != nil {
			return acc, fmt.Errorf("chunk %d: %w", i, err)
		}
		if !acc.AddChunk(c) {
			return acc, fmt.Errorf("chunk %d rejected by the accumulator: %s", i, d)
		}
	}
	return acc, nil
}
