package batch

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/sse"
)

// BenchmarkMessageAssembler measures assembling a 2,000-delta stream.
func BenchmarkMessageAssembler(b *testing.B) {
	events := []sse.Event{
		{Type: "message_start", Data: []byte(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":5,"output_tokens":1}}}`)},
		{Type: "content_block_start", Data: []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)},
	}
	for range 2000 {
		events = append(events, sse.Event{Type: "content_block_delta", Data: []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" token"}}`)})
	}
	events = append(events,
		sse.Event{Type: "content_block_stop", Data: []byte(`{"type":"content_block_stop","index":0}`)},
		sse.Event{Type: "message_delta", Data: []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2000}}`)},
		sse.Event{Type: "message_stop", Data: []byte(`{"type":"message_stop"}`)})
	b.ReportAllocs()
	for b.Loop() {
		a := &messageAssembler{}
		for _, ev := range events {
			a.observe(ev)
		}
		if a.end().Status != sse.Complete {
			b.Fatal("incomplete")
		}
		if _, err := a.message(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResultAppendLine measures encoding one result line.
func BenchmarkResultAppendLine(b *testing.B) {
	r := Result{CustomID: "q1", Format: Anthropic, Status: Succeeded,
		Message: json.RawMessage(`{"type":"message","content":[{"type":"text","text":"` + strings.Repeat("word ", 400) + `"}]}`)}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = r.AppendLine(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
