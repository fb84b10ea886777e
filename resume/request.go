package resume

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Form is the shape of a continuation request.
type Form uint8

const (
	// Prefill sends the partial answer as a final assistant message, which
	// the model continues from exactly where it ends. The Anthropic API
	// accepts it for Claude 4.5 and earlier models; newer models reject it
	// with a 400 (see IsPrefillRejection). It is the zero value.
	Prefill Form = iota
	// UserContinue sends the partial answer as an assistant message
	// followed by a user message (ContinuePrompt) asking the model to go
	// on: the documented alternative for models that reject prefill, and
	// the only form the OpenAI chat completions API understands.
	UserContinue
)

// String returns "prefill" or "user-continue".
func (f Form) String() string {
	switch f {
	case Prefill:
		return "prefill"
	case UserContinue:
		return "user-continue"
	}
	return fmt.Sprintf("Form(%d)", uint8(f))
}

// ContinuePrompt is the user message a UserContinue continuation ends with.
const ContinuePrompt = "Your previous response was cut off. Continue exactly where it stopped, " +
	"without repeating anything already written and without any preamble."

var (
	// ErrNothingToResume is returned when the partial text is empty:
	// nothing reached the caller, so the request should simply be retried
	// from scratch.
	ErrNothingToResume = errors.New("resume: nothing to resume")
	// ErrInvalidBody is wrapped by the error returned for a request body a
	// continuation cannot be built from: not a JSON object, no messages, a
	// message that is not an object.
	ErrInvalidBody = errors.New("resume: invalid request body")
	// ErrInvalidPartial is returned when the partial text is not valid
	// UTF-8 (stream models always produce valid UTF-8; a byte-level cut
	// does not).
	ErrInvalidPartial = errors.New("resume: partial text is not valid UTF-8")
	// ErrUnknownForm is returned for a Form other than Prefill and
	// UserContinue.
	ErrUnknownForm = errors.New("resume: unknown continuation form")
)

// Continuation is a continuation request.
type Continuation struct {
	// Body is the request body to send, through the same admission as any
	// request, to the endpoint of the original.
	Body []byte
	// Strip is text the continuation will regenerate that the caller
	// already has: the white space trimmed off the end of a prefill (the
	// Anthropic API rejects a final assistant message ending in white
	// space). The splicer removes it from the start of the continuation's
	// text (Origin.Strip). It is "" for UserContinue.
	Strip string
}

// Anthropic builds the continuation of an interrupted Messages API request.
// body is the original request body, partial the text the caller received
// (every text block's text, concatenated: sse.MessageStream.Text), and
// producedOutput the output tokens the interrupted attempts produced, which
// max_tokens is reduced by (to at least 1) so that the whole answer still
// respects the caller's limit.
//
// Prefill appends {"role":"assistant","content":partial} with the partial
// text's trailing white space cut off and reported as Continuation.Strip.
// If the original already ended with an assistant message (the caller's
// own prefill, which the answer continued), the partial text is appended to
// that message instead: to its string content, to its last text block, or
// as a new text block. A partial text that is all white space adds nothing:
// the continuation then regenerates it, and Strip removes it.
//
// UserContinue appends the whole partial text as an assistant message
// (merged into the caller's prefill, if any) and then a user message with
// ContinuePrompt.
//
// Every other field of body is kept as it was: tools, system, metadata,
// stream, temperature and fields streamgate does not know.
func Anthropic(body []byte, partial string, producedOutput int64, form Form) (Continuation, error) {
	return build(body, partial, producedOutput, form, true)
}

// OpenAI builds the continuation of an interrupted chat completions
// request, like Anthropic. max_completion_tokens and max_tokens, whichever
// are present, are reduced by producedOutput (to at least 1).
//
// The chat completions API has no prefill: a final assistant message is a
// turn of the conversation, answered by a new turn. UserContinue is
// therefore the form to use with OpenAI; it appends the partial answer as a
// new assistant message (never merged into an earlier one) and the user
// message. Prefill is for OpenAI-compatible servers configured to continue
// a final assistant message; as with Anthropic it merges into a final
// assistant message already present.
func OpenAI(body []byte, partial string, producedOutput int64, form Form) (Continuation, error) {
	return build(body, partial, producedOutput, form, false)
}

