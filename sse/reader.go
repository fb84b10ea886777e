package sse

import (
	"errors"
	"io"
)

// Option configures a Reader or an Observer.
type Option interface {
	apply(*Parser)
}

type optionFunc func(*Parser)

func (f optionFunc) apply(p *Parser) { f(p) }

// WithMaxEventSize sets the parser's Parser.MaxEventSize: the bound on one
// line and on one event's data. Zero means DefaultMaxEventSize, negative no
// bound.
func WithMaxEventSize(n int) Option {
	return optionFunc(func(p *Parser) { p.MaxEventSize = n })
}

// readerBufSize is how much a Reader asks its source for at a time.
const readerBufSize = 16 << 10

// Reader reads events from an io.Reader, one at a time. It reads ahead into
// its own buffer; use Observer when the bytes themselves must pass through.
//
// Create one with NewReader. A Reader is not safe for concurrent use.
type Reader struct {
	r     io.Reader
	p     Parser
	buf   []byte
	queue []Event
	head  int
	err   error // error to return once the queue is drained
}

// NewReader returns a Reader of the event stream r.
func NewReader(r io.Reader, opts ...Option) *Reader {
	rd := &Reader{r: r}
	for _, o := range opts {
		o.apply(&rd.p)
	}
	return rd
}

// Next returns the next event. At a clean end of the stream it returns
// io.EOF; when the stream ended in the middle of an event it returns
// ErrTruncated (which wraps io.ErrUnexpectedEOF). A read error from the
// source, or ErrEventTooLarge, is returned once the events before it have
// been returned. After an error, Next keeps returning it.
func (rd *Reader) Next() (Event, error) {
	for rd.head == len(rd.queue) {
		if rd.err != nil {
			return Event{}, rd.err
		}
		rd.queue, rd.head = rd.queue[:0], 0
		rd.fill()
	}
	ev := rd.queue[rd.head]
	rd.queue[rd.head] = Event{}
	rd.head++
	return ev, nil
}

// fill reads once from the source and parses what came.
func (rd *Reader) fill() {
	if rd.buf == nil {
		rd.buf = make([]byte, readerBufSize)
	}
	n, err := rd.r.Read(rd.buf)
	if n > 0 {
		if perr := rd.p.Feed(rd.buf[:n], rd.push); perr != nil {
			rd.err = perr
			return
		}
	}
	switch {
	case err == nil:
		if n == 0 {
			// A source returning (0, nil) repeatedly would spin; io.Reader
			// discourages it, and the next call simply reads again.
			return
		}
	case errors.Is(err, io.EOF):
		if perr := rd.p.End(); perr != nil {
			rd.err = perr
		} else if rd.p.Partial() {
			rd.err = ErrTruncated
		} else {
			rd.err = io.EOF
		}
	default:
		rd.err = err
	}
}

func (rd *Reader) push(ev Event) { rd.queue = append(rd.queue, ev) }

// LastEventID returns the stream's last event ID so far (see
// Parser.LastEventID).
func (rd *Reader) LastEventID() string { return rd.p.LastEventID() }

// Observer is an io.Reader that passes a body through unchanged while
// parsing it: each Read returns exactly what the underlying Read returned
// (no buffering, no read-ahead), and the callback sees each complete event
// during the Read that delivers the event's last byte, before that Read
// returns. At io.EOF the Observer ends the parse (see Partial).
//
// A parse error (ErrEventTooLarge) stops the parsing, never the bytes:
// reading continues unchanged and Err reports the error.
//
// Create one with NewObserver. An Observer is not safe for concurrent use,
// except that Close may be called while a Read is in progress if the
// underlying reader allows it.
type Observer struct {
	r     io.Reader
	fn    func(Event)
	p     Parser
	err   error
	ended bool
}

var _ io.ReadCloser = (*Observer)(nil)

// NewObserver returns an Observer of r that calls fn for every event. fn may
// be nil, in which case the Observer only tracks completeness (Partial, Err).
func NewObserver(r io.Reader, fn func(Event), opts ...Option) *Observer {
	if fn == nil {
		fn = func(Event) {}
	}
	o := &Observer{r: r, fn: fn}
	for _, opt := range opts {
		opt.apply(&o.p)
	}
	return o
}

// Read reads from the underlying reader, parses what it got, and returns it
// unchanged along with the underlying error.
func (o *Observer) Read(b []byte) (int, error) {
	n, err := o.r.Read(b)
	if n > 0 && o.err == nil && !o.ended {
		if perr := o.p.Feed(b[:n], o.fn); perr != nil {
			o.err = perr
		}
	}
	if err == io.EOF && !o.ended {
		o.ended = true
		if o.err == nil {
			if perr := o.p.End(); perr != nil {
				o.err = perr
			}
		}
	}
	return n, err
}

// Close closes the underlying reader if it is an io.Closer. It does not end
// the parse: a body closed early is not a clean end.
func (o *Observer) Close() error {
	if c, ok := o.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Err returns the parse error that stopped the event parsing, or nil.
func (o *Observer) Err() error { return o.err }

// Ended reports whether the underlying reader returned io.EOF.
func (o *Observer) Ended() bool { return o.ended }

// Partial reports whether the body ended (io.EOF) in the middle of an event,
// whose bytes were therefore never reported to the callback.
func (o *Observer) Partial() bool { return o.ended && o.p.Partial() }

// Buffered reports whether the parser holds the start of an event whose end
// has not passed through yet.
func (o *Observer) Buffered() bool { return o.p.Buffered() }

// Events returns the number of events reported so far.
func (o *Observer) Events() int { return o.p.Events() }

// Comments returns the number of comment lines seen so far.
func (o *Observer) Comments() int { return o.p.Comments() }
