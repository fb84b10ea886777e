package resume

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"

	"github.com/streamgate/streamgate/sse"
)

// fuzzEvents parses raw as an event stream (at most 256 events).
func fuzzEvents(raw []byte) []sse.Event {
	var evs []sse.Event
	p := sse.Parser{MaxEventSize: 1 << 16}
	emit := func(e sse.Event) {
		if len(evs) < 256 {
			evs = append(evs, e)
		}
	}
	_ = p.Feed(raw, emit)
	_ = p.End()
	return evs
}

var fuzzPieces = []string{"", " ", "\n", "x", "é", "  y", "\u3000z", "日本", "\t\n", "🎉 "}

// genAnthropicEvents turns fuzz bytes into Anthropic events: raw text
// starting with "event:" or "data:" is parsed as a stream, anything else
// picks events from templates (two bytes per event), which reaches far more
// splicer states than random bytes parsed as SSE.
func genAnthropicEvents(raw []byte) []sse.Event {
	if len(raw) == 0 || raw[0] == 'e' || raw[0] == 'd' {
		return fuzzEvents(raw)
	}
	var evs []sse.Event
	for i := 0; i+1 < len(raw) && len(evs) < 64; i += 2 {
		op, arg := raw[i], int(raw[i+1])
		idx := fmt.Sprint(arg % 4)
		piece := jsonString(fuzzPieces[arg%len(fuzzPieces)])
		switch op % 14 {
		case 0:
			evs = append(evs, ev("message_start", `{"type":"message_start","message":{"id":"m","usage":{"input_tokens":`+fmt.Sprint(arg)+`,"output_tokens":1}}}`))
		case 1:
			evs = append(evs, ev("content_block_start", `{"type":"content_block_start","index":`+idx+`,"content_block":{"type":"text","text":`+piece+`}}`))
		case 2:
			typ := []string{"tool_use", "thinking", "redacted_thinking", "mystery"}[arg%4]
			evs = append(evs, ev("content_block_start", `{"type":"content_block_start","index":`+fmt.Sprint(arg/4%4)+`,"content_block":{"type":"`+typ+`"}}`))
		case 3, 4:
			evs = append(evs, ev("content_block_delta", `{"type":"content_block_delta","index":`+idx+`,"delta":{"type":"text_delta","text":`+piece+`}}`))
		case 5:
			evs = append(evs, ev("content_block_delta", `{"type":"content_block_delta","index":`+idx+`,"delta":{"type":"thinking_delta","thinking":"t"}}`))
		case 6:
			evs = append(evs, ev("content_block_delta", `{"type":"content_block_delta","INDEX":`+idx+`,"index":`+fmt.Sprint(arg/4%4)+`,"delta":{"type":"citations_delta","citation":{}}}`))
		case 7:
			evs = append(evs, ev("content_block_stop", `{"type":"content_block_stop","index":`+idx+`}`))
		case 8:
			usage := []string{`null`, `{"output_tokens":5}`, `{"input_tokens":3,"output_tokens":9,"cache_read_input_tokens":1}`, `{"Output_Tokens":2}`}[arg%4]
			evs = append(evs, ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":`+usage+`}`))
		case 9:
			evs = append(evs, ev("message_stop", `{"type":"message_stop"}`))
		case 10:
			evs = append(evs, ev("ping", `{"type":"ping"}`))
		case 11:
			evs = append(evs, ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
		case 12:
			evs = append(evs, ev([]string{"future", "", "content_block_delta", "message_delta"}[arg%4], `{"type":"x`))
		case 13:
			evs = append(evs, ev("content_block_delta", `{"type":"content_block_delta","index":`+idx+`,"delta":{"type":"input_json_delta","partial_json":"{"}}`))
		}
	}
	return evs
}

// genChatEvents is genAnthropicEvents for chat completions chunks.
func genChatEvents(raw []byte) []sse.Event {
	if len(raw) == 0 || raw[0] == 'e' || raw[0] == 'd' {
		return fuzzEvents(raw)
	}
	var evs []sse.Event
	for i := 0; i+1 < len(raw) && len(evs) < 64; i += 2 {
		op, arg := raw[i], int(raw[i+1])
		piece := jsonString(fuzzPieces[arg%len(fuzzPieces)])
		head := `{"id":"c` + fmt.Sprint(arg%3) + `","object":"chat.completion.chunk","created":9,"model":"m","choices":[`
		switch op % 10 {
		case 0:
			evs = append(evs, ev("", head+`{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`))
		case 1, 2:
			evs = append(evs, ev("", head+`{"index":`+fmt.Sprint(arg/16%2)+`,"delta":{"content":`+piece+`},"finish_reason":null}]}`))
		case 3:
			evs = append(evs, ev("", head+`{"index":0,"delta":{},"finish_reason":"stop"}]}`))
		case 4:
			evs = append(evs, ev("", head+`],"usage":{"prompt_tokens":`+fmt.Sprint(arg)+`,"completion_tokens":2,"total_tokens":`+fmt.Sprint(arg+2)+`}}`))
		case 5:
			evs = append(evs, ev("", "[DONE]"))
		case 6:
			evs = append(evs, ev("", `{"error":{"message":"x","type":"server_error"}}`))
		case 7:
			evs = append(evs, ev("", head+`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call","function":{"name":"f","arguments":"{"}}]}}]}`))
		case 8:
			evs = append(evs, ev("", ""))
		case 9:
			evs = append(evs, ev([]string{"", "error", "x"}[arg%3], `{"choices":`))
		}
	}
	return evs
}

func fuzzText(s string) string {
	if len(s) > 400 {
		s = s[:400] // longer texts explore nothing new, only slower
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// FuzzAnthropicSplice checks two properties. A well-formed continuation of
// an arbitrary text cut at an arbitrary delta splices into one complete
// message with exactly that text (checkAnthropicResume). And arbitrary
// continuation events never panic the splicer nor make the caller's stream
// malformed: an event that would is refused with an error.
func FuzzAnthropicSplice(f *testing.F) {
	f.Add("Hello, world! Ça va? 日本語 🎉", uint16(3), uint64(1), true, []byte(""))
	f.Add("  trailing  \n", uint16(2), uint64(2), false, []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"))
	f.Add("abc", uint16(0x8001), uint64(3), true, []byte(
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"+
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\" \"}}\n\n"+
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"Index\":0,\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" x\"}}\n\n"+
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n"+
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"+
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":null}\n\n"+
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Add("x", uint16(1), uint64(4), false, []byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"))
	f.Add("ab ", uint16(2), uint64(5), true, []byte{0, 1, 1, 1, 3, 1, 3, 2, 7, 0, 1, 1, 3, 5, 8, 2, 9, 0, 10, 0})
	f.Add("ab", uint16(0x8002), uint64(6), false, []byte{0, 1, 2, 1, 5, 0, 7, 0, 1, 1, 6, 5, 3, 1, 11, 0})
	f.Fuzz(func(t *testing.T, text string, cut uint16, seed uint64, prefill bool, raw []byte) {
		text = fuzzText(text)
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		deltas := splitText(text, rng, 5)
		k := int(cut&0x7fff) % (len(deltas) + 1)
		closed := cut&0x8000 != 0
		form := UserContinue
		if prefill {
			form = Prefill
		}
		if text != "" {
			checkAnthropicResume(t, text, deltas, k, closed, form, rng)
		}

		// Arbitrary continuation events.
		orig := msgStream{id: "msg_orig", deltas: deltas, stopReason: "end_turn"}
		prefix := cutMessage(orig, k, closed)
		ms := observeMsg(prefix)
		_, strip := splitTrailingSpace(ms.Text())
		o := OriginFromMessage(ms, strip, -1, -1)
		sp := NewAnthropicSplicer(o)
		out := wire(prefix)
		var err error
		for _, e := range genAnthropicEvents(raw) {
			before := len(out)
			if out, err = sp.Splice(out, e); err != nil {
				if len(out) != before {
					t.Fatalf("Splice wrote %d bytes with error %v", len(out)-before, err)
				}
				break
			}
		}
		caller := observeMsg(parseWire(t, out))
		v := caller.End()
		if v.Status == sse.Malformed {
			t.Fatalf("spliced stream is malformed: %s\n%s", v.Reason, out)
		}
		next := sp.Next()
		if next.Text != caller.Text() {
			t.Fatalf("Next().Text %q, caller has %q", next.Text, caller.Text())
		}
		if n := caller.NumBlocks(); next.NextIndex != n {
			t.Fatalf("Next().NextIndex %d, caller has %d blocks", next.NextIndex, n)
		}
		_, _ = sp.Resumable()
	})
}

// splitTrailingSpace splits s into its text and its trailing white space.
func splitTrailingSpace(s string) (string, string) {
	kept := strings.TrimRightFunc(s, unicode.IsSpace)
	return kept, s[len(kept):]
}

// FuzzChatSplice is FuzzAnthropicSplice for chat completions streams.
func FuzzChatSplice(f *testing.F) {
	f.Add("Hello, world! Ça va? 日本語 🎉", uint16(3), uint64(1), true, []byte(""))
	f.Add("  trailing  \n", uint16(2), uint64(2), false, []byte("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"))
	f.Add("abc", uint16(1), uint64(3), true, []byte(
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" d\"},\"finish_reason\":null}],\"usage\":null}\n\n"+
			"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"+
			"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n"+
			"data: [DONE]\n\n"))
	f.Add("x", uint16(1), uint64(4), false, []byte("data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n"))
	f.Add("ab ", uint16(2), uint64(5), true, []byte{0, 0, 1, 1, 1, 2, 3, 0, 4, 7, 5, 0})
	f.Add("ab", uint16(1), uint64(6), false, []byte{1, 16, 7, 0, 8, 0, 3, 0, 6, 0})
	f.Fuzz(func(t *testing.T, text string, cut uint16, seed uint64, withUsage bool, raw []byte) {
		text = fuzzText(text)
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		deltas := splitText(text, rng, 5)
		k := int(cut) % (len(deltas) + 1)
		form := UserContinue
		if seed&1 == 1 {
			form = Prefill
		}
		if text != "" {
			checkChatResume(t, text, deltas, k, form, withUsage, rng)
		}

		orig := chatStream{id: "chatcmpl-orig", model: "gpt-4o", deltas: deltas, usage: withUsage}
		prefix := orig.events()[:1+k]
		cs := observeChat(prefix)
		_, strip := splitTrailingSpace(cs.Text())
		sp := NewChatSplicer(OriginFromChat(cs, strip, -1, -1))
		out := wire(prefix)
		var err error
		for _, e := range genChatEvents(raw) {
			before := len(out)
			if out, err = sp.Splice(out, e); err != nil {
				if len(out) != before {
					t.Fatalf("Splice wrote %d bytes with error %v", len(out)-before, err)
				}
				break
			}
		}
		evs := parseWire(t, out)
		caller := observeChat(evs)
		if v := caller.End(); v.Status == sse.Malformed {
			t.Fatalf("spliced stream is malformed: %s\n%s", v.Reason, out)
		}
		for _, e := range evs {
			var c struct {
				ID *string `json:"id"`
			}
			if json.Unmarshal(e.Data, &c) == nil && c.ID != nil && *c.ID != "chatcmpl-orig" {
				t.Fatalf("chunk with id %q reached the caller", *c.ID)
			}
		}
		if next := sp.Next(); next.Text != caller.Text() {
			t.Fatalf("Next().Text %q, caller has %q", next.Text, caller.Text())
		}
		_, _ = sp.Resumable()
	})
}

// FuzzContinuation builds continuations of arbitrary bodies: no panic, and
// a continuation that is built is valid JSON ending the way its form says,
// with every other field of the body preserved.
func FuzzContinuation(f *testing.F) {
	f.Add([]byte(anthropicBody), "partial text ", int64(3), uint8(0), true)
	f.Add([]byte(openaiBody), "x", int64(-1), uint8(1), false)
	f.Add([]byte(`{"messages":[{"role":"assistant","content":[{"type":"text","text":"a"}]}],"max_tokens":1,"Messages":1}`), " \n", int64(9), uint8(0), true)
	f.Fuzz(func(t *testing.T, body []byte, partial string, produced int64, form uint8, anthropic bool) {
		build := OpenAI
		if anthropic {
			build = Anthropic
		}
		c, err := build(body, partial, produced, Form(form))
		if err != nil {
			if c.Body != nil {
				t.Fatalf("body returned with error %v", err)
			}
			return
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(c.Body, &got); err != nil {
			t.Fatalf("continuation is not a JSON object: %v\n%s", err, c.Body)
		}
		var orig map[string]json.RawMessage
		if err := json.Unmarshal(body, &orig); err == nil {
			for k, v := range orig {
				switch strings.ToLower(k) {
				case "messages", "max_tokens", "max_completion_tokens":
					continue
				}
				if string(got[k]) != string(v) {
					t.Fatalf("field %q changed from %s to %s", k, v, got[k])
				}
			}
		}
		var msgs []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(got["messages"], &msgs); err != nil || len(msgs) == 0 {
			t.Fatalf("messages %s: %v", got["messages"], err)
		}
		last := msgs[len(msgs)-1]
		switch Form(form) {
		case UserContinue:
			var s string
			if c.Strip != "" || last.Role != "user" || json.Unmarshal(last.Content, &s) != nil || s != ContinuePrompt {
				t.Fatalf("user-continue ends with %+v (strip %q)", last, c.Strip)
			}
		case Prefill:
			kept, strip := splitTrailingSpace(partial)
			if c.Strip != strip {
				t.Fatalf("Strip %q, want %q", c.Strip, strip)
			}
			if kept != "" && !strings.Contains(string(last.Content), strings.Trim(string(appendString(nil, kept)), `"`)) {
				t.Fatalf("prefill %s does not carry %q", last.Content, kept)
			}
		}
	})
}
