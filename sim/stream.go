package sim

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// encoder renders one provider's response: the streamed events and the
// whole (non-streaming) body.
type encoder interface {
	prelude(b []byte) []byte
	token(b []byte, text string) []byte
	ping(b []byte) []byte
	// finish ends the stream; terminal=false leaves out message_stop
	// (OpenAI: [DONE]).
	finish(b []byte, hitMax bool, out int, terminal bool) []byte
	errorEvent(b []byte, e *apiError) []byte
	malformed(b []byte) []byte
	whole(text string, hitMax bool, out int) []byte
}

// maxBatch bounds the tokens written in one flush.
const maxBatch = 512

// pacer schedules a response's output tokens: token j (0-based) is due at
// start + delay + j/TokensPerSecond, and a stream wakes at most once per
// FlushInterval, sending every token due by then. All waiting is on one
// reusable timer, so a stream costs one goroutine (its handler's) and one
// wake-up per flush.
type pacer struct {
	start    time.Time
	perTok   float64 // seconds per token; 0 = unpaced
	delay    time.Duration
	flush    time.Duration
	lastWake time.Time
	timer    *time.Timer
}

func (x *exchange) newPacer() *pacer {
	cfg := &x.s.cfg
	p := &pacer{start: time.Now(), delay: cfg.FirstTokenDelay, flush: cfg.FlushInterval}
	if cfg.TokensPerSecond > 0 {
		p.perTok = 1 / cfg.TokensPerSecond
	}
	if x.faultOn && x.fault.Name == FaultSlowFirstToken {
		d := x.fault.Delay
		if d <= 0 {
			d = 10 * time.Second
		}
		p.delay += d
	}
	p.lastWake = p.start.Add(-p.flush)
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	return p
}

func (p *pacer) stop() { p.timer.Stop() }

// due returns when token j is due.
func (p *pacer) due(j int) time.Time {
	return p.start.Add(p.delay + time.Duration(float64(j)*p.perTok*float64(time.Second)))
}

// wait blocks until token j is due (and a flush interval has passed since
// the last wake) and returns the time, or how the response ended instead.
func (p *pacer) wait(ctx context.Context, done <-chan struct{}, j int) (time.Time, string) {
	target := p.due(j)
	if p.perTok > 0 {
		if t := p.lastWake.Add(p.flush); t.After(target) {
			target = t
		}
	}
	now := time.Now()
	if d := target.Sub(now); d > 0 {
		p.timer.Reset(d)
		select {
		case <-p.timer.C:
		case <-ctx.Done():
			p.timer.Stop()
			return now, EndClientGone
		case <-done:
			p.timer.Stop()
			return now, EndServerClosed
		}
		now = time.Now()
	} else {
		select {
		case <-ctx.Done():
			return now, EndClientGone
		case <-done:
			return now, EndServerClosed
		default:
		}
	}
	p.lastWake = now
	return now, ""
}

// dueCount returns how many tokens from j (at least 1, at most maxBatch,
// at most n-j) are due at now.
func (p *pacer) dueCount(j, n int, now time.Time) int {
	k := 1
	for j+k < n && k < maxBatch && !p.due(j+k).After(now) {
		k++
	}
	return k
}

// send writes and flushes b; false means the client is gone.
func (x *exchange) send(rc *http.ResponseController, b []byte) bool {
	if len(b) > 0 {
		if _, err := x.w.Write(b); err != nil {
			x.setEnd(EndClientGone)
			return false
		}
	}
	if err := rc.Flush(); err != nil {
		x.setEnd(EndClientGone)
		return false
	}
	return true
}

func (x *exchange) setEnd(end string) {
	if x.rec.End == "" {
		x.rec.End = end
	}
}

// stream sends the answer as server-sent events, drawing each output token
// from the live output bucket as it is sent.
func (x *exchange) stream() {
	s := x.s
	enc := x.encoder()
	x.setRateHeaders()
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	x.w.WriteHeader(http.StatusOK)
	x.rec.Status = http.StatusOK
	rc := http.NewResponseController(x.w)
	buf := enc.prelude(make([]byte, 0, 4096))
	if !x.send(rc, buf) {
		return
	}
	p := x.newPacer()
	defer p.stop()
	ctx := x.r.Context()
	n := len(x.tokens)
	lastPing := time.Now()
	i := 0
	for {
		if x.faultOn && x.faultAt == i && x.midFault(rc, enc, i) {
			return
		}
		if i >= n {
			break
		}
		now, end := p.wait(ctx, s.done, i)
		if end != "" {
			x.setEnd(end)
			return
		}
		k := p.dueCount(i, n, now)
		if x.faultOn && x.faultAt > i && x.faultAt < i+k {
			k = x.faultAt - i
		}
		got := x.acct.drawOutput(s.clock.Now(), k)
		buf = buf[:0]
		if now.Sub(lastPing) >= s.cfg.PingInterval {
			buf, lastPing = enc.ping(buf), now
		}
		for _, t := range x.tokens[i : i+got] {
			buf = enc.token(buf, t)
		}
		i += got
		x.rec.OutputTokens = i
		if got < k {
			x.setEnd(EndRateLimitedMidstream)
			x.send(rc, enc.errorEvent(buf, x.midstreamLimit()))
			return
		}
		if !x.send(rc, buf) {
			return
		}
	}
	terminal := !(x.faultOn && x.fault.Name == FaultNoTerminal)
	if !x.send(rc, enc.finish(buf[:0], x.hitMax, i, terminal)) {
		return
	}
	switch {
	case !terminal:
		x.setEnd(FaultEnd(FaultNoTerminal))
	case x.hitMax:
		x.setEnd(EndMaxTokens)
	default:
		x.setEnd(EndComplete)
	}
}

