package sse

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// realisticAnthropicStream builds a long text answer in the API's shape:
// message_start, one text block of n text_delta events with a ping now and
// then, message_delta and message_stop.
func realisticAnthropicStream(n int) []byte {
	var b []byte
	b = AppendEvent(b, EventMessageStart, []byte(`{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`))
	b = AppendEvent(b, EventContentBlockStart, []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`))
	words := []string{" the", " stream", " keeps", " drawing", " output", " tokens,", " so", " schedule", " it."}
	for i := range n {
		if i%100 == 50 {
			b = AppendEvent(b, EventPing, []byte(`{"type": "ping"}`))
		}
		b = AppendEvent(b, EventContentBlockDelta, fmt.Appendf(nil, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, words[i%len(words)]+words[(i+3)%len(words)]))
	}
	b = AppendEvent(b, EventContentBlockStop, []byte(`{"type":"content_block_stop","index":0}`))
	b = AppendEvent(b, EventMessageDelta, fmt.Appendf(nil, `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, 2*n))
	return AppendEvent(b, EventMessageStop, []byte(`{"type":"message_stop"}`))
}

// readThrough reads r to the end with a fixed buffer, as an HTTP body copy
// would.
func readThrough(b *testing.B, r io.Reader, buf []byte) {
	for {
		_, err := r.Read(buf)
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserver measures the cost of watching a body pass through: the
// event parsing only.
func BenchmarkObserver(b *testing.B) {
	stream := realisticAnthropicStream(1000)
	buf := make([]byte, 4096)
	src := bytes.NewReader(stream)
	events := 0
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(stream)
		o := NewObserver(src, func(Event) { events++ })
		readThrough(b, o, buf)
		if o.Partial() || o.Err() != nil {
			b.Fatal("stream did not parse cleanly")
		}
	}
}

// BenchmarkObserverMessageStream adds the Anthropic model, as the
// transport runs it.
func BenchmarkObserverMessageStream(b *testing.B) {
	stream := realisticAnthropicStream(1000)
	buf := make([]byte, 4096)
	src := bytes.NewReader(stream)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(stream)
		var s MessageStream
		readThrough(b, NewObserver(src, s.Observe), buf)
		if s.End().Status != Complete {
			b.Fatal("stream not complete")
		}
	}
}

// BenchmarkChatStream measures the OpenAI model on a long answer.
func BenchmarkChatStream(b *testing.B) {
	var stream []byte
	for i := range 1000 {
		stream = AppendEvent(stream, "", fmt.Appendf(nil, `{"id":"chatcmpl-AxBqT6fpXbN3mJ8k2LsVdQw9","object":"chat.completion.chunk","created":1735689600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" word%d"},"logprobs":null,"finish_reason":null}],"usage":null}`, i))
	}
	stream = AppendEvent(stream, "", []byte(`{"id":"chatcmpl-AxBqT6fpXbN3mJ8k2LsVdQw9","object":"chat.completion.chunk","created":1735689600,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`))
	stream = AppendEvent(stream, "", []byte("[DONE]"))
	buf := make([]byte, 4096)
	src := bytes.NewReader(stream)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(stream)
		var s ChatStream
		readThrough(b, NewObserver(src, s.Observe), buf)
		if s.End().Status != Complete {
			b.Fatal("stream not complete")
		}
	}
}

// BenchmarkAppendEvent measures writing one typical delta event.
func BenchmarkAppendEvent(b *testing.B) {
	data := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the stream"}}`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], EventContentBlockDelta, data)
	}
}
