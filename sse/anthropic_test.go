package sse

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Builders for Anthropic events, in the API's own shapes.
func aStart(inputTokens, outputTokens int) Event {
	return ev(EventMessageStart, fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-test","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":%d}}}`, inputTokens, outputTokens))
}

func aBlockStart(i int, typ string) Event {
	cb := fmt.Sprintf(`{"type":%q,"text":""}`, typ)
	switch typ {
	case "tool_use":
		cb = `{"type":"tool_use","id":"toolu_1","name":"lookup","input":{}}`
	case "thinking":
		cb = `{"type":"thinking","thinking":"","signature":""}`
	}
	return ev(EventContentBlockStart, fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":%s}`, i, cb))
}

func aText(i int, text string) Event {
	return ev(EventContentBlockDelta, fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%q}}`, i, text))
}

func aDelta(i int, delta string) Event {
	return ev(EventContentBlockDelta, fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":%s}`, i, delta))
}

func aBlockStop(i int) Event {
	return ev(EventContentBlockStop, fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, i))
}

func aMessageDelta(stop string, outputTokens int) Event {
	return ev(EventMessageDelta, fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%q,"stop_sequence":null},"usage":{"output_tokens":%d}}`, stop, outputTokens))
}

func aStop() Event { return ev(EventMessageStop, `{"type":"message_stop"}`) }

func aPing() Event { return ev(EventPing, `{"type": "ping"}`) }

func aError(typ, msg string) Event {
	return ev(EventError, fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":%q}}`, typ, msg))
}

// aComplete is a whole one-block text answer.
func aComplete(text string) []Event {
	return []Event{aStart(10, 1), aBlockStart(0, "text"), aText(0, text), aBlockStop(0), aMessageDelta("end_turn", 5), aStop()}
}

func observeAll(s interface{ Observe(Event) }, evs []Event) {
	for _, e := range evs {
		s.Observe(e)
	}
}

func TestMessageStreamVerdict(t *testing.T) {
	ok := aComplete("hi")
	tests := []struct {
		name   string
		events []Event
		end    bool   // call End after the events
		status Status // the verdict after the events (and End)
		reason string // a substring of the verdict's reason
	}{
		{name: "complete", events: ok, status: Complete},
		{name: "complete stays complete at End", events: ok, end: true, status: Complete},
		{name: "in progress", events: ok[:3], status: InProgress},
		{name: "EOF without message_stop", events: ok[:5], end: true, status: Truncated, reason: "before message_stop"},
		{name: "EOF inside a block", events: ok[:3], end: true, status: Truncated, reason: "inside text block 0"},
		{name: "EOF before anything", end: true, status: Truncated, reason: "before message_start"},
		{name: "pings and unknown events ignored", events: append([]Event{aPing(), ev("future_event", "not json")}, append(ok[:5:5], ev("", `{"type":"message_stop"}`), aPing(), aStop())...), status: Complete},
		{name: "unknown delta type tolerated", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aDelta(0, `{"type":"future_delta","x":[1]}`), aBlockStop(0), aStop()}, status: Complete},
		{name: "citations delta tolerated", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aDelta(0, `{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x"}}`), aBlockStop(0), aStop()}, status: Complete},
		{name: "unknown block type tolerated", events: []Event{aStart(1, 1), ev(EventContentBlockStart, `{"type":"content_block_start","index":0,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[{"type":"web_search_result","title":"x"}],"text":7}}`), aBlockStop(0), aStop()}, status: Complete},
		{name: "interleaved open blocks tolerated", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aBlockStart(1, "text"), aText(0, "a"), aText(1, "b"), aBlockStop(1), aBlockStop(0), aStop()}, status: Complete},
		{name: "message_stop with an open block", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aText(0, "a"), aStop()}, status: Complete},
		{name: "several message_delta", events: []Event{aStart(1, 1), aMessageDelta("", 3), aBlockStart(0, "text"), aBlockStop(0), aMessageDelta("end_turn", 9), aStop()}, status: Complete},
		{name: "overloaded mid-stream", events: append(ok[:3:3], aError("overloaded_error", "Overloaded")), status: Errored, reason: "overloaded_error: Overloaded"},
		{name: "error is final", events: append(ok[:3:3], aError("rate_limit_error", "slow down"), aText(0, "x"), aStop()), end: true, status: Errored, reason: "rate_limit_error"},
		{name: "error before message_start", events: []Event{aError("api_error", "Internal server error")}, status: Errored},
		{name: "error with unparsable data", events: []Event{aStart(1, 1), ev(EventError, "upstream connect error")}, status: Errored, reason: "unparsable"},
		{name: "non-JSON on a known event", events: []Event{aStart(1, 1), ev(EventContentBlockStart, "{not json")}, status: Malformed, reason: "invalid JSON"},
		{name: "type disagrees with event name", events: []Event{aStart(1, 1), ev(EventContentBlockStop, `{"type":"content_block_start","index":0}`)}, status: Malformed, reason: "data of type"},
		{name: "missing type", events: []Event{ev(EventMessageStart, `{"message":{}}`)}, status: Malformed, reason: "data of type"},
		{name: "block before message_start", events: ok[1:], status: Malformed, reason: "before message_start"},
		{name: "message_stop before message_start", events: []Event{aStop()}, status: Malformed, reason: "before message_start"},
		{name: "second message_start", events: []Event{aStart(1, 1), aStart(1, 1)}, status: Malformed, reason: "second message_start"},
		{name: "message_start without message", events: []Event{ev(EventMessageStart, `{"type":"message_start"}`)}, status: Malformed, reason: "without a message"},
		{name: "block index gap", events: []Event{aStart(1, 1), aBlockStart(1, "text")}, status: Malformed, reason: "index 1, want 0"},
		{name: "block index repeated", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aBlockStart(0, "text")}, status: Malformed, reason: "index 0, want 1"},
		{name: "block without content_block", events: []Event{aStart(1, 1), ev(EventContentBlockStart, `{"type":"content_block_start","index":0}`)}, status: Malformed, reason: "content_block type"},
		{name: "negative index", events: []Event{aStart(1, 1), ev(EventContentBlockStart, `{"type":"content_block_start","index":-1,"content_block":{"type":"text"}}`)}, status: Malformed, reason: "valid index"},
		{name: "delta for an unknown index", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aText(3, "x")}, status: Malformed, reason: "never started"},
		{name: "delta after block stop", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aBlockStop(0), aText(0, "x")}, status: Malformed, reason: "already stopped"},
		{name: "double block stop", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aBlockStop(0), aBlockStop(0)}, status: Malformed, reason: "already stopped"},
		{name: "delta without type", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aDelta(0, `{"text":"x"}`)}, status: Malformed, reason: "without a delta type"},
		{name: "text_delta without text", events: []Event{aStart(1, 1), aBlockStart(0, "text"), aDelta(0, `{"type":"text_delta","text":5}`)}, status: Malformed, reason: "without its string field"},
		{name: "event after message_stop", events: append(ok[:6:6], aText(0, "more")), status: Malformed, reason: "after message_stop"},
		{name: "error after message_stop", events: append(ok[:6:6], aError("overloaded_error", "x")), status: Malformed, reason: "after message_stop"},
		{name: "malformed is final", events: []Event{aStop(), aStart(1, 1), aStop()}, end: true, status: Malformed, reason: "before message_start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s MessageStream
			observeAll(&s, tt.events)
			v := s.Verdict()
			if tt.end {
				v = s.End()
				if again := s.End(); again != v {
					t.Fatalf("End is not idempotent: %+v then %+v", v, again)
				}
			}
			if v.Status != tt.status || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("verdict %v %q, want %v containing %q", v.Status, v.Reason, tt.status, tt.reason)
			}
			if (v.Status == Errored) != (v.Error != nil) {
				t.Fatalf("verdict %v with Error %v", v.Status, v.Error)
			}
			if v.Status != InProgress && v.Reason == "" {
				t.Fatalf("final verdict %v without a reason", v.Status)
			}
		})
	}
}

