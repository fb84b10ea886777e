package sse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
)

// ChatUsage is the usage chunk of an OpenAI chat completions stream (sent
// when the request set stream_options.include_usage). Counts the stream has
// not reported are -1.
type ChatUsage struct {
	// PromptTokens is usage.prompt_tokens.
	PromptTokens int64 `json:"prompt_tokens"`
	// CompletionTokens is usage.completion_tokens.
	CompletionTokens int64 `json:"completion_tokens"`
	// TotalTokens is usage.total_tokens.
	TotalTokens int64 `json:"total_tokens"`
	// CachedTokens is usage.prompt_tokens_details.cached_tokens.
	CachedTokens int64 `json:"cached_tokens"`
	// ReasoningTokens is usage.completion_tokens_details.reasoning_tokens.
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

func unknownChatUsage() ChatUsage {
	return ChatUsage{PromptTokens: -1, CompletionTokens: -1, TotalTokens: -1, CachedTokens: -1, ReasoningTokens: -1}
}

// Choice is a snapshot of one choice of a chat completions stream.
type Choice struct {
	// Index is the choice's index.
	Index int64 `json:"index"`
	// Role is delta.role, normally "assistant" in the first chunk.
	Role string `json:"role,omitempty"`
	// Content is the concatenated delta.content.
	Content string `json:"content"`
	// Reasoning is the concatenated delta.reasoning_content (or
	// delta.reasoning) that some OpenAI-compatible servers send.
	Reasoning string `json:"reasoning,omitempty"`
	// Refusal is the concatenated delta.refusal.
	Refusal string `json:"refusal,omitempty"`
	// ToolCalls are the tool calls assembled from delta.tool_calls
	// fragments, in order of first appearance.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// FinishReason is the choice's finish_reason ("stop", "length",
	// "tool_calls", "content_filter", "function_call"), or "" while it is
	// unfinished.
	FinishReason string `json:"finish_reason"`
	// Deltas is the number of chunks that added content to the choice.
	Deltas int `json:"deltas"`
}

// ToolCall is one tool call of a choice, assembled from its fragments.
type ToolCall struct {
	// Index is the tool call's index within the choice.
	Index int64 `json:"index"`
	// ID is the call id ("call_..."), sent in its first fragment.
	ID string `json:"id,omitempty"`
	// Type is the call type, normally "function".
	Type string `json:"type,omitempty"`
	// Name is the function name.
	Name string `json:"name,omitempty"`
	// Arguments is the concatenated function.arguments fragments: JSON
	// text, complete only once the choice finished.
	Arguments string `json:"arguments"`
}

type toolState struct {
	index         int64
	id, typ, name string
	args          []byte
}

type choiceState struct {
	index     int64
	role      string
	content   []byte
	reasoning []byte
	refusal   []byte
	tools     []toolState
	finish    string
	deltas    int
}

func (c *choiceState) snapshot() Choice {
	out := Choice{
		Index:        c.index,
		Role:         c.role,
		Content:      string(c.content),
		Reasoning:    string(c.reasoning),
		Refusal:      string(c.refusal),
		FinishReason: c.finish,
		Deltas:       c.deltas,
	}
	for _, t := range c.tools {
		out.ToolCalls = append(out.ToolCalls, ToolCall{Index: t.index, ID: t.id, Type: t.typ, Name: t.name, Arguments: string(t.args)})
	}
	return out
}

func (c *choiceState) tool(index int64) *toolState {
	for i := range c.tools {
		if c.tools[i].index == index {
			return &c.tools[i]
		}
	}
	c.tools = append(c.tools, toolState{index: index})
	return &c.tools[len(c.tools)-1]
}

// ChatStream models an OpenAI (or OpenAI-compatible) chat completions
// stream: "data:" events carrying chat.completion.chunk objects, ended by
// "data: [DONE]". Feed it every event with Observe, then call End at a clean
// end of the body or Interrupt at an unclean one.
//
// The stream is Complete when every choice that appeared got a
// finish_reason and then either [DONE] arrived or the body ended cleanly
// (some providers never send [DONE]). [DONE] before a finish_reason for
// every choice (or before any choice) makes it Truncated at once; so does an
// end of the body before them. A chunk with a top-level "error" (or, as some
// compatible servers send, "object": "error"), or an event named "error",
// makes it Errored.
//
// Malformed: data that is neither [DONE] nor a JSON object, JSON that does
// not have the chunk's shape (choices not an array, a delta not an object),
// an invalid choice index, content for a choice after its finish_reason,
// and any event after [DONE]. Tolerated: empty data (a keep-alive), event
// names, unknown fields, a changing chunk id, a repeated finish_reason, and
// fields of unexpected JSON types (ignored).
//
// Errored and Malformed are final: later events are ignored, as are events
// observed after End or Interrupt.
//
// The zero value is ready to use. A ChatStream is safe for concurrent use.
type ChatStream struct {
	mu       sync.Mutex
	verdict  Verdict
	id       string
	model    string
	choices  []choiceState
	byIndex  map[int64]int
	usage    ChatUsage
	usageSet bool
	sawUsage bool
	done     bool
	deltas   int
	chunks   int
	ended    bool // End or Interrupt was called
}

type chatChunk struct {
	ID      jsonRef         `json:"id"`
	Object  jsonRef         `json:"object"`
	Model   jsonRef         `json:"model"`
	Choices []chatChoice    `json:"choices"`
	Usage   *chatUsage      `json:"usage"`
	Error   json.RawMessage `json:"error"`
	Message jsonString      `json:"message"`
	Type    jsonString      `json:"type"`
	Code    jsonCode        `json:"code"`
}

type chatChoice struct {
	Index        jsonInt    `json:"index"`
	Delta        *chatDelta `json:"delta"`
	FinishReason jsonString `json:"finish_reason"`
}

type chatDelta struct {
	Role             jsonString     `json:"role"`
	Content          jsonString     `json:"content"`
	ReasoningContent jsonString     `json:"reasoning_content"`
	Reasoning        jsonString     `json:"reasoning"`
	Refusal          jsonString     `json:"refusal"`
	ToolCalls        []chatToolCall `json:"tool_calls"`
}

type chatToolCall struct {
	Index    jsonInt    `json:"index"`
	ID       jsonString `json:"id"`
	Type     jsonString `json:"type"`
	Function *struct {
		Name      jsonString `json:"name"`
		Arguments jsonString `json:"arguments"`
	} `json:"function"`
}

type chatUsage struct {
	PromptTokens        jsonInt `json:"prompt_tokens"`
	CompletionTokens    jsonInt `json:"completion_tokens"`
	TotalTokens         jsonInt `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens jsonInt `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens jsonInt `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

type chatError struct {
	Type    jsonString `json:"type"`
	Code    jsonCode   `json:"code"`
	Message jsonString `json:"message"`
}

var doneMarker = []byte("[DONE]")

// Observe feeds the model the next event of the stream.
func (s *ChatStream) Observe(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	st := s.verdict.Status
	if s.ended || st == Errored || st == Malformed {
		return
	}
	data := bytes.TrimSpace(ev.Data)
	if s.done {
		s.malformed("event after [DONE]")
		return
	}
	if ev.Type == EventError {
		s.errorEvent(ev.Data, nil)
		return
	}
	if len(data) == 0 {
		return
	}
	if bytes.Equal(data, doneMarker) {
		s.done = true
		s.verdict = s.doneVerdict()
		return
	}
	if !isJSONObject(data) {
		s.malformed("data is neither [DONE] nor a JSON object")
		return
	}
	var c chatChunk
	if err := json.Unmarshal(data, &c); err != nil {
		s.malformed(fmt.Sprintf("invalid chunk: %v", err))
		return
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		s.errorEvent(ev.Data, c.Error)
		return
	}
	if string(c.Object.raw) == `"error"` {
		s.verdict = Verdict{Status: Errored, Error: &ErrorEvent{
			Type: c.Type.V, Code: c.Code.V, Message: c.Message.V, Raw: bytes.Clone(ev.Data),
		}}
		s.verdict.Reason = errorReason(s.verdict.Error)
		return
	}
	s.chunks++
	if s.id == "" {
		s.id = c.ID.String()
	}
	if s.model == "" {
		s.model = c.Model.String()
	}
	for i := range c.Choices {
		if !s.choice(&c.Choices[i], i) {
			return
		}
	}
	if c.Usage != nil {
		s.sawUsage = true
		set := func(dst *int64, v jsonInt) {
			if v.OK {
				*dst = v.V
			}
		}
		set(&s.usage.PromptTokens, c.Usage.PromptTokens)
		set(&s.usage.CompletionTokens, c.Usage.CompletionTokens)
		set(&s.usage.TotalTokens, c.Usage.TotalTokens)
		if d := c.Usage.PromptTokensDetails; d != nil {
			set(&s.usage.CachedTokens, d.CachedTokens)
		}
		if d := c.Usage.CompletionTokensDetails; d != nil {
			set(&s.usage.ReasoningTokens, d.ReasoningTokens)
		}
	}
}

func (s *ChatStream) init() {
	if !s.usageSet {
		s.usage = unknownChatUsage()
		s.usageSet = true
	}
}

func (s *ChatStream) malformed(reason string) {
	s.verdict = Verdict{Status: Malformed, Reason: reason}
}

// choice applies one choice of a chunk; it reports false when the stream
// became Malformed.
func (s *ChatStream) choice(cc *chatChoice, pos int) bool {
	idx := int64(0)
	if cc.Index.Present {
		if !cc.Index.OK {
			s.malformed("choice with an invalid index")
			return false
		}
		idx = cc.Index.V
	}
	c := s.lookup(idx)
	if d := cc.Delta; d != nil {
		reasoning := d.ReasoningContent.V + d.Reasoning.V
		added := d.Content.V != "" || reasoning != "" || d.Refusal.V != ""
		for _, tc := range d.ToolCalls {
			if tc.ID.V != "" || (tc.Function != nil && (tc.Function.Name.V != "" || tc.Function.Arguments.V != "")) {
				added = true
			}
		}
		if added && c.finish != "" {
			s.malformed(fmt.Sprintf("content for choice %d after finish_reason %q", idx, c.finish))
			return false
		}
		if d.Role.OK && d.Role.V != "" {
			c.role = d.Role.V
		}
		c.content = append(c.content, d.Content.V...)
		c.reasoning = append(c.reasoning, reasoning...)
		c.refusal = append(c.refusal, d.Refusal.V...)
		for j, tc := range d.ToolCalls {
			ti := int64(j)
			if tc.Index.Present {
				if !tc.Index.OK {
					s.malformed(fmt.Sprintf("tool call with an invalid index in choice %d", idx))
					return false
				}
				ti = tc.Index.V
			}
			t := c.tool(ti)
			if tc.ID.V != "" {
				t.id = tc.ID.V
			}
			if tc.Type.V != "" {
				t.typ = tc.Type.V
			}
			if f := tc.Function; f != nil {
				if t.name == "" {
					t.name = f.Name.V
				}
				t.args = append(t.args, f.Arguments.V...)
			}
		}
		if added {
			c.deltas++
			s.deltas++
		}
	}
	if cc.FinishReason.OK && cc.FinishReason.V != "" && c.finish == "" {
		c.finish = cc.FinishReason.V
	}
	return true
}

func (s *ChatStream) lookup(idx int64) *choiceState {
	if i, ok := s.byIndex[idx]; ok {
		return &s.choices[i]
	}
	if s.byIndex == nil {
		s.byIndex = make(map[int64]int)
	}
	s.byIndex[idx] = len(s.choices)
	s.choices = append(s.choices, choiceState{index: idx})
	return &s.choices[len(s.choices)-1]
}

func (s *ChatStream) errorEvent(raw []byte, obj json.RawMessage) {
	e := &ErrorEvent{Raw: bytes.Clone(raw)}
	if obj == nil {
		// An event named "error": its data is the chunk, or the error
		// object itself.
		var wrapped struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(raw, &wrapped) == nil && len(wrapped.Error) > 0 {
			obj = wrapped.Error
		} else {
			obj = raw
		}
	}
	var ce chatError
	var msg string
	switch {
	case json.Unmarshal(obj, &ce) == nil:
		e.Type, e.Code, e.Message = ce.Type.V, ce.Code.V, ce.Message.V
	case json.Unmarshal(obj, &msg) == nil:
		e.Message = msg
	}
	s.verdict = Verdict{Status: Errored, Reason: errorReason(e), Error: e}
}

func errorReason(e *ErrorEvent) string {
	reason := "error in stream"
	if e.Type != "" {
		reason += ": " + e.Type
	}
	if e.Code != "" {
		reason += " (" + e.Code + ")"
	}
	if e.Message != "" {
		reason += ": " + e.Message
	}
	return reason
}

// unfinished returns the index of a choice without finish_reason, and
// whether there is one; with no choices at all it returns -1, true.
func (s *ChatStream) unfinished() (int64, bool) {
	if len(s.choices) == 0 {
		return -1, true
	}
	for i := range s.choices {
		if s.choices[i].finish == "" {
			return s.choices[i].index, true
		}
	}
	return 0, false
}

func (s *ChatStream) doneVerdict() Verdict {
	idx, open := s.unfinished()
	switch {
	case !open:
		return Verdict{Status: Complete, Reason: "[DONE] after finish_reason"}
	case idx < 0:
		return Verdict{Status: Truncated, Reason: "[DONE] before any choice"}
	default:
		return Verdict{Status: Truncated, Reason: fmt.Sprintf("[DONE] before finish_reason for choice %d", idx)}
	}
}

// End tells the model the body ended cleanly (io.EOF) and returns the final
// verdict. A stream still InProgress becomes Complete if every choice has a
// finish_reason (the provider sent no [DONE]), and Truncated otherwise.
// End is idempotent.
func (s *ChatStream) End() Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.ended = true
	if s.verdict.Status != InProgress {
		return s.verdict
	}
	idx, open := s.unfinished()
	switch {
	case !open:
		s.verdict = Verdict{Status: Complete, Reason: "stream ended cleanly after finish_reason, without [DONE]"}
	case idx < 0:
		s.verdict = Verdict{Status: Truncated, Reason: "stream ended before any choice"}
	default:
		s.verdict = Verdict{Status: Truncated, Reason: fmt.Sprintf("stream ended before finish_reason for choice %d", idx)}
	}
	return s.verdict
}

// Interrupt tells the model the body ended abnormally (a read error, an
// idle timeout, a partial event at EOF) and returns the final verdict: a
// stream still InProgress becomes Truncated with reason as its Reason, even
// after every finish_reason, since the body did not end cleanly.
func (s *ChatStream) Interrupt(reason string) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.ended = true
	if s.verdict.Status != InProgress {
		return s.verdict
	}
	if reason == "" {
		reason = "stream interrupted before [DONE]"
	}
	s.verdict = Verdict{Status: Truncated, Reason: reason}
	return s.verdict
}

// Verdict returns the current verdict: InProgress until [DONE], an error,
// End or Interrupt.
func (s *ChatStream) Verdict() Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verdict
}

// Finished reports whether at least one choice appeared and every choice
// has a finish_reason: the answer is whole, and a clean end of the body now
// makes the stream Complete.
func (s *ChatStream) Finished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, open := s.unfinished()
	return !open
}

// SawDone reports whether "data: [DONE]" arrived.
func (s *ChatStream) SawDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// ID returns the id of the first chunk ("chatcmpl-..."), or "".
func (s *ChatStream) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Model returns the model of the first chunk that named one, or "".
func (s *ChatStream) Model() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.model
}

// Usage returns the usage the stream reported; counts are -1 until the
// usage chunk arrives. SawUsage tells whether it did.
func (s *ChatStream) Usage() ChatUsage {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	return s.usage
}

// SawUsage reports whether a chunk with a usage object arrived.
func (s *ChatStream) SawUsage() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sawUsage
}

// OutputTokens returns usage.completion_tokens from the usage chunk, or -1
// when no usage chunk (yet) reported it; DeltaCount is the live estimate.
func (s *ChatStream) OutputTokens() int64 { return s.Usage().CompletionTokens }

// DeltaCount returns the number of choice deltas that carried content,
// reasoning, a refusal or tool call fragments: a rough live measure of
// output before the usage chunk.
func (s *ChatStream) DeltaCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deltas
}

// Chunks returns the number of chat.completion.chunk objects observed.
func (s *ChatStream) Chunks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chunks
}

// Choices returns snapshots of every choice, in order of first appearance.
func (s *ChatStream) Choices() []Choice {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Choice, len(s.choices))
	for i := range s.choices {
		out[i] = s.choices[i].snapshot()
	}
	return out
}

// Choice returns a snapshot of the choice with the given index.
func (s *ChatStream) Choice(index int64) (Choice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.byIndex[index]
	if !ok {
		return Choice{}, false
	}
	return s.choices[i].snapshot(), true
}

// Text returns the content of choice 0 so far (the only choice unless the
// request asked for n > 1).
func (s *ChatStream) Text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.byIndex[0]; ok {
		return string(s.choices[i].content)
	}
	return ""
}

// FinishReason returns choice 0's finish_reason, or "".
func (s *ChatStream) FinishReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.byIndex[0]; ok {
		return s.choices[i].finish
	}
	return ""
}
