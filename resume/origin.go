package resume

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/streamgate/streamgate/sse"
)

// Origin describes the stream a continuation is spliced into: what the
// caller has received so far, in the caller's numbering, and the usage of
// every attempt so far. Build it with OriginFromMessage or OriginFromChat,
// then set Strip from the Continuation; a splicer's Next gives the Origin
// for a further resume.
//
// The zero Origin is a stream with no content block, no id and no usage.
type Origin struct {
	// ID is the Anthropic message id, or the OpenAI chunk id every
	// continuation chunk is rewritten to ("" keeps the continuation's).
	ID string
	// Model is the model the caller saw; OpenAI chunks are rewritten to it
	// ("" keeps the continuation's).
	Model string
	// Created is the OpenAI chunks' created time; 0 keeps the
	// continuation's.
	Created int64

	// LastIndex is the index of the caller's last content block, -1 when
	// no block started. (Anthropic only, as are the next three fields.)
	LastIndex int
	// LastType is that block's type, e.g. "text".
	LastType string
	// LastOpen reports that the block got no content_block_stop: a text
	// continuation goes on inside it.
	LastOpen bool
	// NextIndex is the index the next new block gets.
	NextIndex int

	// Output is the output tokens produced by every attempt so far,
	// including tokens produced but never delivered.
	Output int64
	// Input is the input tokens billed for every attempt so far (Anthropic
	// usage.input_tokens; OpenAI usage.prompt_tokens).
	Input int64
	// CacheCreationInput and CacheReadInput are the Anthropic cache usage
	// of every attempt so far.
	CacheCreationInput int64
	CacheReadInput     int64

	// Text is the text the caller has received.
	Text string
	// Strip is Continuation.Strip of the continuation being spliced: text
	// removed from the start of its text because the caller already has
	// it.
	Strip string
}

// OriginFromMessage describes an interrupted Anthropic stream, as its
// model observed it (the Transport hands the caller whole events only, so
// that is what the caller received). strip is the continuation's Strip.
// priorOutput is the output tokens produced so far (including any not
// delivered) and priorInput the input tokens billed so far; a negative
// value means "what ms reported" (0 if nothing).
func OriginFromMessage(ms *sse.MessageStream, strip string, priorOutput, priorInput int64) Origin {
	u := ms.Usage()
	if priorOutput < 0 {
		priorOutput = max(0, u.OutputTokens)
	}
	if priorInput < 0 {
		priorInput = max(0, u.InputTokens)
	}
	o := Origin{
		ID:                 ms.ID(),
		Model:              ms.Model(),
		LastIndex:          -1,
		Output:             priorOutput,
		Input:              priorInput,
		CacheCreationInput: max(0, u.CacheCreationInputTokens),
		CacheReadInput:     max(0, u.CacheReadInputTokens),
		Text:               ms.Text(),
		Strip:              strip,
	}
	if b, ok := ms.LastBlock(); ok {
		o.LastIndex, o.LastType, o.LastOpen = b.Index, b.Type, !b.Stopped
		o.NextIndex = b.Index + 1
	}
	return o
}

// OriginFromChat describes an interrupted OpenAI chat completions stream,
// like OriginFromMessage. Created stays 0 (sse.ChatStream does not keep
// it): set it to have continuation chunks carry the original's.
func OriginFromChat(cs *sse.ChatStream, strip string, priorOutput, priorInput int64) Origin {
	u := cs.Usage()
	if priorOutput < 0 {
		priorOutput = max(0, u.CompletionTokens)
	}
	if priorInput < 0 {
		priorInput = max(0, u.PromptTokens)
	}
	return Origin{
		ID:        cs.ID(),
		Model:     cs.Model(),
		LastIndex: -1,
		Output:    priorOutput,
		Input:     priorInput,
		Text:      cs.Text(),
		Strip:     strip,
	}
}

// ErrMalformed is wrapped by the error a splicer returns for a
// continuation event that violates the stream protocol (see
// sse.MessageStream and sse.ChatStream). Nothing of that event is written;
// the caller's stream stays well-formed and can be resumed again.
var ErrMalformed = errors.New("resume: malformed continuation stream")

