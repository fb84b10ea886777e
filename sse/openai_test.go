package sse

import (
	"fmt"
	"strings"
	"testing"
)

// Builders for OpenAI chat completion chunks.
func oChunk(choices string) Event {
	return ev("", fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[%s]}`, choices))
}

func oContent(i int, text string) Event {
	return oChunk(fmt.Sprintf(`{"index":%d,"delta":{"content":%q},"finish_reason":null}`, i, text))
}

func oFinish(i int, reason string) Event {
	return oChunk(fmt.Sprintf(`{"index":%d,"delta":{},"finish_reason":%q}`, i, reason))
}

func oUsage(prompt, completion int) Event {
	return ev("", fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":2}}}`, prompt, completion, prompt+completion))
}

func oDone() Event { return ev("", "[DONE]") }

func TestChatStreamVerdict(t *testing.T) {
	role := oChunk(`{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}`)
	tests := []struct {
		name   string
		events []Event
		end    bool
		status Status
		reason string
	}{
		{name: "complete", events: []Event{role, oContent(0, "hi"), oFinish(0, "stop"), oDone()}, status: Complete, reason: "[DONE]"},
		{name: "complete with usage", events: []Event{role, oContent(0, "hi"), oFinish(0, "stop"), oUsage(5, 2), oDone()}, status: Complete},
		{name: "finish_reason alone waits for the end", events: []Event{role, oContent(0, "hi"), oFinish(0, "stop")}, status: InProgress},
		{name: "clean end without [DONE]", events: []Event{role, oContent(0, "hi"), oFinish(0, "length")}, end: true, status: Complete, reason: "without [DONE]"},
		{name: "end before finish_reason", events: []Event{role, oContent(0, "hi")}, end: true, status: Truncated, reason: "choice 0"},
		{name: "end before any choice", end: true, status: Truncated, reason: "before any choice"},
		{name: "[DONE] before finish_reason", events: []Event{role, oContent(0, "hi"), oDone()}, status: Truncated, reason: "[DONE] before finish_reason for choice 0"},
		{name: "[DONE] alone", events: []Event{oDone()}, end: true, status: Truncated, reason: "before any choice"},
		{name: "every choice must finish", events: []Event{oContent(0, "a"), oContent(1, "b"), oFinish(0, "stop"), oDone()}, status: Truncated, reason: "choice 1"},
		{name: "two choices finished", events: []Event{oContent(0, "a"), oContent(1, "b"), oFinish(1, "stop"), oFinish(0, "stop"), oDone()}, status: Complete},
		{name: "finish in the content chunk", events: []Event{oChunk(`{"index":0,"delta":{"content":"all"},"finish_reason":"stop"}`), oDone()}, status: Complete},
		{name: "keep-alive and event names tolerated", events: []Event{ev("", ""), ev("message", " "), role, oFinish(0, "stop"), oDone()}, status: Complete},
		{name: "repeated finish_reason tolerated", events: []Event{role, oFinish(0, "stop"), oChunk(`{"index":0,"delta":{},"finish_reason":"stop"}`), oDone()}, status: Complete},
		{name: "unexpected field types ignored", events: []Event{oChunk(`{"index":0,"delta":{"content":["part"],"role":7},"finish_reason":9}`), oFinish(0, "stop"), oDone()}, status: Complete},
		{name: "mid-stream error", events: []Event{role, oContent(0, "x"), ev("", `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`)}, status: Errored, reason: "server_error"},
		{name: "error with a string", events: []Event{ev("", `{"error":"backend exploded"}`)}, status: Errored, reason: "backend exploded"},
		{name: "error object form", events: []Event{ev("", `{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}`)}, status: Errored, reason: "BadRequestError (400)"},
		{name: "error event name", events: []Event{ev("error", `{"message":"overloaded","type":"overloaded_error"}`)}, status: Errored, reason: "overloaded_error"},
		{name: "null error is not an error", events: []Event{ev("", `{"error":null,"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}`), oDone()}, status: Complete},
		{name: "error is final", events: []Event{ev("", `{"error":{"type":"server_error"}}`), oFinish(0, "stop"), oDone()}, end: true, status: Errored},
		{name: "non-JSON data", events: []Event{role, ev("", "<html>502</html>")}, status: Malformed, reason: "neither [DONE] nor a JSON object"},
		{name: "broken JSON", events: []Event{role, ev("", `{"choices":[{"index":0,`)}, status: Malformed, reason: "invalid chunk"},
		{name: "choices not an array", events: []Event{ev("", `{"choices":{"index":0}}`)}, status: Malformed, reason: "invalid chunk"},
		{name: "invalid choice index", events: []Event{oChunk(`{"index":-1,"delta":{"content":"a"}}`)}, status: Malformed, reason: "invalid index"},
		{name: "invalid tool call index", events: []Event{oChunk(`{"index":0,"delta":{"tool_calls":[{"index":"x","function":{"arguments":"{"}}]}}`)}, status: Malformed, reason: "tool call"},
		{name: "content after finish_reason", events: []Event{oFinish(0, "stop"), oContent(0, "more")}, status: Malformed, reason: "after finish_reason"},
		{name: "event after [DONE]", events: []Event{oFinish(0, "stop"), oDone(), oContent(0, "more")}, status: Malformed, reason: "after [DONE]"},
		{name: "[DONE] twice", events: []Event{oFinish(0, "stop"), oDone(), oDone()}, status: Malformed, reason: "after [DONE]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s ChatStream
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

func TestChatStreamContent(t *testing.T) {
	var s ChatStream
	if s.OutputTokens() != -1 || s.SawUsage() || s.Finished() {
		t.Fatal("zero ChatStream reports usage or completion")
	}
	observeAll(&s, []Event{
		oChunk(`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}`),
		oChunk(`{"index":0,"delta":{"reasoning_content":"hmm "},"finish_reason":null}`),
		oContent(0, "Hel"), oContent(0, "lo"),
		oChunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":""}}]},"finish_reason":null}`),
		oChunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}},{"index":1,"id":"call_2","type":"function","function":{"name":"put","arguments":"{}"}}]},"finish_reason":null}`),
		oChunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":null}`),
		oContent(1, "other"),
		oFinish(0, "tool_calls"),
		oFinish(1, "stop"),
		oUsage(40, 12),
	})
	if !s.Finished() || s.SawDone() {
		t.Fatalf("Finished %v SawDone %v, want true false", s.Finished(), s.SawDone())
	}
	if s.Text() != "Hello" || s.FinishReason() != "tool_calls" || s.ID() != "chatcmpl-1" || s.Model() != "gpt-test" {
		t.Fatalf("Text %q FinishReason %q ID %q Model %q", s.Text(), s.FinishReason(), s.ID(), s.Model())
	}
	c, ok := s.Choice(0)
	if !ok || c.Role != "assistant" || c.Reasoning != "hmm " || len(c.ToolCalls) != 2 {
		t.Fatalf("choice 0 %+v", c)
	}
	if tc := c.ToolCalls[0]; tc.ID != "call_1" || tc.Name != "get" || tc.Type != "function" || tc.Arguments != `{"a":1}` {
		t.Fatalf("tool call 0 %+v", tc)
	}
	if tc := c.ToolCalls[1]; tc.ID != "call_2" || tc.Name != "put" || tc.Arguments != "{}" {
		t.Fatalf("tool call 1 %+v", tc)
	}
	if c1, _ := s.Choice(1); c1.Content != "other" || c1.FinishReason != "stop" {
		t.Fatalf("choice 1 %+v", c1)
	}
	if _, ok := s.Choice(7); ok {
		t.Fatal("Choice(7) found")
	}
	if got := len(s.Choices()); got != 2 {
		t.Fatalf("%d choices", got)
	}
	want := ChatUsage{PromptTokens: 40, CompletionTokens: 12, TotalTokens: 52, CachedTokens: 3, ReasoningTokens: 2}
	if u := s.Usage(); u != want || s.OutputTokens() != 12 || !s.SawUsage() {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
	// Deltas with content: reasoning, two content, three tool call chunks,
	// one content for choice 1.
	if s.DeltaCount() != 7 || s.Chunks() != 11 {
		t.Fatalf("DeltaCount %d Chunks %d, want 7 and 11", s.DeltaCount(), s.Chunks())
	}
	if v := s.End(); v.Status != Complete {
		t.Fatalf("End %+v", v)
	}
}

