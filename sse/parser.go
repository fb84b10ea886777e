package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultMaxEventSize is the bound a Parser applies when MaxEventSize is
// zero: 8 MiB.
const DefaultMaxEventSize = 8 << 20

// ErrEventTooLarge is returned when a line, or the data of one event, is
// longer than the parser's MaxEventSize. The parser stops at that point.
var ErrEventTooLarge = errors.New("sse: event too large")

// ErrTruncated is returned by Reader.Next when the stream ended in the middle
// of an event: an unterminated line, or field lines without the blank line
// that dispatches them. It wraps io.ErrUnexpectedEOF.
var ErrTruncated = fmt.Errorf("sse: stream ended in the middle of an event: %w", io.ErrUnexpectedEOF)

// Event is one dispatched server-sent event.
//
// An Event handed out by this package owns its Data: it is safe to keep and
// to modify.
type Event struct {
	// Type is the value of the event's "event:" field, or "" when it had
	// none (browsers call that type "message"; this package does not rename
	// it).
	Type string
	// Data is the event's data lines joined with "\n". It is never nil for
	// a dispatched event, but may be empty ("data:" alone).
	Data []byte
	// ID is the stream's last event ID when the event was dispatched: the
	// value of the most recent valid "id:" field, in this event or an
	// earlier one, as the EventSource rules require.
	ID string
	// HasID reports whether this event's own lines contained a valid "id:"
	// field (one without NUL).
	HasID bool
	// Retry is the reconnection time set by a "retry:" field in this event's
	// lines; zero when HasRetry is false.
	Retry time.Duration
	// HasRetry reports whether this event's lines contained a valid
	// "retry:" field (ASCII digits only).
	HasRetry bool
}

// maxKeptBuffer is the capacity above which the parser drops a buffer after
// use instead of keeping it for the next event, so that one huge event does
// not pin its memory for the stream's lifetime.
const maxKeptBuffer = 64 << 10

var utf8BOM = [3]byte{0xEF, 0xBB, 0xBF}

// Parser is an incremental, push-style event-stream parser following the
// WHATWG EventSource parsing rules. Feed it the stream in chunks of any size,
// split anywhere (inside a CRLF pair, inside a multi-byte UTF-8 character);
// the events it emits do not depend on where the chunks were split.
//
// It accepts LF, CRLF and CR line endings, strips one leading UTF-8 byte
// order mark, ignores comment lines (starting with ':') while counting them,
// accepts a field name without a colon (empty value), strips a single space
// after the colon, ignores an "id" containing NUL and a "retry" that is not
// all ASCII digits. Field values are raw bytes and are not UTF-8 validated.
//
// The zero value is ready to use, with the default MaxEventSize. A Parser is
// not safe for concurrent use.
type Parser struct {
	// MaxEventSize bounds the length of any one line and the size of one
	// event's data, in bytes. Zero means DefaultMaxEventSize; negative
	// means no bound. Exceeding it makes Feed return ErrEventTooLarge.
	MaxEventSize int

	line    []byte // a line carried over from an earlier chunk
	data    []byte // the event's data lines, each followed by '\n'
	typ     string // the event type buffer
	lastTyp string // the previous event type seen, to avoid reallocating it
	hasData bool   // a data field was seen in the current block
	pending bool   // the current block has at least one field line
	blockID bool   // the current block set the last event ID
	blkRty  bool   // the current block set the retry time
	blkRtyV time.Duration

	lastID   string
	retry    time.Duration
	hasRetry bool
	comments int
	events   int

	skipLF     bool // the previous chunk ended in CR: a leading LF is part of it
	bomChecked bool // the start of the stream has been checked for a BOM
	bomN       int  // bytes of a BOM matched so far at the start
	ended      bool // End was called; the next Feed starts a new stream
	partial    bool
	err        error
	boundary   int // see Boundary
	lineEnd    int // see EventEnd
}

func (p *Parser) maxSize() int {
	switch {
	case p.MaxEventSize == 0:
		return DefaultMaxEventSize
	case p.MaxEventSize < 0:
		return int(^uint(0) >> 1)
	default:
		return p.MaxEventSize
	}
}

