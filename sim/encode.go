package sim

import (
	"encoding/json"

	"github.com/streamgate/streamgate/ratelimit"
)

// encoder returns the request's provider encoder.
func (x *exchange) encoder() encoder {
	id := x.s.newRequestID(x.req.provider)
	if x.req.provider == ratelimit.OpenAI {
		return &openAIEncoder{
			id:           "chatcmpl-" + id[4:33],
			model:        x.req.model,
			created:      x.s.clock.Now().Unix(),
			includeUsage: x.req.includeUsage,
			prompt:       x.req.input,
		}
	}
	return &anthropicEncoder{
		id:          "msg_01" + id[8:],
		model:       x.req.model,
		input:       x.req.input - x.cacheRead - x.cacheCreate,
		cacheCreate: x.cacheCreate,
		cacheRead:   x.cacheRead,
	}
}

// anthropicEncoder renders Messages API events: message_start,
// content_block_start, ping, content_block_delta (text_delta) per token,
// content_block_stop, message_delta (cumulative usage), message_stop.
type anthropicEncoder struct {
	id, model                     string
	input, cacheCreate, cacheRead int
}

func (e *anthropicEncoder) usage(b []byte, out int) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, e.input)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = appendInt(b, e.cacheCreate)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = appendInt(b, e.cacheRead)
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, out)
	return append(b, '}')
}

func (e *anthropicEncoder) prelude(b []byte) []byte {
	b = append(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	b = appendJSONString(b, e.id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendJSONString(b, e.model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = e.usage(b, 1)
	b = append(b, "}}\n\n"...)
	b = append(b, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"...)
	return e.ping(b)
}

func (e *anthropicEncoder) ping(b []byte) []byte {
	return append(b, "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)
}

func (e *anthropicEncoder) token(b []byte, text string) []byte {
	b = append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"...)
	b = appendJSONString(b, text)
	return append(b, "}}\n\n"...)
}

func (e *anthropicEncoder) stopReason(hitMax bool) string {
	if hitMax {
		return "max_tokens"
	}
	return "end_turn"
}

func (e *anthropicEncoder) finish(b []byte, hitMax bool, out int, terminal bool) []byte {
	b = append(b, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"...)
	b = append(b, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	b = append(b, e.stopReason(hitMax)...)
	b = append(b, `","stop_sequence":null},"usage":`...)
	b = e.usage(b, out)
	b = append(b, "}\n\n"...)
	if terminal {
		b = append(b, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
	}
	return b
}

func (e *anthropicEncoder) errorEvent(b []byte, ae *apiError) []byte {
	b = append(b, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"...)
	b = appendJSONString(b, ae.typ)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, ae.message)
	return append(b, "}}\n\n"...)
}

func (e *anthropicEncoder) malformed(b []byte) []byte {
	return append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n"...)
}

func (e *anthropicEncoder) whole(text string, hitMax bool, out int) []byte {
	b := append([]byte(nil), `{"id":`...)
	b = appendJSONString(b, e.id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendJSONString(b, e.model)
	b = append(b, `,"content":[{"type":"text","text":`...)
	b = appendJSONString(b, text)
	b = append(b, `}],"stop_reason":"`...)
	b = append(b, e.stopReason(hitMax)...)
	b = append(b, `","stop_sequence":null,"usage":`...)
	b = e.usage(b, out)
	return append(b, '}')
}

// openAIEncoder renders chat.completion.chunk events: a role chunk, one
// content chunk per token, a finish_reason chunk, the usage chunk (with
// include_usage) and data: [DONE].
type openAIEncoder struct {
	id, model    string
	created      int64
	includeUsage bool
	prompt       int
}

func (e *openAIEncoder) head(b []byte) []byte {
	b = append(b, `data: {"id":`...)
	b = appendJSONString(b, e.id)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = appendInt(b, int(e.created))
	b = append(b, `,"model":`...)
	b = appendJSONString(b, e.model)
	return append(b, `,"system_fingerprint":"fp_sim","choices":[`...)
}

func (e *openAIEncoder) tail(b []byte) []byte {
	if e.includeUsage {
		b = append(b, `],"usage":null}`...)
	} else {
		b = append(b, `]}`...)
	}
	return append(b, "\n\n"...)
}

func (e *openAIEncoder) prelude(b []byte) []byte {
	b = e.head(b)
	b = append(b, `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`...)
	return e.tail(b)
}

func (e *openAIEncoder) ping(b []byte) []byte { return b }

func (e *openAIEncoder) token(b []byte, text string) []byte {
	b = e.head(b)
	b = append(b, `{"index":0,"delta":{"content":`...)
	b = appendJSONString(b, text)
	b = append(b, `},"logprobs":null,"finish_reason":null}`...)
	return e.tail(b)
}

func (e *openAIEncoder) finishReason(hitMax bool) string {
	if hitMax {
		return "length"
	}
	return "stop"
}

func (e *openAIEncoder) usage(b []byte, out int) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, e.prompt)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, out)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, e.prompt+out)
	return append(b, `,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}`...)
}

func (e *openAIEncoder) finish(b []byte, hitMax bool, out int, terminal bool) []byte {
	b = e.head(b)
	b = append(b, `{"index":0,"delta":{},"logprobs":null,"finish_reason":"`...)
	b = append(b, e.finishReason(hitMax)...)
	b = append(b, `"}`...)
	b = e.tail(b)
	if e.includeUsage {
		b = e.head(b)
		b = append(b, `],"usage":`...)
		b = e.usage(b, out)
		b = append(b, "}\n\n"...)
	}
	if terminal {
		b = append(b, "data: [DONE]\n\n"...)
	}
	return b
}

func (e *openAIEncoder) errorEvent(b []byte, ae *apiError) []byte {
	b = append(b, "data: "...)
	b = append(b, openAIErrorBody(ae)...)
	return append(b, "\n\n"...)
}

func (e *openAIEncoder) malformed(b []byte) []byte {
	b = append(b, `data: {"id":`...)
	b = appendJSONString(b, e.id)
	return append(b, ",\"object\":\"chat.completion.chu\n\n"...)
}

func (e *openAIEncoder) whole(text string, hitMax bool, out int) []byte {
	type message struct {
		Role        string `json:"role"`
		Content     string `json:"content"`
		Refusal     any    `json:"refusal"`
		Annotations []any  `json:"annotations"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		Logprobs     any     `json:"logprobs"`
		FinishReason string  `json:"finish_reason"`
	}
	body := struct {
		ID                string          `json:"id"`
		Object            string          `json:"object"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		Choices           []choice        `json:"choices"`
		Usage             json.RawMessage `json:"usage"`
		SystemFingerprint string          `json:"system_fingerprint"`
	}{
		ID: e.id, Object: "chat.completion", Created: e.created, Model: e.model,
		Choices: []choice{{Message: message{Role: "assistant", Content: text, Annotations: []any{}},
			FinishReason: e.finishReason(hitMax)}},
		Usage:             e.usage(nil, out),
		SystemFingerprint: "fp_sim",
	}
	var buf []byte
	buf, _ = json.Marshal(body)
	return buf
}
