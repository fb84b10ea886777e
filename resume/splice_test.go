package resume

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/sse"
)

// spliceTexts are answers with multi-byte characters and white space at
// the start, inside and at the end, where cuts and trims are hardest.
var spliceTexts = []string{
	"Once upon a time, there was a small café in Zürich.",
	"日本語のテキストと絵文字 🎉🎉 and English mixed.  Two spaces.",
	"Line one\n\nLine two\n\t- item\n- item two\n",
	"   leading spaces and trailing   ",
	"word \u3000ideographic space\u00a0nbsp \u2028separator",
	"a",
	"\n\n\nend",
}

const anthropicBody = `{"model":"claude-sonnet-4-5","max_tokens":4096,"stream":true,"messages":[{"role":"user","content":"Tell me a story."}]}`

// verifyMessage checks that a spliced Anthropic stream reads, for the
// streamgate stream model and for anthropic-sdk-go, as one complete message
// with the whole text and the summed usage.
func verifyMessage(t *testing.T, label string, out []byte, id, full string, wantOut, wantIn, wantCacheRead int64) {
	t.Helper()
	evs := parseWire(t, out)
	n := countTypes(evs)
	if n["message_start"] != 1 || n["message_stop"] != 1 || n["error"] != 0 {
		t.Errorf("%s: %d message_start, %d message_stop, %d error; want 1, 1, 0", label, n["message_start"], n["message_stop"], n["error"])
	}
	ms := observeMsg(evs)
	if v := ms.End(); v.Status != sse.Complete {
		t.Errorf("%s: verdict %v (%s), want complete", label, v.Status, v.Reason)
		return
	}
	if got := ms.Text(); got != full {
		t.Errorf("%s: text %q, want %q", label, got, full)
	}
	for _, b := range ms.Blocks() {
		if b.Type != "text" || !b.Stopped || b.Text == "" {
			t.Errorf("%s: block %d: type %q, stopped %v, text %q; want a stopped, non-empty text block", label, b.Index, b.Type, b.Stopped, b.Text)
		}
	}
	u := ms.Usage()
	if u.OutputTokens != wantOut || u.InputTokens != wantIn {
		t.Errorf("%s: usage output %d input %d, want %d and %d", label, u.OutputTokens, u.InputTokens, wantOut, wantIn)
	}
	if ms.ID() != id {
		t.Errorf("%s: message id %q, want %q", label, ms.ID(), id)
	}
	msg, err := sdkMessage(evs)
	if err != nil {
		t.Errorf("%s: anthropic-sdk-go rejects the stream: %v", label, err)
		return
	}
	var sb strings.Builder
	for _, c := range msg.Content {
		sb.WriteString(c.Text)
	}
	if sb.String() != full {
		t.Errorf("%s: SDK text %q, want %q", label, sb.String(), full)
	}
	if msg.Usage.OutputTokens != wantOut || msg.Usage.InputTokens != wantIn || msg.Usage.CacheReadInputTokens != wantCacheRead {
		t.Errorf("%s: SDK usage output %d input %d cache read %d, want %d, %d, %d", label,
			msg.Usage.OutputTokens, msg.Usage.InputTokens, msg.Usage.CacheReadInputTokens, wantOut, wantIn, wantCacheRead)
	}
	if msg.StopReason != "end_turn" {
		t.Errorf("%s: SDK stop reason %q, want end_turn", label, msg.StopReason)
	}
}

// cutMessage returns the events of orig the caller received when the
// stream was cut after its k-th delta, optionally after the block's stop.
func cutMessage(orig msgStream, k int, closed bool) []sse.Event {
	all := orig.events()
	prefix := append([]sse.Event(nil), all[:3+k]...)
	if closed {
		prefix = append(prefix, all[3+len(orig.deltas)])
	}
	return prefix
}

