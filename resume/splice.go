package resume

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/streamgate/streamgate/sse"
)

// AnthropicSplicer turns the events of an Anthropic continuation stream
// into the events to append to the interrupted stream the caller is
// reading, so that the caller's SDK sees one well-formed message:
//
//   - the continuation's message_start is dropped (its usage is kept for
//     the final message_delta);
//   - its first text block continues the caller's last block when that is
//     an open text block (its content_block_start is dropped and its
//     deltas and stop take that block's index); otherwise blocks get the
//     caller's next free indexes, in order. A text block is announced only
//     once it has text, so a block left empty by Strip disappears. If the
//     caller's last block is open and the continuation starts another
//     block, a content_block_stop for the caller's block comes first;
//   - Origin.Strip is removed from the start of the continuation's text
//     (only the part it actually starts with), and deltas left empty are
//     dropped;
//   - message_delta reports usage.output_tokens as Origin.Output plus the
//     continuation's, and the input usage fields as Origin's plus the
//     continuation's whenever the continuation reported them (message_delta
//     usage counts are whole-message totals that SDKs adopt), keeping
//     stop_reason, stop_sequence and every other field;
//   - message_stop, ping and unknown events pass unchanged.
//
// An error event is returned as a *ContinuationError, and an event that
// violates the protocol as an error wrapping ErrMalformed; nothing is
// written for it and every later Splice returns the same error. The
// output, after the caller's events, never makes a malformed stream.
//
// An AnthropicSplicer is not safe for concurrent use.
type AnthropicSplicer struct {
	o      Origin
	cont   sse.MessageStream // validates the continuation and tracks usage
	blocks []splicedBlock    // by continuation index
	err    error

	strip     string // what is left to strip
	stripping bool

	originOpen bool // the caller's last block is open and not continued
	next       int  // the next free index, caller's numbering
	lastIndex  int
	lastType   string
	lastOpen   bool
	emitted    bool // a continuation block got an index of its own

	text     strings.Builder // text delivered by the continuation
	nonText  string          // reason the spliced stream is not resumable
	finalOut bool            // a message_delta reported output_tokens
	buf      []byte
}

type splicedBlock struct {
	typ     string
	out     int    // index in the caller's numbering; -1 until announced
	pending []byte // a text block's content_block_start, until it has text
	joined  bool   // continues the caller's open block
	stopped bool
}

// NewAnthropicSplicer returns a splicer of a continuation into the stream
// o describes.
func NewAnthropicSplicer(o Origin) *AnthropicSplicer {
	s := &AnthropicSplicer{
		o:          o,
		strip:      o.Strip,
		stripping:  o.Strip != "",
		originOpen: o.LastOpen && o.LastIndex >= 0,
		next:       o.NextIndex,
		lastIndex:  o.LastIndex,
		lastType:   o.LastType,
		lastOpen:   o.LastOpen && o.LastIndex >= 0,
	}
	return s
}

// Splice appends to dst the events the caller gets for the continuation's
// event ev (zero, one or two events) and returns the extended slice. On
// error dst is returned unchanged.
func (s *AnthropicSplicer) Splice(dst []byte, ev sse.Event) ([]byte, error) {
	if s.err != nil {
		return dst, s.err
	}
	s.cont.Observe(ev)
	if err := verdictError(s.cont.Verdict()); err != nil {
		s.err = err
		return dst, err
	}
	switch ev.Type {
	case sse.EventMessageStart:
		return dst, nil
	case sse.EventContentBlockStart, sse.EventContentBlockDelta, sse.EventContentBlockStop, sse.EventMessageDelta:
		// The stream model accepted the event, so its data is a JSON
		// object with a valid index where one is needed.
		obj, ok := parseEventObject(ev.Data)
		if !ok {
			obj = &object{fold: true}
		}
		n := len(dst)
		switch ev.Type {
		case sse.EventContentBlockStart:
			dst = s.blockStart(dst, obj)
		case sse.EventContentBlockDelta:
			dst = s.blockDelta(dst, obj)
		case sse.EventContentBlockStop:
			dst = s.blockStop(dst, obj)
		default:
			dst = s.messageDelta(dst, obj)
		}
		if s.err != nil {
			return dst[:n], s.err
		}
		return dst, nil
	case sse.EventMessageStop:
		dst = s.closeOrigin(dst)
		return sse.AppendEvent(dst, ev.Type, ev.Data), nil
	}
	return sse.AppendEvent(dst, ev.Type, ev.Data), nil
}