// midFault acts on a fault at its token; true means the response is over.
func (x *exchange) midFault(rc *http.ResponseController, enc encoder, i int) bool {
	name := x.fault.Name
	switch name {
	case FaultMalformedEvent:
		return !x.send(rc, enc.malformed(nil))
	case Fault529Midstream:
		x.setEnd(FaultEnd(name))
		x.send(rc, enc.errorEvent(nil, x.overloaded()))
		return true
	case FaultDropMidstream:
		var next []byte
		if i < len(x.tokens) {
			next = enc.token(nil, x.tokens[i])
		} else {
			next = enc.finish(nil, x.hitMax, i, true)
		}
		x.setEnd(FaultEnd(name))
		if cut := min(x.fault.Cut, len(next)-1); cut > 0 && !x.send(rc, next[:cut]) {
			return true
		}
		dropConn(x.w, false)
		return true
	case FaultStallMidstream:
		x.setEnd(FaultEnd(name))
		if x.hold() {
			dropConn(x.w, false)
		}
		return true
	}
	return false
}

// whole generates the answer at the streaming pace and sends it as one
// JSON body. Mid-stream faults become their closest non-streaming form: an
// overloaded error, a dropped or held connection, a truncated body.
func (x *exchange) whole() {
	s := x.s
	enc := x.encoder()
	p := x.newPacer()
	defer p.stop()
	ctx := x.r.Context()
	n := len(x.tokens)
	i := 0
	for {
		if x.faultOn && x.faultAt == i {
			switch name := x.fault.Name; name {
			case Fault529Midstream:
				x.rec.End = FaultEnd(name)
				x.fail(x.overloaded())
				return
			case FaultDropMidstream:
				x.rec.End = FaultEnd(name)
				dropConn(x.w, false)
				return
			case FaultStallMidstream:
				x.rec.End = FaultEnd(name)
				if x.hold() {
					dropConn(x.w, false)
				}
				return
			}
		}
		if i >= n {
			break
		}
		now, end := p.wait(ctx, s.done, i)
		if end != "" {
			x.setEnd(end)
			if end == EndServerClosed {
				dropConn(x.w, false)
			}
			return
		}
		k := p.dueCount(i, n, now)
		if x.faultOn && x.faultAt > i && x.faultAt < i+k {
			k = x.faultAt - i
		}
		got := x.acct.drawOutput(s.clock.Now(), k)
		i += got
		x.rec.OutputTokens = i
		if got < k {
			x.rec.End = EndRateLimitedMidstream
			x.fail(x.midstreamLimit())
			return
		}
	}
	body := enc.whole(strings.Join(x.tokens, ""), x.hitMax, i)
	if x.faultOn && (x.fault.Name == FaultMalformedEvent || x.fault.Name == FaultNoTerminal) {
		body = body[:len(body)/2]
		x.setEnd(FaultEnd(x.fault.Name))
	}
	x.setRateHeaders()
	x.rec.Status = http.StatusOK
	writeBody(x.w, body)
	switch {
	case x.hitMax:
		x.setEnd(EndMaxTokens)
	default:
		x.setEnd(EndComplete)
	}
}

func writeBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// midstreamLimit is the rate-limit error for an output budget that ran dry,
// with the wait for the next output token.
func (x *exchange) midstreamLimit() *apiError {
	now := x.s.clock.Now()
	d, limit := x.acct.outputLimit()
	level, wait := x.acct.outputWait(now)
	e := x.limitMessage(d, limit, level, 1, wait)
	e.end = EndRateLimitedMidstream
	x.rec.Dimension, x.rec.RetryAfter = d.String(), retryAfterSeconds(wait)
	return e
}

// overloaded is the provider's overload error (Anthropic 529
// overloaded_error; OpenAI 503 server_is_overloaded).
func (x *exchange) overloaded() *apiError {
	if x.req.provider == ratelimit.OpenAI {
		return &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "server_is_overloaded", message: "The server is overloaded or not ready yet.", end: FaultEnd(Fault529Midstream)}
	}
	return &apiError{status: 529, typ: "overloaded_error", message: "Overloaded", end: FaultEnd(Fault529Midstream)}
}
