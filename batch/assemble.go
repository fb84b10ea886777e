package batch

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/streamgate/streamgate/sse"
)

// assembler turns the events of one stream into the response body a
// non-streaming call would have returned, and judges completeness.
type assembler interface {
	// observe consumes one event.
	observe(ev sse.Event)
	// end is called at a clean end of the body; interrupt at any other.
	end() sse.Verdict
	interrupt(reason string) sse.Verdict
	// message returns the assembled body; only meaningful once complete.
	message() (json.RawMessage, error)
	// usage returns the input and output tokens reported so far (-1 when
	// unknown) and the output tokens seen streaming (deltas).
	usage() (in, out int64)
	// streamed is the number of content deltas received: a live lower
	// bound of the output tokens produced.
	streamed() int64
}

func newAssembler(f Format) assembler {
	if f == OpenAI {
		return &chatAssembler{}
	}
	return &messageAssembler{}
}

// messageAssembler accumulates an Anthropic Messages stream the way the
// official SDKs' Message.Accumulate does, keeping every field the stream
// carried: the message_start message, each content_block_start block with
// its deltas applied, and the message_delta fields and usage.
type messageAssembler struct {
	model  sse.MessageStream
	msg    map[string]json.RawMessage
	usageM map[string]json.RawMessage
	blocks []*blockAcc
	deltas int64
}

type blockAcc struct {
	fields    map[string]json.RawMessage
	typ       string
	text      strings.Builder
	thinking  strings.Builder
	signature string
	sigSet    bool
	json      strings.Builder
	citations []json.RawMessage
}

type anthropicEvent struct {
	Message      json.RawMessage `json:"message"`
	Index        *int            `json:"index"`
	ContentBlock json.RawMessage `json:"content_block"`
	Delta        json.RawMessage `json:"delta"`
	Usage        json.RawMessage `json:"usage"`
}

type anthropicDelta struct {
	Type        string          `json:"type"`
	Text        string          `json:"text"`
	PartialJSON string          `json:"partial_json"`
	Thinking    string          `json:"thinking"`
	Signature   string          `json:"signature"`
	Citation    json.RawMessage `json:"citation"`
}

func (a *messageAssembler) observe(ev sse.Event) {
	a.model.Observe(ev)
	if a.model.Verdict().Status.Final() {
		return
	}
	var d anthropicEvent
	switch ev.Type {
	case sse.EventMessageStart, sse.EventContentBlockStart, sse.EventContentBlockDelta, sse.EventMessageDelta:
		if json.Unmarshal(ev.Data, &d) != nil {
			return
		}
	default:
		return
	}
	switch ev.Type {
	case sse.EventMessageStart:
		a.msg = objectFields(d.Message)
		a.usageM = objectFields(a.msg["usage"])
	case sse.EventContentBlockStart:
		if d.Index == nil || *d.Index != len(a.blocks) {
			return
		}
		b := &blockAcc{fields: objectFields(d.ContentBlock)}
		b.typ, _ = jsonString(b.fields["type"])
		if s, ok := jsonString(b.fields["text"]); ok {
			b.text.WriteString(s)
		}
		if s, ok := jsonString(b.fields["thinking"]); ok {
			b.thinking.WriteString(s)
		}
		a.blocks = append(a.blocks, b)
	case sse.EventContentBlockDelta:
		if d.Index == nil || *d.Index < 0 || *d.Index >= len(a.blocks) {
			return
		}
		b := a.blocks[*d.Index]
		var delta anthropicDelta
		if json.Unmarshal(d.Delta, &delta) != nil {
			return
		}
		a.deltas++
		switch delta.Type {
		case "text_delta":
			b.text.WriteString(delta.Text)
		case "input_json_delta":
			b.json.WriteString(delta.PartialJSON)
		case "thinking_delta":
			b.thinking.WriteString(delta.Thinking)
		case "signature_delta":
			b.signature += delta.Signature
			b.sigSet = true
		case "citations_delta":
			if len(delta.Citation) > 0 {
				b.citations = append(b.citations, delta.Citation)
			}
		}
	case sse.EventMessageDelta:
		if a.msg == nil {
			return
		}
		for k, v := range objectFields(d.Delta) {
			a.msg[k] = v
		}
		for k, v := range objectFields(d.Usage) {
			if string(v) != "null" {
				if a.usageM == nil {
					a.usageM = map[string]json.RawMessage{}
				}
				a.usageM[k] = v
			}
		}
	}
}

func (a *messageAssembler) end() sse.Verdict               { return a.model.End() }
func (a *messageAssembler) interrupt(r string) sse.Verdict { return a.model.Interrupt(r) }
func (a *messageAssembler) streamed() int64                { return a.deltas }
func (a *messageAssembler) usage() (in, out int64)         { return anthropicUsage(a.model.Usage()) }
func anthropicUsage(u sse.Usage) (in, out int64) {
	in = u.InputTokens
	if in >= 0 && u.CacheCreationInputTokens > 0 {
		in += u.CacheCreationInputTokens
	}
	return in, u.OutputTokens
}