// emit appends an Anthropic event whose data is obj.
func (s *AnthropicSplicer) emit(dst []byte, typ string, obj *object) []byte {
	s.buf = obj.appendTo(s.buf[:0])
	return sse.AppendEvent(dst, typ, s.buf)
}

// closeOrigin ends the caller's open block if the continuation did not
// continue it.
func (s *AnthropicSplicer) closeOrigin(dst []byte) []byte {
	if !s.originOpen {
		return dst
	}
	s.originOpen = false
	if s.lastIndex == s.o.LastIndex {
		s.lastOpen = false
	}
	stop := &object{fold: true}
	stop.set("type", []byte(`"content_block_stop"`))
	stop.set("index", appendInt(nil, int64(s.o.LastIndex)))
	return s.emit(dst, sse.EventContentBlockStop, stop)
}

// announce gives block b the next free index and emits its
// content_block_start (start, with its index rewritten).
func (s *AnthropicSplicer) announce(dst []byte, b *splicedBlock, start *object) []byte {
	dst = s.closeOrigin(dst)
	b.out = s.next
	s.next++
	s.emitted = true
	s.lastIndex, s.lastType, s.lastOpen = b.out, b.typ, true
	if b.typ != "text" && s.nonText == "" {
		s.nonText = blockReason(sse.Block{Index: b.out, Type: b.typ})
	}
	start.set("index", appendInt(nil, int64(b.out)))
	return s.emit(dst, sse.EventContentBlockStart, start)
}

func (s *AnthropicSplicer) blockStart(dst []byte, obj *object) []byte {
	cb, ok := obj.getObject("content_block")
	if !ok {
		cb = &object{fold: true}
	}
	typ, _ := cb.getString("type")
	s.blocks = append(s.blocks, splicedBlock{typ: typ, out: -1})
	b := &s.blocks[len(s.blocks)-1]
	if typ != "text" {
		return s.announce(dst, b, obj)
	}
	text, _ := cb.getString("text")
	text = s.stripText(text)
	if s.originOpen && s.o.LastType == "text" && !s.emitted {
		// Continue the caller's open text block.
		b.out, b.joined = s.o.LastIndex, true
		s.originOpen = false
		if text == "" {
			return dst
		}
		return s.emitText(dst, b.out, text)
	}
	if text == "" {
		cb.set("text", []byte(`""`))
		obj.set("content_block", cb.bytes())
		b.pending = obj.bytes() // a copy: ev.Data is the caller's
		return dst
	}
	cb.set("text", appendString(nil, text))
	obj.set("content_block", cb.bytes())
	s.text.WriteString(text)
	return s.announce(dst, b, obj)
}

// emitText appends a text_delta of text for block index.
func (s *AnthropicSplicer) emitText(dst []byte, index int, text string) []byte {
	s.text.WriteString(text)
	s.buf = append(s.buf[:0], `{"type":"content_block_delta","index":`...)
	s.buf = appendInt(s.buf, int64(index))
	s.buf = append(s.buf, `,"delta":{"type":"text_delta","text":`...)
	s.buf = appendString(s.buf, text)
	s.buf = append(s.buf, `}}`...)
	return sse.AppendEvent(dst, sse.EventContentBlockDelta, s.buf)
}

func (s *AnthropicSplicer) blockDelta(dst []byte, obj *object) []byte {
	b := s.block(obj)
	if b == nil {
		return dst
	}
	delta, ok := obj.getObject("delta")
	if !ok {
		delta = &object{fold: true}
	}
	dtype, _ := delta.getString("type")
	if b.typ == "text" && dtype == "text_delta" {
		text, _ := delta.getString("text")
		stripped := s.stripText(text)
		if stripped == "" {
			return dst
		}
		if stripped != text {
			delta.set("text", appendString(nil, stripped))
			obj.set("delta", delta.bytes())
		}
		s.text.WriteString(stripped)
	}
	if b.out < 0 {
		start, ok := parseEventObject(b.pending)
		if !ok {
			return dst // unreachable: the stream model rejects it
		}
		dst = s.announce(dst, b, start)
		b.pending = nil
	}
	obj.set("index", appendInt(nil, int64(b.out)))
	return s.emit(dst, sse.EventContentBlockDelta, obj)
}

// block returns the continuation block obj's index names. The stream model
// accepted the event, so there is one; should the two ever disagree, the
// splicer fails with ErrMalformed rather than guess.
func (s *AnthropicSplicer) block(obj *object) *splicedBlock {
	i, ok := obj.getInt("index")
	if !ok || i >= int64(len(s.blocks)) {
		s.err = fmt.Errorf("%w: content block index out of step", ErrMalformed)
		return nil
	}
	return &s.blocks[i]
}

