package streamgate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
	"github.com/streamgate/streamgate/resume"
	"github.com/streamgate/streamgate/sse"
)

// streamBody is the caller's view of a streaming response: the upstream
// bytes unchanged, observed as they pass, and handed over whole events at a
// time, so a caller never holds half an event. When the stream is
// interrupted and what the caller received can be continued, the body
// sends a continuation request and splices its events in: the caller reads
// one complete stream.
type streamBody struct {
	c      *call
	res    *budget.Reservation // the current attempt's, until it ends
	ticket *gate.Ticket
	up     io.ReadCloser
	model  streamModel // the stream as the caller receives it
	isMsg  bool
	parser sse.Parser
	idle   *time.Timer
	buf    []byte

	stalled atomic.Bool
	closed  atomic.Bool

	mu          sync.Mutex // serialises Read and the end of the stream
	ready       []byte     // whole events not yet handed to the caller
	held        []byte     // bytes of an event still being received
	errEvent    *sse.Event // an error event held back while a resume is possible
	errBytes    []byte     // its bytes, delivered if the stream is not resumed
	first       *sse.Event // the first event with data (set by the peek)
	pendingErr  error      // a read error to act on once ready is drained
	sentFirst   bool
	firstByteAt time.Time
	estimated   int64 // live output estimate of the current attempt
	consumed    int64 // output tokens charged to its reservation so far
	attemptEnd  bool  // the current attempt's reservation is settled
	done        bool
	final       error

	// Resumption state.
	resumeOn   bool
	resumes    int
	inner      *streamBody // the continuation being spliced in
	cparser    sse.Parser  // parses the continuation's events
	splicer    splicer
	spliceErr  error
	contMu     sync.Mutex // guards contCancel, which Close reads while Read holds mu
	contCancel context.CancelFunc
	priorOut   int64 // output produced by attempts before the current one
	priorIn    int64 // input billed to them
	deltasAt   int   // caller-visible deltas when the current attempt began
	// lastInnerOut is the output of the last continuation that ended.
	lastInnerOut int64
	// usageIn and usageOut are this body's own attempt's usage once it
	// ended (read by the body splicing it in).
	usageIn, usageOut int64
}

// splicer is what resume.AnthropicSplicer and resume.ChatSplicer share.
type splicer interface {
	Splice(dst []byte, ev sse.Event) ([]byte, error)
	Next() resume.Origin
}

// newStreamBody wraps a 200 event stream and peeks its first event. A
// stream whose first event is an error is a pre-stream failure: the body is
// closed and the classified error returned so it can be retried.
func newStreamBody(c *call, resp *http.Response, res *budget.Reservation, ticket *gate.Ticket) (*streamBody, *apierr.Error) {
	b := &streamBody{c: c, res: res, ticket: ticket, up: resp.Body, buf: make([]byte, 8<<10)}
	b.resumeOn = c.resumeAllowed()
	if c.ep == OpenAIChatCompletions {
		b.model = &sse.ChatStream{}
	} else {
		b.model = &sse.MessageStream{}
		b.isMsg = true
	}
	b.idle = time.AfterFunc(c.t.cfg.idleTimeout, func() {
		b.stalled.Store(true)
		b.up.Close()
	})
	for b.first == nil {
		err := b.fill()
		if err == nil {
			continue
		}
		if b.first != nil {
			// The stream ended right after its first event: Read
			// finishes it.
			b.pendingErr = err
			break
		}
		// Nothing usable reached us: a pre-stream failure.
		b.abandon()
		if c.ctx.Err() != nil {
			return nil, &apierr.Error{Class: apierr.Unknown, Err: c.ctx.Err(), RetryAfter: -1}
		}
		cause := err
		if b.stalled.Load() {
			cause = ErrStalled
		} else if err == io.EOF {
			cause = io.ErrUnexpectedEOF
		}
		return nil, &apierr.Error{Provider: c.key.Provider, Class: apierr.Network, Err: cause, RetryAfter: -1, Message: "stream ended before its first event"}
	}
	if aerr := apierr.FromEvent(c.key.Provider, b.first.Data); aerr != nil {
		b.abandon()
		return nil, aerr
	}
	return b, nil
}

// abandon ends a stream that never reached the caller.
func (b *streamBody) abandon() {
	b.idle.Stop()
	b.up.Close()
	_ = b.res.Settle(budget.UnknownCost())
	b.ticket.Release()
}