// Feed parses the next chunk of the stream, calling emit for each event it
// completes, in order. emit must not call back into the Parser; a nil emit
// discards the events. The Parser does not retain b.
//
// After Feed returns an error (only ErrEventTooLarge), the Parser is stuck:
// every later Feed and End returns the same error and emits nothing.
// Feeding after End starts a new stream (a BOM is stripped again); the last
// event ID and retry time carry over, as for a reconnected EventSource.
func (p *Parser) Feed(b []byte, emit func(Event)) error {
	p.boundary = -1
	if p.err != nil {
		return p.err
	}
	if emit == nil {
		emit = func(Event) {}
	}
	inLen := len(b)
	if p.ended {
		p.ended = false
		p.partial = false
	}
	if !p.bomChecked {
		b = p.stripBOM(b)
		if !p.bomChecked {
			return nil
		}
	}
	if len(b) == 0 {
		return nil
	}
	if p.skipLF {
		p.skipLF = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	limit := p.maxSize()
	pos := 0
	crAt := -1 // position of the next CR at or after pos, len(b) if none
	for pos < len(b) {
		if crAt < pos {
			if j := bytes.IndexByte(b[pos:], '\r'); j >= 0 {
				crAt = pos + j
			} else {
				crAt = len(b)
			}
		}
		end := crAt
		if j := bytes.IndexByte(b[pos:crAt], '\n'); j >= 0 {
			end = pos + j
		}
		if end == len(b) {
			// No line ending in the rest of the chunk: carry it over.
			if len(p.line)+len(b)-pos > limit {
				return p.fail(ErrEventTooLarge)
			}
			p.line = append(p.line, b[pos:]...)
			return nil
		}
		line := b[pos:end]
		if len(p.line) > 0 {
			p.line = append(p.line, line...)
			line = p.line
		}
		next := end + 1
		if b[end] == '\r' {
			if next < len(b) {
				if b[next] == '\n' {
					next++
				}
			} else {
				p.skipLF = true
			}
		}
		pos = next
		if len(line) > limit {
			return p.fail(ErrEventTooLarge)
		}
		before := p.events
		p.lineEnd = inLen - len(b) + pos
		if err := p.processLine(line, limit, emit); err != nil {
			return p.fail(err)
		}
		if p.events != before {
			p.boundary = p.lineEnd
		}
		p.line = trimBuffer(p.line)
	}
	return nil
}

// stripBOM consumes the bytes of a leading UTF-8 BOM from b, which may be
// split across chunks, and returns the rest of b. When the start of the
// stream turns out not to be a BOM, the bytes already consumed are put back
// as the start of the first line.
func (p *Parser) stripBOM(b []byte) []byte {
	i := 0
	for i < len(b) && p.bomN < len(utf8BOM) {
		if b[i] != utf8BOM[p.bomN] {
			// Not a BOM: the matched prefix is ordinary line content
			// (0xEF and 0xBB are never line endings).
			p.line = append(p.line, utf8BOM[:p.bomN]...)
			p.bomN = 0
			p.bomChecked = true
			return b[i:]
		}
		p.bomN++
		i++
	}
	if p.bomN == len(utf8BOM) {
		p.bomN = 0
		p.bomChecked = true
	}
	return b[i:]
}

func (p *Parser) fail(err error) error {
	p.err = err
	return err
}

// trimBuffer empties buf for reuse, dropping it when it grew large.
func trimBuffer(buf []byte) []byte {
	if cap(buf) > maxKeptBuffer {
		return nil
	}
	return buf[:0]
}

// processLine interprets one complete line (without its line ending).
func (p *Parser) processLine(line []byte, limit int, emit func(Event)) error {
	if len(line) == 0 {
		p.dispatch(emit)
		return nil
	}
	if line[0] == ':' {
		p.comments++
		return nil
	}
	p.pending = true
	name, value := line, line[len(line):]
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		p.typ = p.internType(value)
	case "data":
		if len(p.data)+len(value) > limit {
			return ErrEventTooLarge
		}
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
		p.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			if string(value) != p.lastID {
				p.lastID = string(value)
			}
			p.blockID = true
		}
	case "retry":
		if d, ok := parseRetry(value); ok {
			p.retry, p.hasRetry = d, true
			p.blkRty, p.blkRtyV = true, d
		}
	}
	return nil
}