func build(body []byte, partial string, produced int64, form Form, anthropic bool) (Continuation, error) {
	if form != Prefill && form != UserContinue {
		return Continuation{}, ErrUnknownForm
	}
	if partial == "" {
		return Continuation{}, ErrNothingToResume
	}
	if !utf8.ValidString(partial) {
		return Continuation{}, ErrInvalidPartial
	}
	top, ok := parseObject(body)
	if !ok {
		return Continuation{}, fmt.Errorf("%w: not a JSON object", ErrInvalidBody)
	}
	raw, ok := top.get("messages")
	if !ok {
		return Continuation{}, fmt.Errorf("%w: no messages", ErrInvalidBody)
	}
	msgs, ok := splitArray(raw)
	if !ok {
		return Continuation{}, fmt.Errorf("%w: messages is not an array", ErrInvalidBody)
	}
	if len(msgs) == 0 {
		return Continuation{}, fmt.Errorf("%w: no messages", ErrInvalidBody)
	}
	last, ok := parseObject(msgs[len(msgs)-1])
	if !ok {
		return Continuation{}, fmt.Errorf("%w: message %d is not an object", ErrInvalidBody, len(msgs)-1)
	}
	role, _ := last.getString("role")
	callerPrefill := role == "assistant"

	var c Continuation
	switch form {
	case Prefill:
		kept := strings.TrimRightFunc(partial, unicode.IsSpace)
		c.Strip = partial[len(kept):]
		switch {
		case kept == "":
			// Nothing to add: the continuation regenerates the white
			// space, which Strip removes.
		case callerPrefill:
			msgs[len(msgs)-1] = appendText(last, kept)
		default:
			msgs = append(msgs, textMessage("assistant", kept))
		}
	case UserContinue:
		if callerPrefill && anthropic {
			msgs[len(msgs)-1] = appendText(last, partial)
		} else {
			msgs = append(msgs, textMessage("assistant", partial))
		}
		msgs = append(msgs, textMessage("user", ContinuePrompt))
	}
	top.set("messages", joinArray(msgs))

	limits := []string{"max_tokens"}
	if !anthropic {
		limits = []string{"max_completion_tokens", "max_tokens"}
	}
	if produced > 0 {
		for _, k := range limits {
			if v, ok := top.getInt(k); ok {
				top.set(k, appendInt(nil, max(1, v-produced)))
			}
		}
	}
	c.Body = top.bytes()
	return c, nil
}

// textMessage renders {"role":role,"content":text}.
func textMessage(role, text string) []byte {
	b := append([]byte(`{"role":`), appendString(nil, role)...)
	b = append(b, `,"content":`...)
	b = appendString(b, text)
	return append(b, '}')
}

// appendText returns msg with text appended to its content: to a string
// content, to the last block of a content array when that is a text block,
// else as a new text block.
func appendText(msg *object, text string) []byte {
	raw, _ := msg.get("content")
	if s, isStr := stringValue(raw); isStr {
		msg.set("content", appendString(nil, s+text))
		return msg.bytes()
	}
	if blocks, isArr := splitArray(raw); isArr {
		if n := len(blocks); n > 0 {
			if b, isObj := parseObject(blocks[n-1]); isObj {
				typ, _ := b.getString("type")
				if prev, hasText := b.getString("text"); typ == "text" && hasText {
					b.set("text", appendString(nil, prev+text))
					blocks[n-1] = b.bytes()
					msg.set("content", joinArray(blocks))
					return msg.bytes()
				}
			}
		}
		block := append([]byte(`{"type":"text","text":`), appendString(nil, text)...)
		blocks = append(blocks, append(block, '}'))
		msg.set("content", joinArray(blocks))
		return msg.bytes()
	}
	// No content, null, or a shape nobody sends: the text becomes the
	// content.
	msg.set("content", appendString(nil, text))
	return msg.bytes()
}