// fill reads one chunk from the current source and ingests it. Requires
// b.mu held (or exclusive access during the peek).
func (b *streamBody) fill() error {
	if b.inner != nil {
		return b.fillSpliced()
	}
	n, err := b.up.Read(b.buf)
	if !b.done {
		b.idle.Reset(b.c.t.cfg.idleTimeout)
	}
	if n > 0 {
		if perr := b.ingest(b.buf[:n]); perr != nil && err == nil {
			err = perr
		}
	}
	if err == io.EOF && b.model.Verdict().Status == sse.Complete {
		// Whatever follows the terminal event (a trailing blank line) is
		// the caller's too.
		b.ready = append(b.ready, b.held...)
		b.held = b.held[:0]
	}
	return err
}

// ingest parses bytes of the caller's stream, observes each event and
// moves its bytes to ready, except an error event, which is held back
// while the stream may still be resumed.
func (b *streamBody) ingest(chunk []byte) error {
	base := len(b.held)
	b.held = append(b.held, chunk...)
	moved := 0
	err := b.parser.Feed(chunk, func(ev sse.Event) {
		end := base + b.parser.EventEnd()
		evBytes := b.held[moved:end]
		moved = end
		if b.resumeOn && b.errEvent == nil && b.isErrorEvent(ev) {
			e := ev
			b.errEvent = &e
			b.errBytes = append([]byte(nil), evBytes...)
			return
		}
		b.ready = append(b.ready, evBytes...)
		b.observe(ev)
	})
	b.held = append(b.held[:0], b.held[moved:]...)
	return err
}

// isErrorEvent reports a mid-stream error event of either provider.
func (b *streamBody) isErrorEvent(ev sse.Event) bool {
	if b.isMsg {
		return ev.Type == sse.EventError
	}
	return bytes.Contains(ev.Data, []byte(`"error"`)) && apierr.FromEvent(ratelimit.OpenAI, ev.Data) != nil
}

// observe feeds one event to the model and charges its output estimate.
func (b *streamBody) observe(ev sse.Event) {
	b.model.Observe(ev)
	if b.first == nil && ev.Type != sse.EventPing && len(ev.Data) > 0 {
		e := ev
		b.first = &e
	}
	if b.inner != nil {
		return // the continuation's own body charges its reservation
	}
	var est int64
	switch {
	case b.isMsg && ev.Type == sse.EventContentBlockDelta:
		est = max(1, int64(len(ev.Data)-anthropicDeltaFraming)/3)
	case !b.isMsg && len(ev.Data) > openaiChunkFraming && ev.Data[0] == '{':
		est = max(1, int64(len(ev.Data)-openaiChunkFraming)/3)
	case !b.isMsg && len(ev.Data) > 0 && ev.Data[0] == '{':
		est = 1
	}
	b.estimated += est
	if reported := b.model.OutputTokens(); reported > b.estimated {
		b.estimated = reported
	}
	if b.estimated-b.consumed >= consumeBatch {
		b.flushConsumed()
	}
}

// flushConsumed charges the output produced since the last flush.
func (b *streamBody) flushConsumed() {
	n := b.estimated - b.consumed
	if n <= 0 || !b.isMsg || b.attemptEnd {
		return // OpenAI charges max_tokens up front: nothing live
	}
	_ = b.res.Consume(ratelimit.OutputTokens, n)
	_ = b.res.Consume(ratelimit.Tokens, n)
	b.consumed += n
}

// Read implements io.Reader: the upstream bytes unchanged, whole events at
// a time, then io.EOF only when the stream was complete, else a
// *StreamError.
func (b *streamBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.ready) == 0 && !b.done {
		err := b.pendingErr
		b.pendingErr = nil
		if err == nil {
			err = b.fill()
		}
		if err != nil && len(b.ready) == 0 {
			b.finish(err)
		} else if err != nil {
			b.pendingErr = err
		}
	}
	if len(b.ready) > 0 {
		n := copy(p, b.ready)
		b.ready = b.ready[n:]
		if len(b.ready) == 0 {
			b.ready = nil
		}
		b.firstByte()
		return n, nil
	}
	return 0, b.final
}

func (b *streamBody) firstByte() {
	if b.sentFirst {
		return
	}
	b.sentFirst = true
	b.firstByteAt = time.Now()
	b.c.t.emit(b.c.event(EventFirstByte))
}

