package sse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Anthropic Messages stream event types.
const (
	EventMessageStart      = "message_start"
	EventContentBlockStart = "content_block_start"
	EventContentBlockDelta = "content_block_delta"
	EventContentBlockStop  = "content_block_stop"
	EventMessageDelta      = "message_delta"
	EventMessageStop       = "message_stop"
	EventPing              = "ping"
	EventError             = "error"
)

// Usage is the token usage an Anthropic stream reported. Counts the stream
// has not reported are -1.
type Usage struct {
	// InputTokens is usage.input_tokens (message_start, or a later
	// message_delta that repeats it).
	InputTokens int64 `json:"input_tokens"`
	// CacheCreationInputTokens is usage.cache_creation_input_tokens.
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	// CacheReadInputTokens is usage.cache_read_input_tokens.
	CacheReadInputTokens int64 `json:"cache_read_input_tokens"`
	// OutputTokens is the latest cumulative usage.output_tokens: from
	// message_start, then from each message_delta. Later values replace
	// earlier ones; they are never summed.
	OutputTokens int64 `json:"output_tokens"`
}

func unknownUsage() Usage {
	return Usage{InputTokens: -1, CacheCreationInputTokens: -1, CacheReadInputTokens: -1, OutputTokens: -1}
}

// Block is a snapshot of one content block of an Anthropic message, as far
// as it has streamed.
type Block struct {
	// Index is the block's index in the message.
	Index int `json:"index"`
	// Type is the block type from content_block_start: "text", "tool_use",
	// "thinking", "redacted_thinking", or any other type the API sends.
	Type string `json:"type"`
	// Text is the text of a text block: its initial text and every
	// text_delta.
	Text string `json:"text,omitempty"`
	// Thinking is the text of a thinking block: its initial thinking and
	// every thinking_delta.
	Thinking string `json:"thinking,omitempty"`
	// Signature is a thinking block's signature (signature_delta).
	Signature string `json:"signature,omitempty"`
	// ID is a tool_use (or server tool use) block's id.
	ID string `json:"id,omitempty"`
	// Name is a tool_use (or server tool use) block's tool name.
	Name string `json:"name,omitempty"`
	// PartialJSON is a tool-use block's input so far: the concatenated
	// input_json_delta fragments. It is valid JSON only once the block
	// stopped.
	PartialJSON string `json:"partial_json,omitempty"`
	// Data is a redacted_thinking block's opaque data.
	Data string `json:"data,omitempty"`
	// Deltas is the number of content_block_delta events the block got.
	Deltas int `json:"deltas"`
	// Stopped reports whether the block got its content_block_stop.
	Stopped bool `json:"stopped"`
}

// blockState is a Block under construction.
type blockState struct {
	typ       string
	text      []byte
	thinking  []byte
	signature []byte
	json      []byte
	id, name  string
	data      string
	deltas    int
	stopped   bool
}

func (b *blockState) snapshot(i int) Block {
	return Block{
		Index:       i,
		Type:        b.typ,
		Text:        string(b.text),
		Thinking:    string(b.thinking),
		Signature:   string(b.signature),
		ID:          b.id,
		Name:        b.name,
		PartialJSON: string(b.json),
		Data:        b.data,
		Deltas:      b.deltas,
		Stopped:     b.stopped,
	}
}

// MessageStream models an Anthropic Messages API stream. Feed it every
// event of the stream with Observe, then call End at the end of the body.
//
// The stream is Complete only when message_stop arrived after
// message_start; an "event: error" makes it Errored; End before
// message_stop makes it Truncated, whatever else arrived. These protocol
// violations make it Malformed:
//
//   - data that is not JSON, or whose "type" differs from the event name,
//     on a known event type (message_start, content_block_start,
//     content_block_delta, content_block_stop, message_delta,
//     message_stop);
//   - any of those before message_start, or a second message_start;
//   - a content_block_start whose index is not the next one (blocks start
//     in index order with no gaps), or without a content_block;
//   - a delta or stop for a block that never started or already stopped, a
//     content_block_delta without a delta type, or a known delta type
//     (text_delta, input_json_delta, thinking_delta, signature_delta)
//     without its string field;
//   - any known event, or an error, after message_stop.
//
// Tolerated, as the official SDKs tolerate them: ping events, unknown event
// types and events without a name (all ignored), unknown delta types
// (counted, content ignored), unknown block types (kept by name), several
// blocks open at once, several message_delta events, and message_stop while
// a block is still open (the block stays unstopped).
//
// Errored and Malformed are final: later events are ignored, as are events
// observed after End or Interrupt.
//
// The zero value is ready to use. A MessageStream is safe for concurrent
// use: Observe may run in the goroutine reading the body while another
// goroutine calls End or the accessors.
type MessageStream struct {
	mu       sync.Mutex
	verdict  Verdict
	started  bool
	id       string
	model    string
	role     string
	usage    Usage
	stopRsn  string
	stopSeq  string
	blocks   []blockState
	deltas   int
	events   int
	usageSet bool // usage was initialised to unknown
	ended    bool // End or Interrupt was called
}