// ContinuationError is returned by a splicer when the continuation stream
// carries an error event (Anthropic "event: error", an OpenAI chunk with a
// top-level error): the continuation was interrupted too. Nothing is
// written; the splicer's Next describes what the caller has, for another
// resume.
type ContinuationError struct {
	// ErrorEvent is the continuation's error event: type, code, message
	// and the raw data for classification (apierr.FromEvent).
	sse.ErrorEvent
}

// Error implements error.
func (e *ContinuationError) Error() string {
	return "resume: continuation stream error: " + e.ErrorEvent.Error()
}

// verdictError turns a stream model's final verdict into the splicer's
// error: nil while the continuation is well-formed.
func verdictError(v sse.Verdict) error {
	switch v.Status {
	case sse.Errored:
		e := &ContinuationError{}
		if v.Error != nil {
			e.ErrorEvent = *v.Error
			e.Raw = bytes.Clone(v.Error.Raw)
		}
		return e
	case sse.Malformed:
		return fmt.Errorf("%w: %s", ErrMalformed, v.Reason)
	}
	return nil
}

// Resumable reports whether an interrupted Anthropic stream can be
// continued, and why not: it must have started and not be complete or
// malformed, have at least one content block, every block must be a text
// block (a tool_use block's partial JSON, thinking and redacted_thinking
// blocks, and any other block type cannot be continued), no stop_reason
// may have arrived (the answer was already whole), and some text must have
// been received. When it is not resumable and nothing reached the caller,
// the request is retried from scratch instead.
func Resumable(ms *sse.MessageStream) (ok bool, reason string) {
	switch v := ms.Verdict(); v.Status {
	case sse.Complete:
		return false, "the stream is complete"
	case sse.Malformed:
		return false, "the stream is malformed: " + v.Reason
	}
	if !ms.Started() {
		return false, "the stream did not start"
	}
	blocks := ms.Blocks()
	if len(blocks) == 0 {
		return false, "no content block was received"
	}
	for _, b := range blocks {
		if r := blockReason(b); r != "" {
			return false, r
		}
	}
	if sr := ms.StopReason(); sr != "" {
		return false, fmt.Sprintf("the answer already ended (stop_reason %q)", sr)
	}
	if ms.Text() == "" {
		return false, "no text was received"
	}
	return true, ""
}

// blockReason says why a block of this type cannot be continued, or "".
func blockReason(b sse.Block) string {
	switch b.Type {
	case "text":
		return ""
	case "tool_use", "server_tool_use":
		return fmt.Sprintf("%s block %d: a tool call's partial input cannot be continued", b.Type, b.Index)
	case "thinking", "redacted_thinking":
		return fmt.Sprintf("%s block %d cannot be continued", b.Type, b.Index)
	}
	return fmt.Sprintf("block %d of type %q cannot be continued", b.Index, b.Type)
}

// ResumableChat reports whether an interrupted chat completions stream can
// be continued, and why not: not complete or malformed, exactly one choice
// (index 0), no tool calls, reasoning or refusal, no finish_reason yet,
// and some content received.
func ResumableChat(cs *sse.ChatStream) (ok bool, reason string) {
	switch v := cs.Verdict(); v.Status {
	case sse.Complete:
		return false, "the stream is complete"
	case sse.Malformed:
		return false, "the stream is malformed: " + v.Reason
	}
	choices := cs.Choices()
	switch {
	case len(choices) == 0:
		return false, "no choice was received"
	case len(choices) > 1:
		return false, fmt.Sprintf("%d choices cannot be continued as one", len(choices))
	}
	c := choices[0]
	switch {
	case c.Index != 0:
		return false, fmt.Sprintf("choice %d cannot be continued", c.Index)
	case len(c.ToolCalls) > 0:
		return false, "a tool call's partial arguments cannot be continued"
	case c.Reasoning != "":
		return false, "reasoning content cannot be continued"
	case c.Refusal != "":
		return false, "a refusal cannot be continued"
	case c.FinishReason != "":
		return false, fmt.Sprintf("the answer already ended (finish_reason %q)", c.FinishReason)
	case c.Content == "":
		return false, "no content was received"
	}
	return true, ""
}
