package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// exchange is one API request being answered.
type exchange struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	req  *request
	rec  *Record
	key  string
	rid  string
	acct *account

	// Set once admitted.
	tokens      []string
	hitMax      bool
	cacheRead   int
	cacheCreate int
	// fault is the mid-stream fault in force, if faultOn; faultAt is the
	// output-token count after which it acts.
	fault   FaultSpec
	faultOn bool
	faultAt int
}

// fail sends an error response with the current rate-limit headers.
func (x *exchange) fail(e *apiError) {
	x.setRateHeaders()
	x.rec.Status = e.status
	if x.rec.End == "" {
		x.rec.End = e.end
	}
	writeError(x.w, x.req.provider, e, x.rid)
}

// setRateHeaders writes the provider's rate-limit headers for the key's
// buckets now.
func (x *exchange) setRateHeaders() {
	now := x.s.clock.Now()
	v := x.acct.view(now)
	if x.req.provider == ratelimit.OpenAI {
		setOpenAIHeaders(x.w.Header(), &v)
	} else {
		setAnthropicHeaders(x.w.Header(), &v, now)
	}
}

// pickFault returns the fault targeted at this request (x-sim-fault header,
// then the model suffix) or drawn at random, and whether it was random.
func (x *exchange) pickFault() (spec FaultSpec, ok, random bool, e *apiError) {
	raw := x.r.Header.Get(FaultHeader)
	src := FaultHeader
	if raw == "" {
		raw, src = x.req.faultSpec, "model"
	}
	if raw != "" {
		f, err := ParseFaultSpec(raw)
		if err != nil {
			return FaultSpec{}, false, false, invalid(fmt.Sprintf("%s: %v", src, err))
		}
		return f, true, false, nil
	}
	if x.req.endpoint == "count_tokens" {
		return FaultSpec{}, false, false, nil
	}
	name, frac := x.s.faults.random()
	if name == "" {
		return FaultSpec{}, false, false, nil
	}
	return FaultSpec{Name: name, At: -1, Times: 1, atFrac: frac}, true, true, nil
}

// countTokens answers /v1/messages/count_tokens.
func (x *exchange) countTokens() {
	spec, ok, _, e := x.pickFault()
	if e != nil {
		x.fail(e)
		return
	}
	if ok && !midstream(spec.Name) && x.s.faults.claim(spec.key(), spec.Times) {
		x.preStreamFault(spec)
		return
	}
	x.setRateHeaders()
	x.rec.InputTokens = x.req.input
	x.rec.Status, x.rec.End = http.StatusOK, EndOK
	writeJSON(x.w, http.StatusOK, map[string]int{"input_tokens": x.req.input})
}

// generate answers /v1/messages and /v1/chat/completions: faults before the
// response, admission, then the streamed or whole answer.
func (x *exchange) generate() {
	s := x.s
	spec, ok, random, e := x.pickFault()
	if e != nil {
		x.fail(e)
		return
	}
	if ok && !midstream(spec.Name) {
		if random || s.faults.claim(spec.key(), spec.Times) {
			x.preStreamFault(spec)
			return
		}
		ok = false
	}

	now := s.clock.Now()
	x.cacheRead, x.cacheCreate = x.cacheUsage(now)
	if rej := x.acct.admit(now, x.charges(), s.cfg.Acceleration); rej != nil {
		x.rateLimited(rej)
		return
	}
	s.noteActive(s.active.Add(1))
	defer func() {
		s.active.Add(-1)
		x.acct.done(s.clock.Now(), s.cfg.Acceleration)
	}()
	x.storeCache(now)

	x.tokens = s.gen.Reply(x.req.conv, x.req.prefill)
	x.rec.PlannedTokens = len(x.tokens)
	if len(x.tokens) > x.req.maxTokens {
		x.tokens, x.hitMax = x.tokens[:x.req.maxTokens], true
		x.rec.PlannedTokens = x.req.maxTokens
	}
	x.rec.InputTokens = x.req.input - x.cacheRead - x.cacheCreate
	x.rec.CacheReadTokens, x.rec.CacheCreationTokens = x.cacheRead, x.cacheCreate

	if ok && (random || s.faults.claim(spec.key(), spec.Times)) {
		x.fault, x.faultOn = spec, true
		n := len(x.tokens)
		switch {
		case random:
			x.faultAt = min(int(spec.atFrac*float64(n+1)), n)
		case spec.At < 0:
			x.faultAt = n / 2
		default:
			x.faultAt = min(spec.At, n)
		}
		logged := spec
		if name := spec.Name; name != FaultSlowFirstToken && name != FaultNoTerminal {
			logged.At = x.faultAt // record where it acted
		}
		x.rec.Fault = logged.String()
	}
	if x.req.stream {
		x.stream()
	} else {
		x.whole()
	}
}

