package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/streamgate/streamgate/ratelimit"
)

// request is a validated request of either provider, reduced to what the
// simulator acts on.
type request struct {
	provider ratelimit.Provider
	endpoint string
	// model is the requested model with any "+fault=..." suffix removed;
	// faultSpec is that suffix's spec.
	model     string
	faultSpec string
	maxTokens int
	stream    bool
	// includeUsage is OpenAI's stream_options.include_usage.
	includeUsage bool
	// conv is every message, including a final assistant prefill.
	conv Conversation
	// prefill is set when the final message is an assistant message whose
	// text the answer continues (Anthropic only).
	prefill bool
	// input is the prompt's total token count (before caching).
	input int
	// breakpoints are the prompt-cache breakpoints, in prompt order.
	breakpoints []breakpoint
}

// breakpoint is a cache_control mark: the prompt's token count up to and
// including the marked block, and a digest of that prefix.
type breakpoint struct {
	tokens int
	hash   [32]byte
}

// anthropicBody is the subset of the Messages API request body the
// simulator reads; unknown fields are accepted and ignored.
type anthropicBody struct {
	Model     json.RawMessage `json:"model"`
	MaxTokens json.RawMessage `json:"max_tokens"`
	Messages  json.RawMessage `json:"messages"`
	System    json.RawMessage `json:"system"`
	Tools     json.RawMessage `json:"tools"`
	Stream    json.RawMessage `json:"stream"`
}

type anthropicMessage struct {
	Role    *string         `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentBlock struct {
	Type         string          `json:"type"`
	Text         *string         `json:"text"`
	CacheControl json.RawMessage `json:"cache_control"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	Content      json.RawMessage `json:"content"`
	Thinking     string          `json:"thinking"`
}

const imageTokens = 1000

// promptHasher accumulates the prompt's segments for token counting and
// prompt-cache breakpoints.
type promptHasher struct {
	h      [32]byte
	tokens int
	bps    []breakpoint
}

func newPromptHasher(model string) *promptHasher {
	return &promptHasher{h: sha256.Sum256([]byte(model))}
}

func (p *promptHasher) add(raw []byte, tokens int, mark bool) {
	buf := make([]byte, 0, len(p.h)+len(raw))
	buf = append(append(buf, p.h[:]...), raw...)
	p.h = sha256.Sum256(buf)
	p.tokens += tokens
	if mark {
		p.bps = append(p.bps, breakpoint{tokens: p.tokens, hash: p.h})
	}
}

// parseAnthropic validates a /v1/messages (or, with countOnly,
// /v1/messages/count_tokens) body the way the real API does and returns the
// real error for the first problem found.
func parseAnthropic(body []byte, countOnly bool, cfg *Config) (*request, *apiError) {
	var b anthropicBody
	if err := strictObject(body, &b); err != nil {
		return nil, invalid("The request body is not valid JSON: " + err.Error())
	}
	r := &request{provider: ratelimit.Anthropic}
	if isAbsent(b.Model) {
		return nil, invalid("model: Field required")
	}
	var model string
	if json.Unmarshal(b.Model, &model) != nil {
		return nil, invalid("model: Input should be a valid string")
	}
	r.model, r.faultSpec = splitModelFault(model)
	if !countOnly {
		if isAbsent(b.MaxTokens) {
			return nil, invalid("max_tokens: Field required")
		}
		var mt int
		if json.Unmarshal(b.MaxTokens, &mt) != nil {
			return nil, invalid("max_tokens: Input should be a valid integer")
		}
		if mt < 1 {
			return nil, invalid("max_tokens: Input should be greater than or equal to 1")
		}
		r.maxTokens = mt
	}
	if !isAbsent(b.Stream) && json.Unmarshal(b.Stream, &r.stream) != nil {
		return nil, invalid("stream: Input should be a valid boolean")
	}
	if isAbsent(b.Messages) {
		return nil, invalid("messages: Field required")
	}
	var msgs []anthropicMessage
	if json.Unmarshal(b.Messages, &msgs) != nil {
		return nil, invalid("messages: Input should be a valid list")
	}
	if len(msgs) == 0 {
		return nil, invalid("messages: at least one message is required")
	}

	ph := newPromptHasher(r.model)
	if !isAbsent(b.Tools) {
		var tools []json.RawMessage
		if json.Unmarshal(b.Tools, &tools) != nil {
			return nil, invalid("tools: Input should be a valid list")
		}
		for _, t := range tools {
			var probe struct {
				CacheControl json.RawMessage `json:"cache_control"`
			}
			_ = json.Unmarshal(t, &probe)
			ph.add(t, CountTokens(string(t)), !isAbsent(probe.CacheControl))
		}
	}
	if !isAbsent(b.System) {
		sys, err := parseSystem(b.System, ph)
		if err != nil {
			return nil, err
		}
		r.conv.System = sys
	}
	for i, m := range msgs {
		final := i == len(msgs)-1
		if m.Role == nil {
			return nil, invalid(fmt.Sprintf("messages.%d.role: Field required", i))
		}
		role := *m.Role
		switch role {
		case "user", "assistant":
		case "system":
			return nil, invalid(fmt.Sprintf("messages.%d.role: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.", i))
		default:
			return nil, invalid(fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i))
		}
		if isAbsent(m.Content) {
			return nil, invalid(fmt.Sprintf("messages.%d.content: Field required", i))
		}
		text, empty, err := parseContent(m.Content, i, ph)
		if err != nil {
			return nil, err
		}
		if empty && !(final && role == "assistant") {
			return nil, invalid(fmt.Sprintf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i))
		}
		r.conv.Messages = append(r.conv.Messages, Message{Role: role, Text: text})
	}
	if last := r.conv.Messages[len(r.conv.Messages)-1]; last.Role == "assistant" {
		if lr, size := utf8.DecodeLastRuneInString(last.Text); size > 0 && unicode.IsSpace(lr) {
			return nil, invalid("messages: final assistant content cannot end with trailing whitespace")
		}
		if matchesAny(cfg.NoPrefillModels, r.model) {
			return nil, invalid("This model does not support assistant message prefill. The conversation must end with a user message.")
		}
		r.prefill = true
	}
	r.input = ph.tokens
	r.breakpoints = ph.bps
	if limit := contextWindow(cfg, ratelimit.Anthropic); r.input > limit {
		return nil, invalid(fmt.Sprintf("prompt is too long: %d tokens > %d maximum", r.input, limit))
	}
	return r, nil
}