// continuation generates the stream a model sends for a continuation of
// full whose request carried the caller's text minus Strip: the rest of
// the answer, starting with the stripped white space.
func continuation(full, received string, c Continuation, rng *rand.Rand, id string, input, cacheRead int64) msgStream {
	rest := full[len(received)-len(c.Strip):]
	deltas := splitText(rest, rng, 4)
	return msgStream{
		id: id, model: "claude-sonnet-4-5", input: input, cacheRead: cacheRead,
		output: int64(len(deltas)), deltas: deltas, stopReason: "end_turn",
		deltaHasUsIn: rng.IntN(2) == 0,
	}
}

func TestAnthropicSpliceEveryCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for ti, full := range spliceTexts {
		for _, form := range []Form{Prefill, UserContinue} {
			t.Run(fmt.Sprintf("text%d/%s", ti, form), func(t *testing.T) {
				deltas := splitText(full, rng, 3)
				for k := 0; k <= len(deltas); k++ {
					for _, closed := range []bool{false, true} {
						checkAnthropicResume(t, full, deltas, k, closed, form, rng)
					}
				}
			})
		}
	}
}

// checkAnthropicResume cuts a stream of full (sent as deltas) after k
// deltas (and the block's stop, if closed), resumes it with a continuation
// of the given form as a model would answer it, and checks the spliced
// stream.
func checkAnthropicResume(t *testing.T, full string, deltas []string, k int, closed bool, form Form, rng *rand.Rand) {
	t.Helper()
	label := fmt.Sprintf("cut after %d/%d deltas, closed %v", k, len(deltas), closed)
	orig := msgStream{id: "msg_orig", model: "claude-sonnet-4-5", input: 120, cacheRead: 30, deltas: deltas, stopReason: "end_turn"}
	prefix := cutMessage(orig, k, closed)
	ms := observeMsg(prefix)
	ms.Interrupt("connection dropped")
	received := ms.Text()
	c, err := Anthropic([]byte(anthropicBody), received, int64(k), form)
	if received == "" {
		if !errors.Is(err, ErrNothingToResume) {
			t.Errorf("%s: err = %v, want ErrNothingToResume", label, err)
		}
		if ok, _ := Resumable(ms); ok {
			t.Errorf("%s: Resumable with no text", label)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: Anthropic: %v", label, err)
	}
	if ok, why := Resumable(ms); !ok {
		t.Fatalf("%s: not resumable: %s", label, why)
	}
	cont := continuation(full, received, c, rng, "msg_cont", 140, 5)
	undelivered := int64(rng.IntN(3))
	o := OriginFromMessage(ms, c.Strip, int64(k)+undelivered, -1)
	sp := NewAnthropicSplicer(o)
	out := wire(prefix)
	for _, e := range cont.events() {
		if out, err = sp.Splice(out, e); err != nil {
			t.Fatalf("%s: Splice(%s): %v", label, e.Type, err)
		}
	}
	verifyMessage(t, label, out, "msg_orig", full, int64(k)+undelivered+cont.output, 120+140, 30+5)
	wantBlocks := 1
	if closed && len(full) > len(received) {
		wantBlocks = 2
	}
	if got := observeMsg(parseWire(t, out)).NumBlocks(); got != wantBlocks {
		t.Errorf("%s: %d blocks, want %d", label, got, wantBlocks)
	}
}

func TestAnthropicSpliceRepeatedInterruptions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for ti, full := range spliceTexts {
		for _, form := range []Form{Prefill, UserContinue} {
			t.Run(fmt.Sprintf("text%d/%s", ti, form), func(t *testing.T) {
				orig := msgStream{id: "msg_orig", model: "claude-sonnet-4-5", input: 100, deltas: splitText(full, rng, 2), stopReason: "end_turn"}
				for k := 1; k <= len(orig.deltas); k++ {
					prefix := cutMessage(orig, k, rng.IntN(4) == 0)
					ms := observeMsg(prefix)
					received := ms.Text()
					if received == "" {
						continue
					}
					out := wire(prefix)
					o := OriginFromMessage(ms, "", int64(k), -1)
					var inputs int64 = 100
					// Up to three continuations, each but the last cut by an
					// error event after j of its deltas.
					for attempt := 0; ; attempt++ {
						label := fmt.Sprintf("cut after %d, attempt %d", k, attempt)
						c, err := Anthropic([]byte(anthropicBody), o.Text, o.Output, form)
						if err != nil {
							t.Fatalf("%s: Anthropic: %v", label, err)
						}
						o.Strip = c.Strip
						cont := continuation(full, o.Text, c, rng, fmt.Sprintf("msg_%d", attempt), 110, 0)
						inputs += 110
						evs := cont.events()
						last := attempt == 2 || len(cont.deltas) == 0
						if !last {
							j := rng.IntN(len(cont.deltas) + 1)
							evs = append(evs[:3+j:3+j], ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
						}
						sp := NewAnthropicSplicer(o)
						for _, e := range evs {
							before := len(out)
							out, err = sp.Splice(out, e)
							if err != nil {
								var ce *ContinuationError
								if !errors.As(err, &ce) || ce.Type != "overloaded_error" || string(ce.Raw) != string(e.Data) {
									t.Fatalf("%s: Splice error %v, want the overloaded ContinuationError", label, err)
								}
								if len(out) != before {
									t.Fatalf("%s: Splice wrote %d bytes with its error", label, len(out)-before)
								}
								break
							}
						}
						if last {
							verifyMessage(t, label, out, "msg_orig", full, sp.Next().Output, inputs, 0)
							break
						}
						next := sp.Next()
						caller := observeMsg(parseWire(t, out))
						if next.Text != caller.Text() {
							t.Fatalf("%s: Next().Text %q, caller has %q", label, next.Text, caller.Text())
						}
						lb, _ := caller.LastBlock()
						if next.LastIndex != lb.Index || next.NextIndex != caller.NumBlocks() || next.LastOpen == lb.Stopped {
							t.Fatalf("%s: Next() block state %d/%d/open %v, caller's last block %+v of %d", label, next.LastIndex, next.NextIndex, next.LastOpen, lb, caller.NumBlocks())
						}
						if ok, why := sp.Resumable(); !ok {
							t.Fatalf("%s: splicer not resumable: %s", label, why)
						}
						if next.Input != inputs {
							t.Fatalf("%s: Next().Input %d, want %d", label, next.Input, inputs)
						}
						if next.Output < o.Output {
							t.Fatalf("%s: Next().Output %d dropped below %d", label, next.Output, o.Output)
						}
						o = next
					}
				}
			})
		}
	}
}

// spliceAll splices events into a fresh splicer of o and returns the bytes
// written and the first error.
func spliceAll(o Origin, evs []sse.Event) ([]byte, error) {
	sp := NewAnthropicSplicer(o)
	var out []byte
	var err error
	for _, e := range evs {
		if out, err = sp.Splice(out, e); err != nil {
			return out, err
		}
	}
	return out, nil
}

// typesAndIndexes renders events as "type/index" for comparison.
func typesAndIndexes(t *testing.T, b []byte) string {
	t.Helper()
	var parts []string
	for _, e := range parseWire(t, b) {
		p := e.Type
		if obj, ok := parseObject(e.Data); ok {
			if i, ok := obj.getInt("index"); ok {
				p += fmt.Sprintf("/%d", i)
			}
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func TestAnthropicSpliceBlocks(t *testing.T) {
	start := ev("message_start", `{"type":"message_start","message":{"id":"msg_c","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}`)
	textStart := func(i int) sse.Event {
		return ev("content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"text","text":""}}`, i))
	}
	text := func(i int, s string) sse.Event {
		return ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%s}}`, i, jsonString(s)))
	}
	stop := func(i int) sse.Event {
		return ev("content_block_stop", fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, i))
	}
	end := []sse.Event{
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}`),
		ev("message_stop", `{"type":"message_stop"}`),
	}
	openText := Origin{LastIndex: 1, LastType: "text", LastOpen: true, NextIndex: 2}
	closedText := Origin{LastIndex: 1, LastType: "text", NextIndex: 2}
	tests := []struct {
		name string
		o    Origin
		evs  []sse.Event
		want string // the spliced events as type/index
		text string // the spliced text
	}{
		{
			name: "text continues the open block",
			o:    openText,
			evs:  append([]sse.Event{start, textStart(0), text(0, "abc"), stop(0)}, end...),
			want: "content_block_delta/1 content_block_stop/1 message_delta message_stop",
			text: "abc",
		},
		{
			name: "text after a closed block gets the next index",
			o:    closedText,
			evs:  append([]sse.Event{start, textStart(0), text(0, "abc"), stop(0)}, end...),
			want: "content_block_start/2 content_block_delta/2 content_block_stop/2 message_delta message_stop",
			text: "abc",
		},
		{
			name: "a thinking block first closes the open block",
			o:    openText,
			evs: append([]sse.Event{start,
				ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`),
				ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}`),
				stop(0), textStart(1), text(1, "x"), stop(1)}, end...),
			want: "content_block_stop/1 content_block_start/2 content_block_delta/2 content_block_stop/2 content_block_start/3 content_block_delta/3 content_block_stop/3 message_delta message_stop",
			text: "x",
		},
		{
			name: "a second text block after the continued one",
			o:    openText,
			evs:  append([]sse.Event{start, textStart(0), text(0, "a"), stop(0), textStart(1), text(1, "b"), stop(1)}, end...),
			want: "content_block_delta/1 content_block_stop/1 content_block_start/2 content_block_delta/2 content_block_stop/2 message_delta message_stop",
			text: "ab",
		},
		{
			name: "an empty text block disappears",
			o:    closedText,
			evs:  append([]sse.Event{start, textStart(0), stop(0)}, end...),
			want: "message_delta message_stop",
		},
		{
			name: "no block at all still closes the open block",
			o:    openText,
			evs:  append([]sse.Event{start}, end...),
			want: "content_block_stop/1 message_delta message_stop",
		},
		{
			name: "no block before: the first block is 0",
			o:    Origin{LastIndex: -1},
			evs:  append([]sse.Event{start, textStart(0), text(0, "z"), stop(0)}, end...),
			want: "content_block_start/0 content_block_delta/0 content_block_stop/0 message_delta message_stop",
			text: "z",
		},
		{
			name: "initial text of a block start is kept",
			o:    closedText,
			evs: append([]sse.Event{start,
				ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"init"}}`),
				text(0, "+"), stop(0)}, end...),
			want: "content_block_start/2 content_block_delta/2 content_block_stop/2 message_delta message_stop",
			text: "init+",
		},
		{
			name: "initial text of a continued block becomes a delta",
			o:    openText,
			evs: append([]sse.Event{start,
				ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"init"}}`),
				stop(0)}, end...),
			want: "content_block_delta/1 content_block_stop/1 message_delta message_stop",
			text: "init",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := spliceAll(tt.o, tt.evs)
			if err != nil {
				t.Fatal(err)
			}
			if got := typesAndIndexes(t, out); got != tt.want {
				t.Errorf("spliced\n %s\nwant\n %s", got, tt.want)
			}
			var sb strings.Builder
			for _, e := range parseWire(t, out) {
				obj, _ := parseObject(e.Data)
				if obj == nil {
					continue
				}
				if d, ok := obj.getObject("delta"); ok {
					if s, ok := d.getString("text"); ok {
						sb.WriteString(s)
					}
				}
				if cb, ok := obj.getObject("content_block"); ok {
					if s, ok := cb.getString("text"); ok {
						sb.WriteString(s)
					}
				}
			}
			if sb.String() != tt.text {
				t.Errorf("spliced text %q, want %q", sb.String(), tt.text)
			}
		})
	}
}