// charges are what admission needs and takes, per the provider's model.
func (x *exchange) charges() []charge {
	in := float64(x.req.input - x.cacheRead)
	cs := []charge{{dim: ratelimit.Requests, need: 1, take: 1}}
	cfg := &x.s.cfg
	switch {
	case x.req.provider == ratelimit.OpenAI && !cfg.OpenAI.LiveOutput:
		all := in + float64(x.req.maxTokens)
		cs = append(cs, charge{dim: ratelimit.Tokens, need: all, take: all})
	case x.req.provider == ratelimit.OpenAI || cfg.Anthropic.CombinedTPM:
		cs = append(cs, charge{dim: ratelimit.Tokens, need: in + 1, take: in})
	default:
		cs = append(cs,
			charge{dim: ratelimit.InputTokens, need: in, take: in},
			charge{dim: ratelimit.OutputTokens, need: 1})
	}
	return cs
}

// cacheUsage returns the prompt-cache read and creation token counts: the
// longest live breakpoint prefix is read; the rest up to the last breakpoint
// is created.
func (x *exchange) cacheUsage(now time.Time) (read, create int) {
	bps := x.req.breakpoints
	if len(bps) == 0 {
		return 0, 0
	}
	for i := len(bps) - 1; i >= 0; i-- {
		if x.acct.cacheLookup(now, bps[i].hash) {
			read = bps[i].tokens
			break
		}
	}
	return read, bps[len(bps)-1].tokens - read
}

func (x *exchange) storeCache(now time.Time) {
	if len(x.req.breakpoints) == 0 {
		return
	}
	hs := make([][32]byte, len(x.req.breakpoints))
	for i, b := range x.req.breakpoints {
		hs[i] = b.hash
	}
	x.acct.cacheStore(now, x.s.cfg.CacheTTL, hs)
}

var dimUnits = map[ratelimit.Dimension]string{
	ratelimit.Requests:     "requests",
	ratelimit.InputTokens:  "input tokens",
	ratelimit.OutputTokens: "output tokens",
	ratelimit.Tokens:       "tokens",
}

// orgID is a stable organization id derived from the key fingerprint:
// a UUID for Anthropic, 24 characters for OpenAI ("org-" is added).
func (x *exchange) orgID() string {
	sum := sha256.Sum256([]byte(x.acct.key))
	h := hex.EncodeToString(sum[:16])
	if x.req.provider == ratelimit.OpenAI {
		return h[:24]
	}
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// limitMessage is the real rate-limit message naming dimension d.
func (x *exchange) limitMessage(d ratelimit.Dimension, limit int64, level float64, requested float64, wait time.Duration) *apiError {
	e := &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_error", end: EndRateLimited, retryAfter: wait}
	if x.req.provider == ratelimit.OpenAI {
		unit, typ := "tokens per min (TPM)", "tokens"
		if d == ratelimit.Requests {
			unit, typ = "requests per min (RPM)", "requests"
		}
		used := limit - remaining(level)
		e.typ, e.code = typ, "rate_limit_exceeded"
		if requested > float64(limit) {
			e.message = fmt.Sprintf("Request too large for %s in organization org-%s on %s: Limit %d, Requested %d. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.",
				x.req.model, x.orgID(), unit, limit, int64(requested))
			return e
		}
		e.message = fmt.Sprintf("Rate limit reached for %s in organization org-%s on %s: Limit %d, Used %d, Requested %d. Please try again in %s. Visit https://platform.openai.com/account/rate-limits to learn more.",
			x.req.model, x.orgID(), unit, limit, used, int64(requested), resetDuration(max(wait, time.Millisecond)))
		return e
	}
	e.message = fmt.Sprintf("This request would exceed the rate limit for your organization (%s) of %s %s per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://claude.com/contact-sales to discuss your options for a rate limit increase.",
		x.orgID(), formatThousands(limit), dimUnits[d])
	return e
}

// rateLimited sends the 429 for a rejected admission.
func (x *exchange) rateLimited(rej *rejection) {
	var e *apiError
	if rej.acceleration {
		e = &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_error", end: EndRateLimited, retryAfter: rej.wait,
			message: fmt.Sprintf("This request would exceed your organization's acceleration limit: traffic ramped up too quickly (%d concurrent requests allowed right now). Please ramp up traffic gradually. For details, refer to: https://docs.claude.com/en/api/rate-limits.", rej.limit)}
		if x.req.provider == ratelimit.OpenAI {
			e.typ, e.code = "requests", "rate_limit_exceeded"
		}
	} else {
		e = x.limitMessage(rej.dim, rej.limit, rej.level, rej.need, rej.wait)
	}
	x.rec.Dimension = rej.dim.String()
	if rej.acceleration {
		x.rec.Dimension = "acceleration"
	}
	x.rec.RetryAfter = retryAfterSeconds(rej.wait)
	x.fail(e)
}

