package resume

import (
	"strings"
	"testing"

	"github.com/streamgate/streamgate/sse"
)

var msgStartEv = ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":12,"cache_creation_input_tokens":4,"cache_read_input_tokens":8,"output_tokens":1}}}`)

func blockStartEv(i int, block string) sse.Event {
	return ev("content_block_start", `{"type":"content_block_start","index":`+string(rune('0'+i))+`,"content_block":`+block+`}`)
}

func textDeltaEv(i int, s string) sse.Event {
	return ev("content_block_delta", `{"type":"content_block_delta","index":`+string(rune('0'+i))+`,"delta":{"type":"text_delta","text":`+jsonString(s)+`}}`)
}

func blockStopEv(i int) sse.Event {
	return ev("content_block_stop", `{"type":"content_block_stop","index":`+string(rune('0'+i))+`}`)
}

func TestResumable(t *testing.T) {
	text := `{"type":"text","text":""}`
	tests := []struct {
		name string
		evs  []sse.Event
		want string // "" for resumable, else a word of the reason
	}{
		{"text cut inside the block", []sse.Event{msgStartEv, blockStartEv(0, text), textDeltaEv(0, "Hi")}, ""},
		{"text cut after the block", []sse.Event{msgStartEv, blockStartEv(0, text), textDeltaEv(0, "Hi"), blockStopEv(0)}, ""},
		{"two text blocks", []sse.Event{msgStartEv, blockStartEv(0, text), textDeltaEv(0, "a"), blockStopEv(0), blockStartEv(1, text)}, ""},
		{"not started", nil, "did not start"},
		{"no block", []sse.Event{msgStartEv}, "no content block"},
		{"empty text", []sse.Event{msgStartEv, blockStartEv(0, text)}, "no text"},
		{"tool_use", []sse.Event{msgStartEv, blockStartEv(0, text), textDeltaEv(0, "Let me check."), blockStopEv(0),
			blockStartEv(1, `{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}`),
			ev("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}`)}, "tool_use"},
		{"thinking", []sse.Event{msgStartEv, blockStartEv(0, `{"type":"thinking","thinking":""}`),
			ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}`)}, "thinking"},
		{"redacted thinking", []sse.Event{msgStartEv, blockStartEv(0, `{"type":"redacted_thinking","data":"xyz"}`), blockStopEv(0), blockStartEv(1, text), textDeltaEv(1, "a")}, "redacted_thinking"},
		{"unknown block type", []sse.Event{msgStartEv, blockStartEv(0, `{"type":"mystery"}`)}, "mystery"},
		{"answer already ended", []sse.Event{msgStartEv, blockStartEv(0, text), textDeltaEv(0, "Hi"), blockStopEv(0),
			ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`)}, "already ended"},
		{"complete", []sse.Event{msgStartEv, blockStartEv(0, text), textDeltaEv(0, "Hi"), blockStopEv(0), ev("message_stop", `{"type":"message_stop"}`)}, "complete"},
		{"malformed", []sse.Event{msgStartEv, blockStartEv(0, text), textDeltaEv(0, "Hi"), ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_del`)}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := observeMsg(tt.evs)
			ms.Interrupt("cut")
			ok, why := Resumable(ms)
			if tt.want == "" {
				if !ok {
					t.Errorf("not resumable: %s", why)
				}
				return
			}
			if ok || !strings.Contains(why, tt.want) {
				t.Errorf("Resumable = %v, %q; want false with %q", ok, why, tt.want)
			}
		})
	}
}

func TestResumableChat(t *testing.T) {
	chunk := func(choices string) sse.Event {
		return ev("", `{"id":"c","object":"chat.completion.chunk","choices":[`+choices+`]}`)
	}
	role := chunk(`{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}`)
	tests := []struct {
		name string
		evs  []sse.Event
		want string
	}{
		{"content", []sse.Event{role, chunk(`{"index":0,"delta":{"content":"Hi"}}`)}, ""},
		{"no chunk", nil, "no choice"},
		{"role only", []sse.Event{role}, "no content"},
		{"two choices", []sse.Event{chunk(`{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}`)}, "2 choices"},
		{"other index", []sse.Event{chunk(`{"index":2,"delta":{"content":"a"}}`)}, "choice 2"},
		{"tool call", []sse.Event{role, chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a"}}]}}`)}, "tool call"},
		{"reasoning", []sse.Event{role, chunk(`{"index":0,"delta":{"reasoning_content":"think"}}`), chunk(`{"index":0,"delta":{"content":"a"}}`)}, "reasoning"},
		{"refusal", []sse.Event{role, chunk(`{"index":0,"delta":{"refusal":"I can't"}}`)}, "refusal"},
		{"finished", []sse.Event{role, chunk(`{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}`)}, "already ended"},
		{"complete", []sse.Event{role, chunk(`{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}`), ev("", "[DONE]")}, "complete"},
		{"malformed", []sse.Event{role, ev("", `{"choices":`)}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := observeChat(tt.evs)
			if tt.name != "complete" {
				cs.Interrupt("cut")
			}
			ok, why := ResumableChat(cs)
			if tt.want == "" {
				if !ok {
					t.Errorf("not resumable: %s", why)
				}
				return
			}
			if ok || !strings.Contains(why, tt.want) {
				t.Errorf("ResumableChat = %v, %q; want false with %q", ok, why, tt.want)
			}
		})
	}
}

func TestOriginFromMessage(t *testing.T) {
	evs := []sse.Event{msgStartEv, blockStartEv(0, `{"type":"text","text":""}`), textDeltaEv(0, "ab"), blockStopEv(0),
		blockStartEv(1, `{"type":"text","text":""}`), textDeltaEv(1, "cd ")}
	ms := observeMsg(evs)
	o := OriginFromMessage(ms, " ", -1, -1)
	want := Origin{ID: "msg_1", Model: "claude-sonnet-4-5", LastIndex: 1, LastType: "text", LastOpen: true, NextIndex: 2,
		Output: 1, Input: 12, CacheCreationInput: 4, CacheReadInput: 8, Text: "abcd ", Strip: " "}
	if o != want {
		t.Errorf("OriginFromMessage =\n %+v\nwant\n %+v", o, want)
	}
	if o := OriginFromMessage(ms, "", 30, 100); o.Output != 30 || o.Input != 100 {
		t.Errorf("explicit prior usage: output %d input %d, want 30 and 100", o.Output, o.Input)
	}
	if o := OriginFromMessage(observeMsg([]sse.Event{msgStartEv}), "", 0, 0); o.LastIndex != -1 || o.NextIndex != 0 || o.LastOpen {
		t.Errorf("no block: %+v", o)
	}
}

func TestOriginFromChat(t *testing.T) {
	cs := observeChat([]sse.Event{
		ev("", `{"id":"chatcmpl-1","model":"gpt-4o","created":5,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}`),
		ev("", `{"id":"chatcmpl-1","model":"gpt-4o","created":5,"choices":[{"index":0,"delta":{"content":"lo "}}]}`),
	})
	o := OriginFromChat(cs, " ", -1, 77)
	want := Origin{ID: "chatcmpl-1", Model: "gpt-4o", LastIndex: -1, Output: 0, Input: 77, Text: "Hello ", Strip: " "}
	if o != want {
		t.Errorf("OriginFromChat =\n %+v\nwant\n %+v", o, want)
	}
}