func TestAnthropicSpliceStrip(t *testing.T) {
	tests := []struct {
		name   string
		strip  string
		deltas []string
		want   string
	}{
		{"exact", "  ", []string{"  Hello"}, "Hello"},
		{"spanning deltas", "  \n", []string{" ", " ", "\nX", " y"}, "X y"},
		{"continuation starts differently", " ", []string{"Hello"}, "Hello"},
		{"only partly matching", "\n\n", []string{"\nWorld"}, "World"},
		{"partial match then mismatch across deltas", " \n\t", []string{" ", "x"}, "x"},
		{"white space inside later text is kept", " ", []string{" a", " b "}, "a b "},
		{"multi-byte white space", "\u3000\u00a0", []string{"\u3000", "\u00a0次"}, "次"},
		{"runes sharing leading bytes are not split", "\u3000", []string{"\u3001x"}, "\u3001x"},
		{"everything stripped", "\n", []string{"\n"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Origin{LastIndex: 0, LastType: "text", LastOpen: true, NextIndex: 1, Strip: tt.strip}
			cont := msgStream{id: "c", deltas: tt.deltas, stopReason: "end_turn"}
			out, err := spliceAll(o, cont.events())
			if err != nil {
				t.Fatal(err)
			}
			prefix := wire(msgStream{id: "o", deltas: []string{"Start"}}.events()[:4])
			ms := observeMsg(parseWire(t, append(prefix, out...)))
			if v := ms.End(); v.Status != sse.Complete {
				t.Fatalf("verdict %v: %s", v.Status, v.Reason)
			}
			if got := strings.TrimPrefix(ms.Text(), "Start"); got != tt.want {
				t.Errorf("continued with %q, want %q", got, tt.want)
			}
			for _, e := range parseWire(t, out) {
				if e.Type == "content_block_delta" && strings.Contains(string(e.Data), `"text":""`) {
					t.Errorf("empty delta emitted: %s", e.Data)
				}
			}
		})
	}
}