func TestMessageStreamErrorEvent(t *testing.T) {
	raw := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}`
	var s MessageStream
	observeAll(&s, []Event{aStart(5, 1), ev(EventError, raw)})
	v := s.End()
	if v.Error == nil || v.Error.Type != "overloaded_error" || v.Error.Message != "Overloaded" || string(v.Error.Raw) != raw {
		t.Fatalf("error event %+v", v.Error)
	}
	if got := v.Error.Error(); got != "sse: error event overloaded_error: Overloaded" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestMessageStreamUsage(t *testing.T) {
	var s MessageStream
	if u := s.Usage(); u != (Usage{-1, -1, -1, -1}) {
		t.Fatalf("zero stream usage %+v, want all unknown", u)
	}
	observeAll(&s, []Event{
		ev(EventMessageStart, `{"type":"message_start","message":{"id":"msg_9","model":"m","role":"assistant","usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":300,"output_tokens":1}}}`),
		aBlockStart(0, "text"), aText(0, "a"),
		aMessageDelta("", 10),
		aText(0, "b"), aBlockStop(0),
		// Cumulative counts: the last one wins, nothing is summed.
		aMessageDelta("max_tokens", 25),
		// A garbled count is unknown and keeps the previous value.
		ev(EventMessageDelta, `{"type":"message_delta","delta":{},"usage":{"output_tokens":"lots","input_tokens":120}}`),
	})
	want := Usage{InputTokens: 120, CacheCreationInputTokens: 20, CacheReadInputTokens: 300, OutputTokens: 25}
	if u := s.Usage(); u != want {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
	if s.OutputTokens() != 25 || s.StopReason() != "max_tokens" || s.ID() != "msg_9" || s.Model() != "m" || s.Role() != "assistant" {
		t.Fatalf("tokens %d stop %q id %q model %q role %q", s.OutputTokens(), s.StopReason(), s.ID(), s.Model(), s.Role())
	}
	if s.DeltaCount() != 2 || s.Events() != 8 {
		t.Fatalf("DeltaCount %d Events %d, want 2 and 8", s.DeltaCount(), s.Events())
	}
}

func TestMessageStreamBlocks(t *testing.T) {
	var s MessageStream
	if _, ok := s.LastBlock(); ok {
		t.Fatal("LastBlock on an empty stream")
	}
	observeAll(&s, []Event{
		aStart(1, 1),
		aBlockStart(0, "thinking"),
		aDelta(0, `{"type":"thinking_delta","thinking":"let me "}`),
		aDelta(0, `{"type":"thinking_delta","thinking":"think"}`),
		aDelta(0, `{"type":"signature_delta","signature":"sig"}`),
		aBlockStop(0),
		aBlockStart(1, "text"), aText(1, "Hello, "), aText(1, "world"), aBlockStop(1),
		aBlockStart(2, "tool_use"),
		aDelta(2, `{"type":"input_json_delta","partial_json":"{\"q\":"}`),
		aDelta(2, `{"type":"input_json_delta","partial_json":"\"go\"}"}`),
		aBlockStop(2),
		aBlockStart(3, "text"), aText(3, "!"),
	})
	if got := s.Text(); got != "Hello, world!" {
		t.Fatalf("Text() = %q", got)
	}
	if s.NumBlocks() != 4 || s.TextOnly() {
		t.Fatalf("NumBlocks %d TextOnly %v", s.NumBlocks(), s.TextOnly())
	}
	think, _ := s.Block(0)
	if think.Type != "thinking" || think.Thinking != "let me think" || think.Signature != "sig" || !think.Stopped || think.Deltas != 3 {
		t.Fatalf("thinking block %+v", think)
	}
	tool, _ := s.Block(2)
	if tool.Type != "tool_use" || tool.ID != "toolu_1" || tool.Name != "lookup" || tool.PartialJSON != `{"q":"go"}` || !tool.Stopped {
		t.Fatalf("tool block %+v", tool)
	}
	last, ok := s.LastBlock()
	if !ok || last.Index != 3 || last.Type != "text" || last.Text != "!" || last.Stopped {
		t.Fatalf("LastBlock %+v", last)
	}
	if _, ok := s.Block(4); ok {
		t.Fatal("Block(4) found")
	}
	if _, ok := s.Block(-1); ok {
		t.Fatal("Block(-1) found")
	}
	blocks := s.Blocks()
	if len(blocks) != 4 || blocks[1].Text != "Hello, world" {
		t.Fatalf("Blocks() %+v", blocks)
	}
	var text MessageStream
	observeAll(&text, aComplete("x"))
	if !text.TextOnly() || !text.Started() {
		t.Fatal("a text-only stream is not TextOnly or not Started")
	}
}

func TestMessageStreamInterrupt(t *testing.T) {
	var s MessageStream
	observeAll(&s, aComplete("x")[:3])
	v := s.Interrupt("idle timeout")
	if v.Status != Truncated || v.Reason != "idle timeout" {
		t.Fatalf("Interrupt verdict %+v", v)
	}
	if v2 := s.End(); v2 != v {
		t.Fatalf("End after Interrupt changed the verdict to %+v", v2)
	}
	var done MessageStream
	observeAll(&done, aComplete("x"))
	if v := done.Interrupt("read error"); v.Status != Complete {
		t.Fatalf("Interrupt after message_stop gave %+v", v)
	}
}

func TestMessageStreamConcurrentUse(t *testing.T) {
	var s MessageStream
	evs := aComplete(strings.Repeat("x", 10))
	var wg sync.WaitGroup
	wg.Go(func() { observeAll(&s, evs) })
	wg.Go(func() {
		for range 100 {
			_ = s.Verdict()
			_ = s.Text()
			_, _ = s.LastBlock()
		}
	})
	wg.Wait()
	if v := s.End(); v.Status != Complete {
		t.Fatalf("verdict %+v", v)
	}
}

func TestStatusString(t *testing.T) {
	tests := []struct {
		s    Status
		want string
	}{
		{InProgress, "in_progress"}, {Complete, "complete"}, {Errored, "errored"},
		{Truncated, "truncated"}, {Malformed, "malformed"}, {Status(200), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			if tt.s.Final() == (tt.s == InProgress) {
				t.Fatalf("Final() = %v for %v", tt.s.Final(), tt.s)
			}
		})
	}
}

func TestMessageStreamIgnoresEventsAfterEnd(t *testing.T) {
	evs := aComplete("x")
	var s MessageStream
	observeAll(&s, evs[:3])
	if v := s.End(); v.Status != Truncated {
		t.Fatalf("End %+v", v)
	}
	observeAll(&s, evs[3:])
	if v := s.Verdict(); v.Status != Truncated {
		t.Fatalf("events after End changed the verdict to %+v", v)
	}
	if s.StopReason() != "" {
		t.Fatalf("events after End were applied: stop reason %q", s.StopReason())
	}
}