// anthropicData is the union of the fields of every Anthropic event's data
// that the model reads. Strings and numbers are read leniently so that an
// unexpected shape of an unknown block or delta type is not an error.
type anthropicData struct {
	Type    jsonString `json:"type"`
	Index   jsonInt    `json:"index"`
	Message *struct {
		ID    jsonString      `json:"id"`
		Model jsonString      `json:"model"`
		Role  jsonString      `json:"role"`
		Usage *anthropicUsage `json:"usage"`
	} `json:"message"`
	ContentBlock *struct {
		Type      jsonString `json:"type"`
		Text      jsonString `json:"text"`
		Thinking  jsonString `json:"thinking"`
		Signature jsonString `json:"signature"`
		ID        jsonString `json:"id"`
		Name      jsonString `json:"name"`
		Data      jsonString `json:"data"`
	} `json:"content_block"`
	Delta *struct {
		Type         jsonString `json:"type"`
		Text         jsonString `json:"text"`
		PartialJSON  jsonString `json:"partial_json"`
		Thinking     jsonString `json:"thinking"`
		Signature    jsonString `json:"signature"`
		StopReason   jsonString `json:"stop_reason"`
		StopSequence jsonString `json:"stop_sequence"`
	} `json:"delta"`
	Usage *anthropicUsage `json:"usage"`
}