// parseSystem reads a system prompt given as a string or as text blocks.
func parseSystem(raw json.RawMessage, ph *promptHasher) (string, *apiError) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		ph.add(raw, CountTokens(s), false)
		return s, nil
	}
	var blocks []contentBlock
	if json.Unmarshal(raw, &blocks) != nil {
		return "", invalid("system: Input should be a valid string")
	}
	var sb strings.Builder
	var raws []json.RawMessage
	_ = json.Unmarshal(raw, &raws)
	for i, bl := range blocks {
		if bl.Type != "text" || bl.Text == nil {
			return "", invalid(fmt.Sprintf("system.%d.type: Input should be 'text'", i))
		}
		if *bl.Text == "" {
			return "", invalid("system: text content blocks must be non-empty")
		}
		sb.WriteString(*bl.Text)
		ph.add(raws[i], CountTokens(*bl.Text), !isAbsent(bl.CacheControl))
	}
	return sb.String(), nil
}

// parseContent reads a message's content (a string or content blocks),
// feeds its segments to ph (the message's role framing counts with its
// first block) and returns the concatenated text and whether it was empty.
func parseContent(raw json.RawMessage, idx int, ph *promptHasher) (string, bool, *apiError) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		ph.add(raw, messageOverhead+CountTokens(s), false)
		return s, s == "", nil
	}
	var blocks []contentBlock
	var raws []json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil || json.Unmarshal(raw, &raws) != nil {
		return "", false, invalid(fmt.Sprintf("messages.%d.content: Input should be a valid list", idx))
	}
	if len(blocks) == 0 {
		ph.add(raw, messageOverhead, false)
		return "", true, nil
	}
	var sb strings.Builder
	for j, bl := range blocks {
		tokens := 0
		switch bl.Type {
		case "text":
			if bl.Text == nil {
				return "", false, invalid(fmt.Sprintf("messages.%d.content.%d.text: Field required", idx, j))
			}
			if *bl.Text == "" {
				return "", false, invalid("messages: text content blocks must be non-empty")
			}
			sb.WriteString(*bl.Text)
			tokens = CountTokens(*bl.Text)
		case "image", "document":
			tokens = imageTokens
		case "tool_use":
			tokens = CountTokens(bl.Name) + CountTokens(string(bl.Input))
		case "tool_result":
			tokens = toolResultTokens(bl.Content)
		case "thinking":
			tokens = CountTokens(bl.Thinking)
		case "":
			return "", false, invalid(fmt.Sprintf("messages.%d.content.%d.type: Field required", idx, j))
		default:
			tokens = CountTokens(string(raws[j]))
		}
		if j == 0 {
			tokens += messageOverhead
		}
		ph.add(raws[j], tokens, !isAbsent(bl.CacheControl))
	}
	return sb.String(), false, nil
}

func toolResultTokens(raw json.RawMessage) int {
	if isAbsent(raw) {
		return 0
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return CountTokens(s)
	}
	var blocks []contentBlock
	if json.Unmarshal(raw, &blocks) != nil {
		return CountTokens(string(raw))
	}
	n := 0
	for _, b := range blocks {
		if b.Text != nil {
			n += CountTokens(*b.Text)
		} else {
			n += imageTokens
		}
	}
	return n
}

// FaultModelSeparator separates a model name from a fault spec in the
// model field: "claude-sonnet-4-5+fault=529-midstream;at=10".
const FaultModelSeparator = "+fault="

// splitModelFault strips a "+fault=SPEC" suffix from a model name.
func splitModelFault(model string) (string, string) {
	if i := strings.Index(model, FaultModelSeparator); i >= 0 {
		return model[:i], model[i+len(FaultModelSeparator):]
	}
	return model, ""
}

// strictObject decodes a JSON object into v, rejecting trailing data.
func strictObject(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return fmt.Errorf("empty body")
	}
	if body[0] != '{' {
		return fmt.Errorf("expected an object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("extra data after the object")
	}
	return nil
}

// isAbsent reports a missing or null JSON value.
func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func contextWindow(cfg *Config, p ratelimit.Provider) int {
	if cfg.ContextWindow > 0 {
		return cfg.ContextWindow
	}
	if p == ratelimit.OpenAI {
		return defaultOpenAICtx
	}
	return defaultAnthropicCtx
}
