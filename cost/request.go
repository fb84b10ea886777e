// Package cost estimates what an LLM API request will cost in each
// rate-limited dimension before it is sent: input tokens from a local
// estimate calibrated against the usage the provider reports, and an output
// reservation chosen by policy (the request's max_tokens, or a learned high
// quantile of recent output lengths).
//
// The estimates are only as good as a character count can be: Claude's
// tokenizer is not published. Calibration corrects the systematic error per
// model; the live output charge and the final settlement correct the rest.
package cost

import (
	"encoding/json"
	"errors"
	"fmt"
)

// API identifies the request format.
type API uint8

const (
	// Messages is Anthropic's POST /v1/messages.
	Messages API = iota + 1
	// ChatCompletions is OpenAI's POST /v1/chat/completions.
	ChatCompletions
)

// Request is what the scheduler needs to know about one request body.
type Request struct {
	API    API
	Model  string
	Stream bool
	// MaxTokens is max_tokens (or OpenAI's max_completion_tokens); 0 when
	// absent, which OpenAI allows and Anthropic rejects.
	MaxTokens int64
	// IncludeUsage is OpenAI's stream_options.include_usage.
	IncludeUsage bool
	// InputChars counts the characters of text the model reads: system,
	// message text, tool definitions and tool inputs/results.
	InputChars int64
	// Messages is the number of messages; Images the number of image or
	// document blocks (costed separately from text).
	Messages int
	Images   int
	// LastRole is the role of the final message ("assistant" means a
	// prefill).
	LastRole string
}

// ErrBadRequestBody is returned when a body is not a JSON object of the
// expected shape. The upstream would reject it too; callers typically send
// it anyway and let the provider's error reach the client.
var ErrBadRequestBody = errors.New("cost: request body is not a valid request")

type rawRequest struct {
	Model               string            `json:"model"`
	Stream              bool              `json:"stream"`
	MaxTokens           *int64            `json:"max_tokens"`
	MaxCompletionTokens *int64            `json:"max_completion_tokens"`
	System              json.RawMessage   `json:"system"`
	Messages            []rawMessage      `json:"messages"`
	Tools               []json.RawMessage `json:"tools"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type rawMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Parse reads the fields of a Messages or Chat Completions body that matter
// for scheduling. It is lenient about fields it does not need.
func Parse(api API, body []byte) (Request, error) {
	var raw rawRequest
	if err := json.Unmarshal(body, &raw); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadRequestBody, err)
	}
	r := Request{API: api, Model: raw.Model, Stream: raw.Stream, Messages: len(raw.Messages)}
	switch {
	case raw.MaxTokens != nil && *raw.MaxTokens > 0:
		r.MaxTokens = *raw.MaxTokens
	case raw.MaxCompletionTokens != nil && *raw.MaxCompletionTokens > 0:
		r.MaxTokens = *raw.MaxCompletionTokens
	}
	if raw.StreamOptions != nil {
		r.IncludeUsage = raw.StreamOptions.IncludeUsage
	}
	r.InputChars += contentChars(raw.System, &r.Images)
	for _, m := range raw.Messages {
		r.InputChars += contentChars(m.Content, &r.Images)
		r.LastRole = m.Role
	}
	for _, t := range raw.Tools {
		r.InputChars += int64(len(t))
	}
	return r, nil
}

// contentChars counts text characters in a content value: a string, or an
// array of blocks (text, tool_use input, tool_result content, OpenAI parts).
// Image and document blocks are counted in images instead.
func contentChars(raw json.RawMessage, images *int) int64 {
	if len(raw) == 0 || string(raw) == "null" {
		return 0
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return int64(len([]rune(s)))
	}
	var blocks []struct {
		Type    string          `json:"type"`
		Text    string          `json:"text"`
		Input   json.RawMessage `json:"input"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &blocks) != nil {
		return int64(len(raw))
	}
	var n int64
	for _, b := range blocks {
		switch b.Type {
		case "image", "document", "image_url", "input_audio", "file":
			*images++
		default:
			n += int64(len([]rune(b.Text))) + int64(len(b.Input))
			if len(b.Content) > 0 {
				n += contentChars(b.Content, images)
			}
		}
	}
	return n
}
