package streamgate

import (
	"bytes"
	"encoding/json"
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
	"github.com/streamgate/streamgate/sse"
)

// unary reads a non-streaming success body whole (bounded), settles the
// reservation with the usage it reports, and hands the caller the bytes.
func (c *call) unary(resp *http.Response, res *budget.Reservation, ticket *gate.Ticket) (*http.Response, *apierr.Error, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.t.cfg.maxResponse))
	resp.Body.Close()
	if err != nil {
		_ = res.Settle(budget.UnknownCost())
		ticket.Release()
		if c.ctx.Err() != nil {
			c.cancelled(0)
			return nil, nil, err
		}
		aerr := apierr.FromTransport(err)
		if aerr == nil {
			return nil, nil, err
		}
		aerr.Provider = c.key.Provider
		return nil, aerr, err
	}
	in, out := unaryUsage(c.ep, b)
	c.settle(res, in, out)
	ticket.Release()
	ev := c.event(EventCompleted)
	ev.InputTokens, ev.OutputTokens = in, out
	c.t.emit(ev)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
	return resp, nil, nil
}

// unaryUsage reads the usage of a non-streaming response: input tokens that
// count toward the input limit (cache reads excluded) and output tokens; -1
// when absent.
func unaryUsage(ep Endpoint, b []byte) (in, out int64) {
	var v struct {
		Usage struct {
			InputTokens              *int64 `json:"input_tokens"`
			CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
			OutputTokens             *int64 `json:"output_tokens"`
			PromptTokens             *int64 `json:"prompt_tokens"`
			CompletionTokens         *int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	in, out = -1, -1
	if json.Unmarshal(b, &v) != nil {
		return in, out
	}
	u := v.Usage
	if ep == OpenAIChatCompletions {
		if u.PromptTokens != nil {
			in = *u.PromptTokens
		}
		if u.CompletionTokens != nil {
			out = *u.CompletionTokens
		}
		return in, out
	}
	if u.InputTokens != nil {
		in = *u.InputTokens + u.CacheCreationInputTokens
	}
	if u.OutputTokens != nil {
		out = *u.OutputTokens
	}
	return in, out
}

// settle ends a reservation with actual usage (-1 = unknown: what was
// charged stands) and teaches the estimator.
func (c *call) settle(res *budget.Reservation, in, out int64) {
	actual := budget.UnknownCost()
	actual[ratelimit.Requests] = 1
	switch c.ep {
	case OpenAIChatCompletions:
		// OpenAI does not refund the unused part of max_tokens.
		if in >= 0 && out >= 0 {
			actual[ratelimit.Tokens] = max(in+out, c.estimate.Input+c.estimate.Output)
		}
	default:
		actual[ratelimit.InputTokens] = in
		actual[ratelimit.OutputTokens] = out
		if in >= 0 && out >= 0 {
			actual[ratelimit.Tokens] = in + out
		}
	}
	_ = res.Settle(actual)
	if in > 0 {
		c.t.est.ObserveInput(c.parsed.Model, c.estimate.RawInput, in)
	}
	if out > 0 {
		c.t.est.ObserveOutput(c.parsed.Model, out)
	}
}

// streamModel is what the body needs of sse.MessageStream and
// sse.ChatStream.
type streamModel interface {
	Observe(sse.Event)
	End() sse.Verdict
	Interrupt(reason string) sse.Verdict
	Verdict() sse.Verdict
	OutputTokens() int64
}

// Live output charging: estimated from the bytes of content events, flushed
// to the budget in batches so a shared store is not called per token.
const (
	anthropicDeltaFraming = 75  // bytes of JSON around a text delta
	openaiChunkFraming    = 150 // bytes of JSON around a content delta
	consumeBatch          = 16  // tokens
)

// streamBody is the caller's view of a streaming response: the upstream
// bytes unchanged, observed as they pass, and handed over whole events at a
// time: a caller never holds half an event, so an interrupted stream can be
// resumed or ended cleanly.
type streamBody struct {
	c      *call
	res    *budget.Reservation
	ticket *gate.Ticket
	up     io.ReadCloser
	model  streamModel
	isMsg  bool
	parser sse.Parser
	idle   *time.Timer
	buf    []byte

	stalled atomic.Bool
	closed  atomic.Bool

	mu          sync.Mutex // serialises Read and the end of the stream
	ready       []byte     // whole events not yet handed to the caller
	held        []byte     // bytes of an event still being received
	first       *sse.Event // the first event with data (set by the peek)
	pendingErr  error      // a read error to act on once ready is drained
	sentFirst   bool
	firstByteAt time.Time
	estimated   int64 // live output estimate
	consumed    int64 // output tokens charged to the budget so far
	done        bool
	final       error
}

// newStreamBody wraps a 200 event stream and peeks its first event. A
// stream whose first event is an error is a pre-stream failure: the body is
// closed and the classified error returned so it can be retried.
func newStreamBody(c *call, resp *http.Response, res *budget.Reservation, ticket *gate.Ticket) (*streamBody, *apierr.Error) {
	b := &streamBody{c: c, res: res, ticket: ticket, up: resp.Body, buf: make([]byte, 32<<10)}
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
		b.idle.Stop()
		b.up.Close()
		_ = res.Settle(budget.UnknownCost())
		ticket.Release()
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
		b.idle.Stop()
		b.up.Close()
		_ = res.Settle(budget.UnknownCost())
		ticket.Release()
		return nil, aerr
	}
	return b, nil
}

// fill reads one chunk from upstream, observes its events and moves the
// whole events to ready. Requires b.mu held (or exclusive access during the
// peek).
func (b *streamBody) fill() error {
	n, err := b.up.Read(b.buf)
	if !b.done {
		b.idle.Reset(b.c.t.cfg.idleTimeout)
	}
	if n > 0 {
		chunk := b.buf[:n]
		perr := b.parser.Feed(chunk, b.observe)
		b.held = append(b.held, chunk...)
		if bd := b.parser.Boundary(); bd >= 0 {
			cut := len(b.held) - (n - bd)
			b.ready = append(b.ready, b.held[:cut]...)
			b.held = append(b.held[:0], b.held[cut:]...)
		}
		if perr != nil && err == nil {
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

// observe feeds one event to the model and charges its output estimate.
// Requires b.mu held (or exclusive access during the peek).
func (b *streamBody) observe(ev sse.Event) {
	b.model.Observe(ev)
	if b.first == nil && ev.Type != sse.EventPing && len(ev.Data) > 0 {
		e := ev
		b.first = &e
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
	if n <= 0 || !b.isMsg {
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
// the upstream request is cancelled and the budget settled with what was
// produced.
func (b *streamBody) Close() error {
	b.closed.Store(true)
	b.up.Close() // unblocks a concurrent Read
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready = nil
	if !b.done {
		b.finish(errClosedByCaller)
	}
	return nil
}

var errClosedByCaller = errors.New("streamgate: body closed by caller")

// finish ends the stream once: verdict, settlement, slot release, event.
// Requires b.mu held.
func (b *streamBody) finish(readErr error) {
	if b.done {
		return
	}
	b.done = true
	b.idle.Stop()
	c := b.c
	var v sse.Verdict
	var cause error
	class := apierr.Network
	cancelled := false
	switch {
	case readErr == io.EOF:
		if perr := b.parser.End(); perr != nil {
			cause = perr
		}
		if b.parser.Partial() {
			v = b.model.Interrupt("stream ended inside an event")
		} else {
			v = b.model.End()
		}
	case b.stalled.Load():
		cause, class = ErrStalled, apierr.Timeout
		v = b.model.Interrupt(fmt.Sprintf("no data for %s", c.t.cfg.idleTimeout))
	case b.closed.Load() || c.ctx.Err() != nil:
		cancelled = true
		v = b.model.Interrupt("closed by the caller")
	default:
		cause = readErr
		v = b.model.Interrupt("read error: " + readErr.Error())
	}
	b.flushConsumed()
	b.up.Close()

	in := int64(-1)
	if ms, ok := b.model.(*sse.MessageStream); ok {
		if u := ms.Usage(); u.InputTokens >= 0 {
			in = u.InputTokens + max(u.CacheCreationInputTokens, 0)
		}
	} else if cs, ok := b.model.(*sse.ChatStream); ok {
		in = cs.Usage().PromptTokens
	}
	out := b.model.OutputTokens()
	if v.Status != sse.Complete || out < 0 {
		out = max(out, b.estimated)
	}
	c.settle(b.res, in, out)
	if v.Status == sse.Complete && !b.firstByteAt.IsZero() {
		c.ks.observeStreamRate(out, time.Since(b.firstByteAt))
	}
	b.ticket.Release()

	switch {
	case cancelled:
		b.final = readErr
		if readErr == errClosedByCaller {
			b.final = errors.New("streamgate: read on closed body")
		}
		c.cancelled(out)
		return
	case v.Status == sse.Complete:
		b.final = io.EOF
		ev := c.event(EventCompleted)
		ev.InputTokens, ev.OutputTokens = in, out
		c.t.emit(ev)
		return
	}
	se := &StreamError{Class: class, Status: v.Status, Reason: v.Reason, Cause: cause, OutputTokens: out}
	if v.Status == sse.Malformed {
		se.Class = apierr.Unknown
	}
	if v.Error != nil {
		if aerr := apierr.FromEvent(c.key.Provider, v.Error.Raw); aerr != nil {
			se.Upstream, se.Class, se.RequestID = aerr, aerr.Class, aerr.RequestID
			if aerr.Class == apierr.RateLimited {
				c.ks.gate.RateLimited()
			}
		}
	}
	b.final = se
	ev := c.event(EventFailed)
	ev.Status, ev.Class, ev.Err, ev.OutputTokens, ev.InputTokens = http.StatusOK, se.Class, se, out, in
	c.t.emit(ev)
}
