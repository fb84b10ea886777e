package resume

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkAnthropicSplice measures splicing one continuation of 200 text
// deltas (reported per event).
func BenchmarkAnthropicSplice(b *testing.B) {
	deltas := make([]string, 200)
	for i := range deltas {
		deltas[i] = fmt.Sprintf(" word%d", i)
	}
	evs := msgStream{id: "m", input: 100, output: 200, deltas: deltas, stopReason: "end_turn"}.events()
	o := Origin{LastIndex: 0, LastType: "text", LastOpen: true, NextIndex: 1, Output: 50, Input: 100, Strip: " "}
	var out []byte
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sp := NewAnthropicSplicer(o)
		out = out[:0]
		for _, e := range evs {
			var err error
			if out, err = sp.Splice(out, e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

// BenchmarkChatSplice measures splicing one chat continuation of 200
// content chunks (reported per event).
func BenchmarkChatSplice(b *testing.B) {
	deltas := make([]string, 200)
	for i := range deltas {
		deltas[i] = fmt.Sprintf(" word%d", i)
	}
	evs := chatStream{id: "c", model: "gpt-4o", created: 1, prompt: 10, output: 200, deltas: deltas, usage: true}.events()
	o := Origin{ID: "chatcmpl-o", Model: "gpt-4o", Created: 2, Output: 50, Input: 100, Strip: " "}
	var out []byte
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sp := NewChatSplicer(o)
		out = out[:0]
		for _, e := range evs {
			var err error
			if out, err = sp.Splice(out, e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

// BenchmarkAnthropicContinuation builds the continuation of a 50-turn
// conversation with a 4 KiB partial answer.
func BenchmarkAnthropicContinuation(b *testing.B) {
	msgs := make([]map[string]any, 50)
	for i := range msgs {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		msgs[i] = map[string]any{"role": role, "content": strings.Repeat("some earlier text ", 40)}
	}
	body, _ := json.Marshal(map[string]any{"model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": true, "messages": msgs})
	partial := strings.Repeat("the answer so far ", 230)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Anthropic(body, partial, 900, Prefill); err != nil {
			b.Fatal(err)
		}
	}
}