func (s *AnthropicSplicer) blockStop(dst []byte, obj *object) []byte {
	b := s.block(obj)
	if b == nil {
		return dst
	}
	b.stopped = true
	if b.out < 0 {
		// A text block that never had text: it was never announced.
		b.pending = nil
		return dst
	}
	if b.out == s.lastIndex {
		s.lastOpen = false
	}
	obj.set("index", appendInt(nil, int64(b.out)))
	return s.emit(dst, sse.EventContentBlockStop, obj)
}

func (s *AnthropicSplicer) messageDelta(dst []byte, obj *object) []byte {
	dst = s.closeOrigin(dst)
	usage, ok := obj.getObject("usage")
	if !ok {
		usage = &object{fold: true}
	}
	if _, ok := usage.getInt("output_tokens"); ok {
		s.finalOut = true
	}
	u := s.cont.Usage()
	usage.set("output_tokens", appendInt(nil, s.o.Output+s.contOutput()))
	for _, f := range []struct {
		key   string
		prior int64
		cont  int64
	}{
		{"input_tokens", s.o.Input, u.InputTokens},
		{"cache_creation_input_tokens", s.o.CacheCreationInput, u.CacheCreationInputTokens},
		{"cache_read_input_tokens", s.o.CacheReadInput, u.CacheReadInputTokens},
	} {
		if f.cont >= 0 {
			usage.set(f.key, appendInt(nil, max(0, f.prior)+f.cont))
		}
	}
	obj.set("usage", usage.bytes())
	return s.emit(dst, sse.EventMessageDelta, obj)
}

// stripText removes from the start of text what is left of Origin.Strip,
// as far as text matches it rune by rune, and returns the rest. Stripping
// ends at the first text that goes beyond or departs from Strip.
func (s *AnthropicSplicer) stripText(text string) string {
	if !s.stripping || text == "" {
		return text
	}
	rest, done := stripPrefix(&s.strip, text)
	s.stripping = !done
	return rest
}

// stripPrefix removes the longest common prefix (whole runes) of *strip and
// text from both, and returns what is left of text and whether stripping
// is over: text went beyond *strip or departed from it.
func stripPrefix(strip *string, text string) (string, bool) {
	st := *strip
	n := 0
	for n < len(st) && n < len(text) {
		r1, s1 := utf8.DecodeRuneInString(st[n:])
		r2, s2 := utf8.DecodeRuneInString(text[n:])
		if r1 != r2 || s1 != s2 || (r1 == utf8.RuneError && s1 == 1) {
			break
		}
		n += s1
	}
	*strip = st[n:]
	rest := text[n:]
	return rest, rest != "" || *strip == ""
}

// Next returns the Origin for a further resume if the continuation is
// interrupted too: what the caller has now received (Text, the block
// state in the caller's numbering) and the usage of every attempt so far.
// Output counts the continuation's reported output tokens, or, before its
// final message_delta, at least one per content delta received; the
// Transport may raise it with its own live count. Strip is left empty for
// the next Continuation's.
func (s *AnthropicSplicer) Next() Origin {
	o := s.o
	u := s.cont.Usage()
	o.Output += s.contOutput()
	o.Input = max(0, o.Input) + max(0, u.InputTokens)
	o.CacheCreationInput = max(0, o.CacheCreationInput) + max(0, u.CacheCreationInputTokens)
	o.CacheReadInput = max(0, o.CacheReadInput) + max(0, u.CacheReadInputTokens)
	o.Text += s.text.String()
	o.Strip = ""
	o.LastIndex, o.LastType, o.NextIndex = s.lastIndex, s.lastType, s.next
	o.LastOpen = s.lastOpen
	return o
}

// contOutput is the continuation's output so far: its reported count, or,
// before a message_delta reported one, at least one per content delta.
func (s *AnthropicSplicer) contOutput() int64 {
	out := max(0, s.cont.Usage().OutputTokens)
	if !s.finalOut {
		out = max(out, int64(s.cont.DeltaCount()))
	}
	return out
}

// Resumable reports whether the caller's stream, with what this splicer
// has delivered, can still be continued: false once the continuation
// completed or delivered a block other than text.
func (s *AnthropicSplicer) Resumable() (ok bool, reason string) {
	if s.cont.Verdict().Status == sse.Complete {
		return false, "the stream is complete"
	}
	if s.nonText != "" {
		return false, s.nonText
	}
	return true, ""
}