func TestAnthropicSpliceMessageDelta(t *testing.T) {
	o := Origin{LastIndex: 0, LastType: "text", NextIndex: 1, Output: 40, Input: 100, CacheCreationInput: 3, CacheReadInput: 50}
	tests := []struct {
		name  string
		start string // the continuation's message_start usage
		delta string
		want  string
	}{
		{
			name:  "usage summed, other fields kept",
			start: `{"input_tokens":120,"cache_creation_input_tokens":0,"cache_read_input_tokens":50,"output_tokens":1}`,
			delta: `{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":7},"context_management":{"applied_edits":[]}}`,
			want:  `{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":47,"input_tokens":220,"cache_creation_input_tokens":3,"cache_read_input_tokens":100},"context_management":{"applied_edits":[]}}`,
		},
		{
			name:  "input repeated in message_delta wins over message_start",
			start: `{"input_tokens":120,"output_tokens":1}`,
			delta: `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":121,"output_tokens":7,"server_tool_use":{"web_search_requests":1}}}`,
			want:  `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":221,"output_tokens":47,"server_tool_use":{"web_search_requests":1}}}`,
		},
		{
			name:  "no usage reported by the continuation",
			start: `null`,
			delta: `{"type":"message_delta","delta":{"stop_reason":"end_turn"}}`,
			want:  `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":40}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []sse.Event{
				ev("message_start", `{"type":"message_start","message":{"id":"c","type":"message","role":"assistant","content":[],"usage":`+tt.start+`}}`),
				ev("message_delta", tt.delta),
			}
			out, err := spliceAll(o, evs)
			if err != nil {
				t.Fatal(err)
			}
			got := parseWire(t, out)
			if len(got) != 1 || got[0].Type != "message_delta" {
				t.Fatalf("spliced %q, want one message_delta", out)
			}
			if !jsonEqual(t, got[0].Data, tt.want) {
				t.Errorf("message_delta\n %s\nwant\n %s", got[0].Data, tt.want)
			}
		})
	}
}

func TestAnthropicSpliceErrors(t *testing.T) {
	start := ev("message_start", `{"type":"message_start","message":{"id":"c","usage":{"input_tokens":5,"output_tokens":1}}}`)
	blockStart := ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	tests := []struct {
		name      string
		evs       []sse.Event
		wantCE    string // ContinuationError type, or "" for ErrMalformed
		wantBytes int    // events written before the error
	}{
		{"error event", []sse.Event{start, ev("error", `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)}, "rate_limit_error", 0},
		{"error event with garbage", []sse.Event{start, ev("error", `not json`)}, "-", 0},
		{"invalid JSON", []sse.Event{start, blockStart, ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_del`)}, "", 0},
		{"event before message_start", []sse.Event{blockStart}, "", 0},
		{"second message_start", []sse.Event{start, start}, "", 0},
		{"delta for a block never started", []sse.Event{start, ev("content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"x"}}`)}, "", 0},
		{"type mismatch", []sse.Event{start, ev("content_block_stop", `{"type":"message_stop"}`)}, "", 0},
		{"event after message_stop", []sse.Event{start, ev("message_stop", `{"type":"message_stop"}`), blockStart}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := NewAnthropicSplicer(Origin{LastIndex: -1})
			var out []byte
			var err error
			for _, e := range tt.evs {
				if out, err = sp.Splice(out, e); err != nil {
					break
				}
			}
			if err == nil {
				t.Fatal("no error")
			}
			var ce *ContinuationError
			switch tt.wantCE {
			case "":
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("err = %v, want ErrMalformed", err)
				}
			case "-":
				if !errors.As(err, &ce) {
					t.Errorf("err = %v, want a ContinuationError", err)
				}
			default:
				if !errors.As(err, &ce) || ce.Type != tt.wantCE {
					t.Errorf("err = %v, want a ContinuationError of type %s", err, tt.wantCE)
				}
			}
			if !strings.HasPrefix(err.Error(), "resume: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if got := len(parseWire(t, out)); got != tt.wantBytes {
				t.Errorf("%d events written, want %d", got, tt.wantBytes)
			}
			// The splicer stays failed.
			if out2, err2 := sp.Splice(out, ev("ping", `{"type":"ping"}`)); err2 != err || len(out2) != len(out) {
				t.Errorf("after the error: Splice wrote %d bytes, err %v; want nothing and the same error", len(out2)-len(out), err2)
			}
		})
	}
}