// Close implements io.Closer. Closing before the end abandons the stream:
// the upstream request (and any continuation) is cancelled and the budget
// settled with what was produced.
func (b *streamBody) Close() error {
	b.closed.Store(true)
	b.up.Close() // unblocks a concurrent Read
	if cancel := b.contCancelFunc(); cancel != nil {
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready = nil
	if b.inner != nil {
		b.inner.Close()
	}
	if !b.done {
		b.finish(errClosedByCaller)
	}
	return nil
}

func (b *streamBody) contCancelFunc() context.CancelFunc {
	b.contMu.Lock()
	defer b.contMu.Unlock()
	return b.contCancel
}

func (b *streamBody) setContCancel(f context.CancelFunc) {
	b.contMu.Lock()
	defer b.contMu.Unlock()
	b.contCancel = f
}

var errClosedByCaller = errors.New("streamgate: body closed by caller")

// interruption describes why the current attempt ended before its terminal
// event.
type interruption struct {
	class  apierr.Class
	cause  error
	reason string
	upErr  *apierr.Error // the provider's error event, if any
}

// finish ends the stream once: resume if it can, else verdict, settlement,
// slot release, event. Requires b.mu held.
func (b *streamBody) finish(readErr error) {
	if b.done {
		return
	}
	if b.inner != nil {
		b.finishSpliced(readErr)
		return
	}
	cancelled := b.closed.Load() || b.c.ctx.Err() != nil
	if b.completeAt(readErr) || cancelled || b.model.Verdict().Status == sse.Malformed {
		b.end(readErr, nil)
		return
	}
	intr := b.interruption(readErr)
	if b.completeButStop(intr) {
		return
	}
	if !b.tryResume(intr) {
		b.end(readErr, &intr)
	}
	// Otherwise resumed: the caller's stream goes on from the continuation.
}

// messageStop is Anthropic's terminal event; it carries no data.
var messageStop = []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")

// completeButStop handles an Anthropic stream cut after the provider had
// sent its final message_delta (stop_reason and usage) and every block had
// stopped, but before message_stop: the answer is whole and message_stop
// carries nothing, so the body supplies it (when resumption is on) rather
// than paying for a continuation that could only be empty.
func (b *streamBody) completeButStop(intr interruption) bool {
	ms, ok := b.model.(*sse.MessageStream)
	if !ok || !b.resumeOn || intr.upErr != nil || ms.StopReason() == "" {
		return false
	}
	for _, blk := range ms.Blocks() {
		if !blk.Stopped {
			return false
		}
	}
	b.parser = sse.Parser{}
	b.held = b.held[:0]
	if err := b.ingest(messageStop); err != nil || ms.Verdict().Status != sse.Complete {
		return false
	}
	ev := b.c.event(EventResume)
	ev.Class, ev.Err, ev.Attempt = intr.class, intr.cause, b.resumes+1
	b.c.t.emit(ev)
	b.end(io.EOF, nil)
	return true
}

// completeAt reports whether the stream is complete if it ends with
// readErr: Anthropic's message_stop arrived, or an OpenAI stream saw every
// finish_reason and then [DONE] or a clean end.
func (b *streamBody) completeAt(readErr error) bool {
	if b.model.Verdict().Status == sse.Complete {
		return true
	}
	cs, ok := b.model.(*sse.ChatStream)
	return ok && readErr == io.EOF && !b.parser.Buffered() && b.errEvent == nil && cs.Finished()
}

// interruption classifies how the current attempt was cut.
func (b *streamBody) interruption(readErr error) interruption {
	var errData []byte
	if b.errEvent != nil {
		errData = b.errEvent.Data
	} else if v := b.model.Verdict(); v.Error != nil {
		errData = v.Error.Raw
	}
	switch {
	case errData != nil:
		in := interruption{class: apierr.Unknown, reason: "ended by an error event"}
		if aerr := apierr.FromEvent(b.c.key.Provider, errData); aerr != nil {
			in.class, in.upErr = aerr.Class, aerr
		}
		return in
	case b.stalled.Load():
		return interruption{class: apierr.Timeout, cause: ErrStalled, reason: fmt.Sprintf("no data for %s", b.c.t.cfg.idleTimeout)}
	case readErr == io.EOF:
		return interruption{class: apierr.Network, cause: io.ErrUnexpectedEOF, reason: "stream ended before its terminal event"}
	default:
		return interruption{class: apierr.Network, cause: readErr, reason: "read error: " + readErr.Error()}
	}
}

// endAttempt settles the current attempt's reservation with what it
// produced and releases its slot. It returns the attempt's input and
// output usage.
func (b *streamBody) endAttempt(complete bool) (in, out int64) {
	b.idle.Stop()
	b.up.Close()
	in, out = b.attemptUsage(complete)
	if b.attemptEnd {
		return in, out
	}
	b.flushConsumed()
	b.attemptEnd = true
	b.c.settle(b.res, in, out)
	if complete && !b.firstByteAt.IsZero() {
		b.c.ks.observeStreamRate(out, time.Since(b.firstByteAt))
	}
	b.ticket.Release()
	if b.errEvent != nil {
		if aerr := apierr.FromEvent(b.c.key.Provider, b.errEvent.Data); aerr != nil && aerr.Class == apierr.RateLimited {
			b.c.ks.gate.RateLimited()
		}
	}
	return in, out
}

// attemptUsage is the current (first) attempt's usage: reported, else
// estimated for an interrupted stream.
func (b *streamBody) attemptUsage(complete bool) (in, out int64) {
	in = -1
	switch m := b.model.(type) {
	case *sse.MessageStream:
		if u := m.Usage(); u.InputTokens >= 0 {
			in = u.InputTokens + max(u.CacheCreationInputTokens, 0)
		}
	case *sse.ChatStream:
		in = m.Usage().PromptTokens
	}
	out = b.model.OutputTokens()
	if !complete || out < 0 {
		out = max(out, b.estimated)
	}
	return in, out
}

// end delivers the final verdict to the caller. intr is nil for a
// complete, cancelled or malformed stream.
func (b *streamBody) end(readErr error, intr *interruption) {
	c := b.c
	if b.errBytes != nil {
		// Not resumed: the caller gets the provider's error event as sent.
		b.ready = append(b.ready, b.errBytes...)
		b.model.Observe(*b.errEvent)
		b.errBytes = nil
	}
	var v sse.Verdict
	switch {
	case intr == nil && readErr == io.EOF && !b.parser.Buffered():
		v = b.model.End()
	case intr != nil:
		v = b.model.Interrupt(intr.reason)
	default:
		v = b.model.Interrupt("closed by the caller")
	}
	in, out := b.endAttempt(v.Status == sse.Complete)
	b.done = true
	if b.resumes == 0 {
		b.usageIn, b.usageOut = in, out
	}
	totalOut, totalIn := max(out, 0), max(in, 0)
	if b.resumes > 0 {
		// The attempts were settled one by one; the caller's message
		// reports their sum.
		totalOut, totalIn = max(b.priorOut, b.model.OutputTokens()), b.priorIn
	}
	if c.cont {
		// A continuation's outcome is reported by the stream it is
		// spliced into.
		if v.Status == sse.Complete {
			b.final = io.EOF
		} else {
			b.final = &StreamError{Class: apierr.Network, Status: v.Status, Reason: v.Reason, OutputTokens: totalOut}
			if intr != nil {
				b.final = &StreamError{Class: intr.class, Status: v.Status, Reason: v.Reason, Cause: intr.cause, Upstream: intr.upErr, OutputTokens: totalOut}
			}
		}
		return
	}
	switch {
	case v.Status == sse.Complete:
		b.final = io.EOF
		ev := c.event(EventCompleted)
		ev.InputTokens, ev.OutputTokens = totalIn, totalOut
		c.t.emit(ev)
		return
	case intr == nil && v.Status != sse.Malformed:
		b.final = readErr
		if readErr == errClosedByCaller || readErr == nil {
			b.final = errors.New("streamgate: read on closed body")
		}
		c.cancelled(totalOut)
		return
	}
	se := &StreamError{Class: apierr.Unknown, Status: v.Status, Reason: v.Reason, OutputTokens: totalOut}
	if intr != nil {
		se.Class, se.Cause, se.Upstream = intr.class, intr.cause, intr.upErr
		if intr.upErr != nil {
			se.RequestID = intr.upErr.RequestID
		}
	}
	if v.Status == sse.Malformed {
		se.Class = apierr.Unknown
	}
	b.final = se
	ev := c.event(EventFailed)
	ev.Status, ev.Class, ev.Err, ev.OutputTokens, ev.InputTokens = http.StatusOK, se.Class, se, totalOut, totalIn
	c.t.emit(ev)
}