func TestChatStreamErrorEvent(t *testing.T) {
	raw := `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	var s ChatStream
	s.Observe(ev("", raw))
	v := s.Verdict()
	if v.Error == nil || v.Error.Type != "requests" || v.Error.Code != "rate_limit_exceeded" || v.Error.Message != "Rate limit reached" || string(v.Error.Raw) != raw {
		t.Fatalf("error %+v", v.Error)
	}
	if got := v.Error.Error(); got != "sse: error event requests (rate_limit_exceeded): Rate limit reached" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestChatStreamInterrupt(t *testing.T) {
	var s ChatStream
	observeAll(&s, []Event{oContent(0, "a"), oFinish(0, "stop")})
	// Every choice finished, but the body did not end cleanly: the usage
	// chunk and [DONE] may have been lost.
	if v := s.Interrupt(""); v.Status != Truncated || v.Reason == "" {
		t.Fatalf("Interrupt %+v", v)
	}
	var done ChatStream
	observeAll(&done, []Event{oContent(0, "a"), oFinish(0, "stop"), oDone()})
	if v := done.Interrupt("reset"); v.Status != Complete {
		t.Fatalf("Interrupt after [DONE] %+v", v)
	}
}

func TestChatStreamIgnoresEventsAfterEnd(t *testing.T) {
	var s ChatStream
	observeAll(&s, []Event{oContent(0, "a"), oFinish(0, "stop")})
	if v := s.End(); v.Status != Complete {
		t.Fatalf("End %+v", v)
	}
	observeAll(&s, []Event{ev("", `{"error":{"type":"server_error"}}`), oDone()})
	if v := s.Verdict(); v.Status != Complete || s.SawDone() {
		t.Fatalf("events after End changed the stream: %+v, SawDone %v", v, s.SawDone())
	}
}
