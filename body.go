package streamgate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

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
		return c.transportFailure(res, ticket, err)
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