func TestAnthropicSplicePassThrough(t *testing.T) {
	sp := NewAnthropicSplicer(Origin{LastIndex: -1})
	for _, e := range []sse.Event{
		ev("ping", `{"type": "ping"}`),
		ev("message_start", `{"type":"message_start","message":{"id":"c"}}`),
		ev("future_event", "{\"type\":\"future_event\",\n\"x\":1}"),
		ev("", `unnamed`),
		ev("message_stop", `{"type":"message_stop"}`),
		ev("ping", `{"type": "ping"}`),
	} {
		out, err := sp.Splice(nil, e)
		if err != nil {
			t.Fatalf("%s: %v", e.Type, err)
		}
		want := sse.AppendEvent(nil, e.Type, e.Data)
		if e.Type == "message_start" {
			want = nil
		}
		if string(out) != string(want) {
			t.Errorf("%s: spliced %q, want %q", e.Type, out, want)
		}
	}
}

func TestAnthropicSplicerResumable(t *testing.T) {
	start := ev("message_start", `{"type":"message_start","message":{"id":"c"}}`)
	o := Origin{LastIndex: 0, LastType: "text", LastOpen: true, NextIndex: 1, Text: "abc"}
	sp := NewAnthropicSplicer(o)
	for _, e := range []sse.Event{start,
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"def"}}`),
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`),
	} {
		if _, err := sp.Splice(nil, e); err != nil {
			t.Fatal(err)
		}
	}
	if ok, why := sp.Resumable(); !ok {
		t.Fatalf("text only: not resumable: %s", why)
	}
	if n := sp.Next(); n.Text != "abcdef" || n.LastOpen || n.LastIndex != 0 || n.NextIndex != 1 {
		t.Errorf("Next() = %+v, want text abcdef and block 0 closed", n)
	}
	if _, err := sp.Splice(nil, ev("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`)); err != nil {
		t.Fatal(err)
	}
	if ok, why := sp.Resumable(); ok || !strings.Contains(why, "tool_use") {
		t.Errorf("after a tool_use block: Resumable = %v, %q", ok, why)
	}
	if n := sp.Next(); n.LastIndex != 1 || n.LastType != "tool_use" || !n.LastOpen || n.NextIndex != 2 {
		t.Errorf("Next() = %+v, want the open tool_use block 1", n)
	}
}