type anthropicUsage struct {
	InputTokens              jsonInt `json:"input_tokens"`
	CacheCreationInputTokens jsonInt `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     jsonInt `json:"cache_read_input_tokens"`
	OutputTokens             jsonInt `json:"output_tokens"`
}

type anthropicError struct {
	Error *struct {
		Type    jsonString `json:"type"`
		Message jsonString `json:"message"`
	} `json:"error"`
}

// Observe feeds the model the next event of the stream.
func (s *MessageStream) Observe(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.events++
	st := s.verdict.Status
	if s.ended || st == Errored || st == Malformed {
		return
	}
	switch ev.Type {
	case EventMessageStart, EventContentBlockStart, EventContentBlockDelta,
		EventContentBlockStop, EventMessageDelta, EventMessageStop:
	case EventError:
		if st == Complete {
			s.malformed("error event after message_stop")
			return
		}
		s.errorEvent(ev.Data)
		return
	default:
		// ping, events without a name, and unknown event types.
		return
	}
	if st == Complete {
		s.malformed(ev.Type + " after message_stop")
		return
	}
	var d anthropicData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		s.malformed(fmt.Sprintf("%s: invalid JSON: %v", ev.Type, err))
		return
	}
	if !d.Type.OK || d.Type.V != ev.Type {
		s.malformed(fmt.Sprintf("%s event carries data of type %q", ev.Type, d.Type.V))
		return
	}
	if !s.started && ev.Type != EventMessageStart {
		s.malformed(ev.Type + " before message_start")
		return
	}
	switch ev.Type {
	case EventMessageStart:
		s.messageStart(&d)
	case EventContentBlockStart:
		s.blockStart(&d)
	case EventContentBlockDelta:
		s.blockDelta(&d)
	case EventContentBlockStop:
		if b := s.openBlock(&d); b != nil {
			b.stopped = true
		}
	case EventMessageDelta:
		if d.Delta != nil {
			if d.Delta.StopReason.OK {
				s.stopRsn = d.Delta.StopReason.V
			}
			if d.Delta.StopSequence.OK {
				s.stopSeq = d.Delta.StopSequence.V
			}
		}
		s.updateUsage(d.Usage)
	case EventMessageStop:
		s.verdict = Verdict{Status: Complete, Reason: "message_stop received"}
	}
}

func (s *MessageStream) init() {
	if !s.usageSet {
		s.usage = unknownUsage()
		s.usageSet = true
	}
}

func (s *MessageStream) malformed(reason string) {
	s.verdict = Verdict{Status: Malformed, Reason: reason}
}

func (s *MessageStream) errorEvent(data []byte) {
	e := &ErrorEvent{Raw: bytes.Clone(data)}
	var d anthropicError
	reason := "error event"
	if err := json.Unmarshal(data, &d); err != nil {
		reason = "error event with unparsable data"
	} else if d.Error != nil {
		e.Type, e.Message = d.Error.Type.V, d.Error.Message.V
	}
	if e.Type != "" {
		reason += ": " + e.Type
	}
	if e.Message != "" {
		reason += ": " + e.Message
	}
	s.verdict = Verdict{Status: Errored, Reason: reason, Error: e}
}

func (s *MessageStream) messageStart(d *anthropicData) {
	if s.started {
		s.malformed("second message_start")
		return
	}
	if d.Message == nil {
		s.malformed("message_start without a message")
		return
	}
	s.started = true
	s.id, s.model, s.role = d.Message.ID.V, d.Message.Model.V, d.Message.Role.V
	s.updateUsage(d.Message.Usage)
}

func (s *MessageStream) updateUsage(u *anthropicUsage) {
	if u == nil {
		return
	}
	set := func(dst *int64, v jsonInt) {
		if v.OK {
			*dst = v.V
		}
	}
	set(&s.usage.InputTokens, u.InputTokens)
	set(&s.usage.CacheCreationInputTokens, u.CacheCreationInputTokens)
	set(&s.usage.CacheReadInputTokens, u.CacheReadInputTokens)
	set(&s.usage.OutputTokens, u.OutputTokens)
}

func (s *MessageStream) blockStart(d *anthropicData) {
	if !d.Index.OK {
		s.malformed("content_block_start without a valid index")
		return
	}
	if d.Index.V != int64(len(s.blocks)) {
		s.malformed(fmt.Sprintf("content_block_start index %d, want %d", d.Index.V, len(s.blocks)))
		return
	}
	cb := d.ContentBlock
	if cb == nil || !cb.Type.OK || cb.Type.V == "" {
		s.malformed("content_block_start without a content_block type")
		return
	}
	b := blockState{typ: cb.Type.V, id: cb.ID.V, name: cb.Name.V, data: cb.Data.V}
	b.text = append(b.text, cb.Text.V...)
	b.thinking = append(b.thinking, cb.Thinking.V...)
	b.signature = append(b.signature, cb.Signature.V...)
	s.blocks = append(s.blocks, b)
}

// openBlock returns the started, unstopped block d's index names, or marks
// the stream Malformed and returns nil.
func (s *MessageStream) openBlock(d *anthropicData) *blockState {
	typ := d.Type.V
	switch {
	case !d.Index.OK:
		s.malformed(typ + " without a valid index")
	case d.Index.V >= int64(len(s.blocks)):
		s.malformed(fmt.Sprintf("%s for content block %d, which never started", typ, d.Index.V))
	case s.blocks[d.Index.V].stopped:
		s.malformed(fmt.Sprintf("%s for content block %d, which already stopped", typ, d.Index.V))
	default:
		return &s.blocks[d.Index.V]
	}
	return nil
}

func (s *MessageStream) blockDelta(d *anthropicData) {
	b := s.openBlock(d)
	if b == nil {
		return
	}
	if d.Delta == nil || !d.Delta.Type.OK {
		s.malformed(fmt.Sprintf("content_block_delta for block %d without a delta type", d.Index.V))
		return
	}
	var field jsonString
	var dst *[]byte
	switch d.Delta.Type.V {
	case "text_delta":
		field, dst = d.Delta.Text, &b.text
	case "input_json_delta":
		field, dst = d.Delta.PartialJSON, &b.json
	case "thinking_delta":
		field, dst = d.Delta.Thinking, &b.thinking
	case "signature_delta":
		field, dst = d.Delta.Signature, &b.signature
	}
	if dst != nil {
		if !field.OK {
			s.malformed(fmt.Sprintf("%s for block %d without its string field", d.Delta.Type.V, d.Index.V))
			return
		}
		*dst = append(*dst, field.V...)
	}
	b.deltas++
	s.deltas++
}

// End tells the model the body ended cleanly (io.EOF) and returns the final
// verdict: a stream still InProgress becomes Truncated. End is idempotent,
// and events observed after End or Interrupt are ignored.
func (s *MessageStream) End() Verdict {
	return s.end("")
}

// Interrupt tells the model the body ended abnormally (a read error, an
// idle timeout, a partial event at EOF) and returns the final verdict: a
// stream still InProgress becomes Truncated with reason as its Reason.
func (s *MessageStream) Interrupt(reason string) Verdict {
	return s.end(reason)
}

func (s *MessageStream) end(reason string) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.ended = true
	if s.verdict.Status != InProgress {
		return s.verdict
	}
	if reason == "" {
		reason = s.truncationReason()
	}
	s.verdict = Verdict{Status: Truncated, Reason: reason}
	return s.verdict
}

func (s *MessageStream) truncationReason() string {
	if !s.started {
		return "stream ended before message_start"
	}
	if n := len(s.blocks); n > 0 && !s.blocks[n-1].stopped {
		return fmt.Sprintf("stream ended inside %s block %d, before message_stop", s.blocks[n-1].typ, n-1)
	}
	return "stream ended before message_stop"
}

// Verdict returns the current verdict: InProgress until a terminal event,
// End or Interrupt.
func (s *MessageStream) Verdict() Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verdict
}

// Started reports whether message_start arrived.
func (s *MessageStream) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// ID returns the message id from message_start ("msg_..."), or "".
func (s *MessageStream) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Model returns the model from message_start, or "".
func (s *MessageStream) Model() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.model
}

// Role returns the role from message_start ("assistant"), or "".
func (s *MessageStream) Role() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role
}

// Usage returns the token usage reported so far; unreported counts are -1.
func (s *MessageStream) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	return s.usage
}

// OutputTokens returns the latest cumulative output token count the stream
// reported, or -1 before message_start.
func (s *MessageStream) OutputTokens() int64 { return s.Usage().OutputTokens }

// StopReason returns message_delta's stop_reason ("end_turn", "max_tokens",
// "tool_use", ...), or "" if none arrived.
func (s *MessageStream) StopReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopRsn
}

// StopSequence returns message_delta's stop_sequence, or "".
func (s *MessageStream) StopSequence() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopSeq
}

// DeltaCount returns the number of content_block_delta events so far, a
// rough live measure of output while the usage counts lag.
func (s *MessageStream) DeltaCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deltas
}

// Events returns the number of events observed, including ignored ones.
func (s *MessageStream) Events() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

// NumBlocks returns the number of content blocks started so far.
func (s *MessageStream) NumBlocks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.blocks)
}

// Block returns a snapshot of the content block with index i.
func (s *MessageStream) Block(i int) (Block, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.blocks) {
		return Block{}, false
	}
	return s.blocks[i].snapshot(i), true
}

// LastBlock returns a snapshot of the most recently started content block,
// the one a resumed stream would continue; false if no block started.
// Its Stopped field tells whether it is still open.
func (s *MessageStream) LastBlock() (Block, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.blocks) == 0 {
		return Block{}, false
	}
	i := len(s.blocks) - 1
	return s.blocks[i].snapshot(i), true
}

// Blocks returns snapshots of every content block, in index order.
func (s *MessageStream) Blocks() []Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Block, len(s.blocks))
	for i := range s.blocks {
		out[i] = s.blocks[i].snapshot(i)
	}
	return out
}

// Text returns the concatenated text of the text blocks, in index order:
// what the caller has been shown so far.
func (s *MessageStream) Text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sb strings.Builder
	for i := range s.blocks {
		if s.blocks[i].typ == "text" {
			sb.Write(s.blocks[i].text)
		}
	}
	return sb.String()
}

// TextOnly reports whether every block so far is a text block, the
// condition under which an interrupted answer can be continued.
func (s *MessageStream) TextOnly() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.blocks {
		if s.blocks[i].typ != "text" {
			return false
		}
	}
	return true
}