// dispatch ends the current block at a blank line, emitting an event when
// the block had data.
func (p *Parser) dispatch(emit func(Event)) {
	if p.hasData {
		n := len(p.data) - 1 // drop the final '\n'
		data := make([]byte, n)
		copy(data, p.data[:n])
		ev := Event{
			Type:     p.typ,
			Data:     data,
			ID:       p.lastID,
			HasID:    p.blockID,
			Retry:    p.blkRtyV,
			HasRetry: p.blkRty,
		}
		p.events++
		p.resetBlock()
		emit(ev)
		return
	}
	p.resetBlock()
}

func (p *Parser) resetBlock() {
	p.data = trimBuffer(p.data)
	p.typ = ""
	p.hasData = false
	p.pending = false
	p.blockID = false
	p.blkRty, p.blkRtyV = false, 0
}

// internType returns value as a string, reusing a constant or the previous
// type so that the common event names cost no allocation.
func (p *Parser) internType(value []byte) string {
	switch string(value) {
	case "":
		return ""
	case "message_start":
		return "message_start"
	case "content_block_start":
		return "content_block_start"
	case "content_block_delta":
		return "content_block_delta"
	case "content_block_stop":
		return "content_block_stop"
	case "message_delta":
		return "message_delta"
	case "message_stop":
		return "message_stop"
	case "ping":
		return "ping"
	case "error":
		return "error"
	case "message":
		return "message"
	}
	if string(value) != p.lastTyp {
		p.lastTyp = string(value)
	}
	return p.lastTyp
}

// parseRetry reads a retry field: ASCII digits only, in milliseconds. A
// value too large for a time.Duration is ignored.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const maxMillis = int64(^uint64(0)>>1) / int64(time.Millisecond)
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = ms*10 + int64(c-'0')
		if ms > maxMillis {
			return 0, false
		}
	}
	return time.Duration(ms) * time.Millisecond, true
}

// End tells the Parser the stream has ended. Following the EventSource
// rules, an event whose blank line never came is discarded, not emitted;
// Partial reports whether that happened. End returns the error that stopped
// the Parser, if any. Calling End twice is harmless.
func (p *Parser) End() error {
	if p.err != nil {
		return p.err
	}
	if p.ended {
		return nil
	}
	if !p.bomChecked && p.bomN > 0 {
		p.line = append(p.line, utf8BOM[:p.bomN]...)
	}
	p.partial = len(p.line) > 0 || p.pending
	p.line = trimBuffer(p.line)
	p.resetBlock()
	p.skipLF = false
	p.bomChecked = false
	p.bomN = 0
	p.ended = true
	return nil
}

// Boundary returns the offset in the input of the last Feed just past the
// line that completed its last event, or -1 if no event was completed by
// it. The bytes of that input up to Boundary plus those of earlier Feeds
// form whole events; the bytes after it belong to an event still being
// received. A forwarder that must never hand a reader half an event (so
// that a stream can be resumed or spliced) forwards up to Boundary only.
func (p *Parser) Boundary() int { return p.boundary }

// EventEnd, called from within an emit callback of Feed, returns the offset
// in that Feed's input just past the line that completed the event being
// emitted (the bytes of the event itself may have started in earlier
// inputs). It lets a forwarder hand over, hold back or drop the bytes of
// each event individually.
func (p *Parser) EventEnd() int { return p.lineEnd }

// Partial reports whether the last End discarded bytes: an unterminated
// line, or field lines whose event was never dispatched by a blank line.
// It is false before End is called.
func (p *Parser) Partial() bool { return p.partial }

// Buffered reports whether the Parser holds an incomplete line or event:
// if the stream ended now, Partial would report true.
func (p *Parser) Buffered() bool {
	return len(p.line) > 0 || p.pending || (!p.bomChecked && p.bomN > 0)
}

// LastEventID returns the stream's last event ID: the value of the most
// recent valid "id:" field, even one in a block that dispatched no event.
func (p *Parser) LastEventID() string { return p.lastID }

// Retry returns the reconnection time the stream last asked for with a
// "retry:" field, and whether it asked at all.
func (p *Parser) Retry() (time.Duration, bool) { return p.retry, p.hasRetry }

// Comments returns the number of comment lines seen so far. Servers send
// them as keep-alives.
func (p *Parser) Comments() int { return p.comments }

// Events returns the number of events emitted so far.
func (p *Parser) Events() int { return p.events }

// Err returns the error that stopped the Parser, or nil.
func (p *Parser) Err() error { return p.err }