// preStreamFault answers with a fault that acts before any response byte.
func (x *exchange) preStreamFault(f FaultSpec) {
	x.rec.Fault, x.rec.End = f.String(), FaultEnd(f.Name)
	oa := x.req.provider == ratelimit.OpenAI
	var e *apiError
	switch f.Name {
	case Fault429:
		var limit int64
		if b := x.acct.view(x.s.clock.Now())[ratelimit.Requests]; b.present {
			limit = b.limit
		}
		retry := f.Retry
		if retry <= 0 {
			retry = time.Second
		}
		e = x.limitMessage(ratelimit.Requests, limit, 0, 1, retry)
		x.rec.Dimension, x.rec.RetryAfter = ratelimit.Requests.String(), retryAfterSeconds(retry)
	case Fault529:
		if oa {
			e = &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "server_is_overloaded", message: "The server is overloaded or not ready yet."}
		} else {
			e = &apiError{status: 529, typ: "overloaded_error", message: "Overloaded"}
		}
	case Fault500:
		e = &apiError{status: 500, typ: "api_error", message: "Internal server error"}
		if oa {
			e.typ, e.message = "server_error", "The server had an error while processing your request. Sorry about that!"
		}
	case Fault502:
		e = &apiError{status: 502, typ: "api_error", message: "Bad gateway"}
		if oa {
			e.typ, e.message = "server_error", "Bad gateway."
		}
	case Fault503:
		e = &apiError{status: 503, typ: "api_error", message: "Service unavailable"}
		if oa {
			e.typ, e.message = "server_error", "Service Unavailable."
		}
	case FaultContextLength:
		limit := contextWindow(&x.s.cfg, x.req.provider)
		n := limit + x.req.input
		if oa {
			e = invalidParam(fmt.Sprintf("This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. Please reduce the length of the messages.", limit, n), "messages", "context_length_exceeded")
		} else {
			e = invalid(fmt.Sprintf("prompt is too long: %d tokens > %d maximum", n, limit))
		}
	case FaultContentFilter:
		if oa {
			e = invalidParam("The response was filtered due to the prompt triggering content management policy. Please modify your prompt and retry.", "prompt", "content_filter")
		} else {
			e = invalid("Output blocked by content filtering policy")
		}
	case FaultSpendCap:
		if oa {
			e = &apiError{status: 429, typ: "insufficient_quota", code: "insufficient_quota", message: "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."}
		} else {
			next := x.s.clock.Now().UTC().AddDate(0, 1, 0)
			e = &apiError{status: 429, typ: "rate_limit_error", code: "enforced_spend_limit_reached",
				message: fmt.Sprintf("You have reached your specified API usage limits. You will regain access on %04d-%02d-01 at 00:00 UTC.", next.Year(), next.Month())}
		}
	case FaultReset:
		dropConn(x.w, true)
		return
	case FaultNoResponse:
		if x.hold() {
			dropConn(x.w, false)
		}
		return
	}
	e.end = x.rec.End
	x.fail(e)
}

// hold blocks until the client goes away, the Server closes or MaxHold
// passes; it reports the last case (the caller then drops the connection).
func (x *exchange) hold() bool {
	var limit <-chan time.Time
	if x.s.cfg.MaxHold > 0 {
		t := time.NewTimer(x.s.cfg.MaxHold)
		defer t.Stop()
		limit = t.C
	}
	select {
	case <-x.r.Context().Done():
	case <-x.s.done:
	case <-limit:
		return true
	}
	return false
}

// dropConn closes the connection under the handler without writing
// anything more: abruptly (RST, via SO_LINGER 0) when reset is set, else
// with a plain close. Callers flush what must reach the client first. Where
// the connection cannot be hijacked (HTTP/2, test recorders) the handler
// aborts with http.ErrAbortHandler instead.
func dropConn(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