func (a *messageAssembler) message() (json.RawMessage, error) {
	msg := make(map[string]json.RawMessage, len(a.msg)+2)
	for k, v := range a.msg {
		msg[k] = v
	}
	content := make([]json.RawMessage, 0, len(a.blocks))
	for _, b := range a.blocks {
		raw, err := b.build()
		if err != nil {
			return nil, err
		}
		content = append(content, raw)
	}
	c, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	msg["content"] = c
	if a.usageM != nil {
		u, err := json.Marshal(a.usageM)
		if err != nil {
			return nil, err
		}
		msg["usage"] = u
	}
	return json.Marshal(msg)
}

func (b *blockAcc) build() (json.RawMessage, error) {
	f := make(map[string]json.RawMessage, len(b.fields)+1)
	for k, v := range b.fields {
		f[k] = v
	}
	set := func(k string, v any) error {
		raw, err := json.Marshal(v)
		f[k] = raw
		return err
	}
	var err error
	switch b.typ {
	case "text":
		err = set("text", b.text.String())
	case "thinking":
		err = set("thinking", b.thinking.String())
	}
	if err != nil {
		return nil, err
	}
	if b.sigSet {
		if err := set("signature", b.signature); err != nil {
			return nil, err
		}
	}
	if s := b.json.String(); s != "" {
		// tool_use (and server tool) input arrives as JSON fragments.
		if json.Valid([]byte(s)) {
			f["input"] = json.RawMessage(s)
		} else if err := set("input", s); err != nil {
			return nil, err
		}
	}
	if len(b.citations) > 0 {
		var prior []json.RawMessage
		_ = json.Unmarshal(f["citations"], &prior)
		if err := set("citations", append(prior, b.citations...)); err != nil {
			return nil, err
		}
	}
	return json.Marshal(f)
}

// chatAssembler accumulates an OpenAI chat completions stream into a
// chat.completion object.
type chatAssembler struct {
	model  sse.ChatStream
	first  map[string]json.RawMessage // id, created, model, ... of the first chunk
	usageR json.RawMessage
	deltas int64
}

func (a *chatAssembler) observe(ev sse.Event) {
	a.model.Observe(ev)
	if a.model.Verdict().Status.Final() && a.model.Verdict().Status != sse.Complete {
		return
	}
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 || data[0] != '{' {
		return
	}
	var c struct {
		Choices []struct {
			Delta json.RawMessage `json:"delta"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
	}
	if json.Unmarshal(data, &c) != nil {
		return
	}
	if a.first == nil {
		a.first = objectFields(data)
	}
	for _, ch := range c.Choices {
		if len(ch.Delta) > 2 {
			a.deltas++
		}
	}
	if len(c.Usage) > 0 && string(c.Usage) != "null" {
		a.usageR = c.Usage
	}
}

func (a *chatAssembler) end() sse.Verdict               { return a.model.End() }
func (a *chatAssembler) interrupt(r string) sse.Verdict { return a.model.Interrupt(r) }
func (a *chatAssembler) streamed() int64                { return a.deltas }
func (a *chatAssembler) usage() (in, out int64) {
	u := a.model.Usage()
	return u.PromptTokens, u.CompletionTokens
}

type chatMessage struct {
	Role      string          `json:"role"`
	Content   *string         `json:"content"`
	Refusal   *string         `json:"refusal"`
	ToolCalls []chatToolCall  `json:"tool_calls,omitempty"`
	Reasoning json.RawMessage `json:"reasoning_content,omitempty"`
}

type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatChoice struct {
	Index        int64           `json:"index"`
	Message      chatMessage     `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

func (a *chatAssembler) message() (json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for _, k := range []string{"id", "created", "model", "system_fingerprint", "service_tier"} {
		if v, ok := a.first[k]; ok {
			out[k] = v
		}
	}
	out["object"] = json.RawMessage(`"chat.completion"`)
	var choices []chatChoice
	for _, c := range a.model.Choices() {
		role := c.Role
		if role == "" {
			role = "assistant"
		}
		m := chatMessage{Role: role}
		if c.Content != "" || len(c.ToolCalls) == 0 {
			s := c.Content
			m.Content = &s
		}
		if c.Refusal != "" {
			s := c.Refusal
			m.Refusal = &s
		}
		if c.Reasoning != "" {
			m.Reasoning, _ = json.Marshal(c.Reasoning)
		}
		for _, t := range c.ToolCalls {
			tc := chatToolCall{ID: t.ID, Type: t.Type}
			if tc.Type == "" {
				tc.Type = "function"
			}
			tc.Function.Name, tc.Function.Arguments = t.Name, t.Arguments
			m.ToolCalls = append(m.ToolCalls, tc)
		}
		choices = append(choices, chatChoice{Index: c.Index, Message: m, Logprobs: json.RawMessage("null"), FinishReason: c.FinishReason})
	}
	if choices == nil {
		choices = []chatChoice{}
	}
	cb, err := json.Marshal(choices)
	if err != nil {
		return nil, err
	}
	out["choices"] = cb
	if a.usageR != nil {
		out["usage"] = a.usageR
	}
	return json.Marshal(out)
}

// objectFields decodes a JSON object into its fields; anything else gives
// an empty map.
func objectFields(raw []byte) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if isObject(raw) {
		_ = json.Unmarshal(raw, &m)
	}
	return m
}
