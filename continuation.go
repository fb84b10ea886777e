package streamgate

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/cost"
	"github.com/streamgate/streamgate/resume"
	"github.com/streamgate/streamgate/sse"
)

// DefaultMaxResumes bounds the continuations of one stream.
const DefaultMaxResumes = 4

// resumeAllowed reports whether this call's stream may be resumed.
func (c *call) resumeAllowed() bool {
	if c.cont || !c.t.cfg.resume {
		return false
	}
	return !strings.EqualFold(strings.TrimSpace(c.req.Header.Get(HeaderResume)), "off")
}

// continuation returns a call for a continuation body: same key, gate and
// id, admitted ahead of new work, never resumed itself (the body splicing it
// orchestrates further resumes).
func (c *call) continuation(ctx context.Context, body []byte) (*call, error) {
	parsed, err := cost.Parse(c.ep.api(), body)
	if err != nil {
		return nil, err
	}
	cc := &call{
		t: c.t, req: c.req, ctx: ctx, ep: c.ep, body: body, parsed: parsed,
		key: c.key, ks: c.ks, id: c.id, start: time.Now(), priority: c.priority,
		sdkRetry: true, cont: true,
	}
	cc.estimate = c.t.est.Estimate(parsed)
	return cc, nil
}

// tryResume continues an interrupted stream when what the caller received
// can be continued: it ends the interrupted attempt, sends a continuation
// request through the gate and splices its stream in. It reports whether
// the stream goes on. Requires b.mu held.
func (b *streamBody) tryResume(intr interruption) bool {
	c := b.c
	if !b.resumeOn || b.resumes >= c.t.cfg.maxResumes {
		return false
	}
	if intr.upErr != nil && !intr.class.Retryable() {
		return false // the provider said the request itself is at fault
	}
	var ok bool
	switch m := b.model.(type) {
	case *sse.MessageStream:
		ok, _ = resume.Resumable(m)
	case *sse.ChatStream:
		ok, _ = resume.ResumableChat(m)
	}
	if !ok {
		return false
	}

	// End the interrupted attempt: settle what it produced.
	var origin resume.Origin
	if b.splicer == nil {
		in, out := b.endAttempt(false)
		b.priorIn, b.priorOut = max(in, 0), max(out, 0)
		b.emitResume(intr, out)
		switch m := b.model.(type) {
		case *sse.MessageStream:
			origin = resume.OriginFromMessage(m, "", b.priorOut, b.priorIn)
		case *sse.ChatStream:
			origin = resume.OriginFromChat(m, "", b.priorOut, b.priorIn)
		}
	} else {
		b.emitResume(intr, b.lastInnerOut)
		origin = b.splicer.Next()
		origin.Output, origin.Input = b.priorOut, b.priorIn
	}

	delivered := int64(b.deltas())
	form := resume.UserContinue
	if b.isMsg {
		form = c.t.cfg.prefill.Form(c.parsed.Model)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	b.setContCancel(cancel)
	inner, strip, err := b.startContinuation(ctx, origin.Text, delivered, form)
	if err != nil {
		cancel()
		b.setContCancel(nil)
		return false
	}
	origin.Strip = strip
	if b.isMsg {
		b.splicer = resume.NewAnthropicSplicer(origin)
	} else {
		b.splicer = resume.NewChatSplicer(origin)
	}
	b.inner = inner
	b.cparser = sse.Parser{}
	b.parser = sse.Parser{} // the cut event's bytes are dropped with it
	b.held = b.held[:0]
	b.errEvent, b.errBytes = nil, nil
	b.spliceErr = nil
	b.resumes++
	b.deltasAt = b.deltas()
	return true
}

// startContinuation sends the continuation request (learning, from the
// provider's 400, a model that rejects prefill and trying the other form)
// and returns its stream body.
func (b *streamBody) startContinuation(ctx context.Context, partial string, delivered int64, form resume.Form) (*streamBody, string, error) {
	c := b.c
	for range 2 {
		var cont resume.Continuation
		var err error
		if b.isMsg {
			cont, err = resume.Anthropic(c.body, partial, delivered, form)
		} else {
			cont, err = resume.OpenAI(c.body, partial, delivered, form)
		}
		if err != nil {
			return nil, "", err
		}
		cc, err := c.continuation(ctx, cont.Body)
		if err != nil {
			return nil, "", err
		}
		resp, err := cc.run()
		if err != nil {
			return nil, "", err
		}
		if inner, ok := resp.Body.(*streamBody); ok && resp.StatusCode == http.StatusOK {
			return inner, cont.Strip, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, apierr.MaxBody))
		resp.Body.Close()
		if form == resume.Prefill && resume.IsPrefillRejection(resp.StatusCode, body) {
			c.t.cfg.prefill.Learn(c.parsed.Model)
			form = resume.UserContinue
			continue
		}
		return nil, "", errors.New("streamgate: continuation refused: " + resp.Status)
	}
	return nil, "", errors.New("streamgate: continuation refused")
}

