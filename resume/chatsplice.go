package resume

import (
	"strings"

	"github.com/streamgate/streamgate/sse"
)

// ChatSplicer turns the chunks of an OpenAI chat completions continuation
// into the chunks to append to the interrupted stream the caller is
// reading, so that the caller's SDK sees one completion:
//
//   - every chunk's id, created and model are rewritten to Origin's (when
//     set), since SDK accumulators drop chunks of another id;
//   - the role is removed from every delta (the caller already got it), and
//     a chunk left without content, finish_reason or usage (the
//     continuation's role-only first chunk) is dropped;
//   - Origin.Strip is removed from the start of choice 0's content (only
//     the part it actually starts with);
//   - the usage chunk's prompt_tokens, completion_tokens and total_tokens
//     are summed with Origin.Input and Origin.Output;
//   - [DONE], keep-alives and everything else pass unchanged.
//
// A chunk with a top-level error is returned as a *ContinuationError, and
// a chunk that violates the protocol as an error wrapping ErrMalformed;
// nothing is written for it and every later Splice returns the same error.
//
// A ChatSplicer is not safe for concurrent use.
type ChatSplicer struct {
	o    Origin
	cont sse.ChatStream
	err  error

	strip     string
	stripping bool
	text      strings.Builder
	buf       []byte
}

// NewChatSplicer returns a splicer of a continuation into the chat stream
// o describes.
func NewChatSplicer(o Origin) *ChatSplicer {
	return &ChatSplicer{o: o, strip: o.Strip, stripping: o.Strip != ""}
}

// Splice appends to dst the event the caller gets for the continuation's
// event ev (none or one) and returns the extended slice. On error dst is
// returned unchanged.
func (s *ChatSplicer) Splice(dst []byte, ev sse.Event) ([]byte, error) {
	if s.err != nil {
		return dst, s.err
	}
	s.cont.Observe(ev)
	if err := verdictError(s.cont.Verdict()); err != nil {
		s.err = err
		return dst, err
	}
	chunk, ok := parseEventObject(ev.Data)
	if !ok {
		// A keep-alive, [DONE], or data the stream model ignores.
		return sse.AppendEvent(dst, ev.Type, ev.Data), nil
	}
	if s.o.ID != "" {
		chunk.set("id", appendString(nil, s.o.ID))
	}
	if s.o.Created != 0 {
		if _, ok := chunk.get("created"); ok {
			chunk.set("created", appendInt(nil, s.o.Created))
		}
	}
	if s.o.Model != "" {
		if _, ok := chunk.get("model"); ok {
			chunk.set("model", appendString(nil, s.o.Model))
		}
	}
	carries := false
	if raw, ok := chunk.get("choices"); ok {
		if choices, ok := splitArray(raw); ok && len(choices) > 0 {
			for i, c := range choices {
				var has bool
				choices[i], has = s.choice(c)
				carries = carries || has
			}
			chunk.set("choices", joinArray(choices))
		} else {
			carries = true // no choices: a usage chunk or something else
		}
	} else {
		carries = true
	}
	if raw, ok := chunk.get("usage"); ok && !isEmptyValue(raw) {
		carries = true
		if u, ok := parseEventObject(raw); ok {
			s.usage(u)
			chunk.set("usage", u.bytes())
		}
	}
	if !carries {
		return dst, nil
	}
	s.buf = chunk.appendTo(s.buf[:0])
	return sse.AppendEvent(dst, ev.Type, s.buf), nil
}

// choice rewrites one choice of a chunk and reports whether it carries
// anything once its role is gone.
func (s *ChatSplicer) choice(raw []byte) ([]byte, bool) {
	c, ok := parseEventObject(raw)
	if !ok {
		return raw, true
	}
	carries := false
	for _, m := range c.members {
		switch strings.ToLower(m.key) {
		case "index", "delta":
		default:
			carries = carries || !isEmptyValue(m.val)
		}
	}
	index, _ := c.getInt("index") // absent means choice 0
	d, ok := c.getObject("delta")
	if !ok {
		if v, present := c.get("delta"); present && !isEmptyValue(v) {
			carries = true
		}
		return raw, carries
	}
	d.del("role")
	if text, ok := d.getString("content"); ok && index == 0 {
		stripped := s.stripText(text)
		s.text.WriteString(stripped)
		if stripped != text {
			d.set("content", appendString(nil, stripped))
		}
	}
	for _, m := range d.members {
		carries = carries || !isEmptyValue(m.val)
	}
	c.set("delta", d.bytes())
	return c.bytes(), carries
}

// usage sums the usage chunk's counts with the earlier attempts'.
func (s *ChatSplicer) usage(u *object) {
	for _, f := range []struct {
		key   string
		prior int64
	}{
		{"prompt_tokens", s.o.Input},
		{"completion_tokens", s.o.Output},
		{"total_tokens", max(0, s.o.Input) + max(0, s.o.Output)},
	} {
		if v, ok := u.getInt(f.key); ok {
			u.set(f.key, appendInt(nil, v+max(0, f.prior)))
		}
	}
}

func (s *ChatSplicer) stripText(text string) string {
	if !s.stripping || text == "" {
		return text
	}
	rest, done := stripPrefix(&s.strip, text)
	s.stripping = !done
	return rest
}

// Next returns the Origin for a further resume if the continuation is
// interrupted too: the text the caller has now received and the usage of
// every attempt so far. Output counts the continuation's reported
// completion tokens or, before its usage chunk, one per content chunk
// received; Input adds the continuation's prompt tokens once reported.
// Strip is left empty for the next Continuation's.
func (s *ChatSplicer) Next() Origin {
	o := s.o
	u := s.cont.Usage()
	out := max(0, u.CompletionTokens)
	if u.CompletionTokens < 0 {
		out = int64(s.cont.DeltaCount())
	}
	o.Output = max(0, o.Output) + out
	o.Input = max(0, o.Input) + max(0, u.PromptTokens)
	o.Text += s.text.String()
	o.Strip = ""
	return o
}

// Resumable reports whether the caller's stream, with what this splicer
// has delivered, can still be continued (see ResumableChat): false once
// the continuation finished or delivered tool calls, reasoning or a
// refusal.
func (s *ChatSplicer) Resumable() (ok bool, reason string) {
	if s.cont.Verdict().Status == sse.Complete {
		return false, "the stream is complete"
	}
	for _, c := range s.cont.Choices() {
		switch {
		case len(c.ToolCalls) > 0:
			return false, "a tool call's partial arguments cannot be continued"
		case c.Reasoning != "":
			return false, "reasoning content cannot be continued"
		case c.Refusal != "":
			return false, "a refusal cannot be continued"
		case c.FinishReason != "":
			return false, "the answer already ended (finish_reason " + c.FinishReason + ")"
		}
	}
	return true, ""
}