// deltas counts the content deltas the caller has received (Anthropic
// text deltas, OpenAI content chunks): the simulator sends one token per
// delta, real providers a few, so this is the delivered-token count used to
// shrink max_tokens for a continuation.
func (b *streamBody) deltas() int {
	switch m := b.model.(type) {
	case *sse.MessageStream:
		return m.DeltaCount()
	case *sse.ChatStream:
		return m.DeltaCount()
	}
	return 0
}

// emitResume records a resume: produced is what the interrupted attempt
// generated; what it delivered is its deltas, the rest was wasted.
func (b *streamBody) emitResume(intr interruption, produced int64) {
	ev := b.c.event(EventResume)
	ev.Class, ev.Err = intr.class, intr.upErr
	if ev.Err == nil {
		ev.Err = intr.cause
	}
	ev.Attempt = b.resumes + 1
	ev.OutputTokens = produced
	delivered := int64(b.deltas() - b.deltasAt)
	ev.Wasted = max(produced-delivered, 0)
	if len(b.held) > 0 && ev.Wasted == 0 {
		ev.Wasted = 1 // the event cut in transit
	}
	b.c.t.emit(ev)
}

// fillSpliced reads the continuation's events and splices them into the
// caller's stream.
func (b *streamBody) fillSpliced() error {
	n, err := b.inner.Read(b.buf)
	if n > 0 {
		perr := b.cparser.Feed(b.buf[:n], func(ev sse.Event) {
			if b.spliceErr != nil {
				return
			}
			out, serr := b.splicer.Splice(nil, ev)
			var ce *resume.ContinuationError
			switch {
			case errors.As(serr, &ce):
				// The continuation's own error event: its body ends
				// with a *StreamError next, and we decide then.
			case serr != nil:
				b.spliceErr = serr
			case len(out) > 0:
				if ierr := b.ingest(out); ierr != nil {
					b.spliceErr = ierr
				}
			}
		})
		if perr != nil && b.spliceErr == nil {
			b.spliceErr = perr
		}
	}
	if b.spliceErr != nil {
		return b.spliceErr
	}
	return err
}

// finishSpliced ends a spliced stream: complete, cancelled, or interrupted
// again (then it may resume again). Requires b.mu held.
func (b *streamBody) finishSpliced(readErr error) {
	inner := b.inner
	b.inner = nil
	b.setContCancel(nil)
	inner.Close() // idempotent; settles it if it had not ended
	in, out := inner.usageIn, inner.usageOut
	b.priorIn += max(in, 0)
	b.priorOut += max(out, 0)
	b.lastInnerOut = out
	c := b.c
	cancelled := b.closed.Load() || c.ctx.Err() != nil
	if b.completeAt(readErr) || cancelled {
		b.end(readErr, nil)
		return
	}
	var intr interruption
	var se *StreamError
	switch {
	case b.spliceErr != nil:
		intr = interruption{class: apierr.Unknown, cause: b.spliceErr, reason: "continuation could not be spliced"}
		b.end(readErr, &intr)
		return
	case errors.As(readErr, &se):
		intr = interruption{class: se.Class, cause: se.Cause, reason: se.Reason, upErr: se.Upstream}
	default:
		intr = b.interruption(readErr)
	}
	if !b.tryResume(intr) {
		b.end(readErr, &intr)
	}
}
