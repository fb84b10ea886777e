package sim

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/streamgate/streamgate/ratelimit"
)

// openAIBody is the subset of the Chat Completions request body the
// simulator reads; unknown fields are accepted and ignored.
type openAIBody struct {
	Model               json.RawMessage `json:"model"`
	Messages            json.RawMessage `json:"messages"`
	MaxTokens           json.RawMessage `json:"max_tokens"`
	MaxCompletionTokens json.RawMessage `json:"max_completion_tokens"`
	Stream              json.RawMessage `json:"stream"`
	StreamOptions       json.RawMessage `json:"stream_options"`
}

type openAIMessage struct {
	Role    *string         `json:"role"`
	Content json.RawMessage `json:"content"`
}

type openAIPart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

const openAIBadJSON = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"

// parseOpenAI validates a /v1/chat/completions body the way the real API
// does. System and developer messages join (with "\n") into the
// conversation's system prompt; tool and function messages count as user
// turns. A final assistant message is not a prefill on this endpoint (the
// real API has none): it is simply part of the conversation.
func parseOpenAI(body []byte, cfg *Config) (*request, *apiError) {
	var b openAIBody
	if strictObject(body, &b) != nil {
		return nil, invalid(openAIBadJSON)
	}
	r := &request{provider: ratelimit.OpenAI, maxTokens: cfg.OpenAI.DefaultMaxTokens}
	var model string
	if isAbsent(b.Model) || json.Unmarshal(b.Model, &model) != nil || model == "" {
		return nil, invalid("you must provide a model parameter")
	}
	r.model, r.faultSpec = splitModelFault(model)
	if isAbsent(b.Messages) {
		return nil, invalidParam("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
	}
	var msgs []openAIMessage
	if json.Unmarshal(b.Messages, &msgs) != nil {
		return nil, invalidParam("Invalid type for 'messages': expected an array of objects.", "messages", "invalid_type")
	}
	if len(msgs) == 0 {
		return nil, invalidParam("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "messages", "empty_array")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"max_tokens", b.MaxTokens}, {"max_completion_tokens", b.MaxCompletionTokens}} {
		if isAbsent(f.raw) {
			continue
		}
		var v int
		if json.Unmarshal(f.raw, &v) != nil {
			return nil, invalidParam(fmt.Sprintf("Invalid type for '%s': expected an integer, but got a decimal number instead.", f.name), f.name, "invalid_type")
		}
		if v < 1 {
			return nil, invalidParam(fmt.Sprintf("Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", f.name, v), f.name, "integer_below_min_value")
		}
		r.maxTokens = v
	}
	if !isAbsent(b.Stream) && json.Unmarshal(b.Stream, &r.stream) != nil {
		return nil, invalidParam("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type")
	}
	if !isAbsent(b.StreamOptions) {
		if !r.stream {
			return nil, invalidParam("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", "")
		}
		var so struct {
			IncludeUsage bool `json:"include_usage"`
		}
		if json.Unmarshal(b.StreamOptions, &so) != nil {
			return nil, invalidParam("Invalid type for 'stream_options': expected an object.", "stream_options", "invalid_type")
		}
		r.includeUsage = so.IncludeUsage
	}

	var system []string
	images := 0
	for i, m := range msgs {
		if m.Role == nil {
			return nil, invalidParam(fmt.Sprintf("Missing required parameter: 'messages[%d].role'.", i), fmt.Sprintf("messages[%d].role", i), "missing_required_parameter")
		}
		role := *m.Role
		switch role {
		case "system", "developer", "user", "assistant", "tool", "function":
		default:
			return nil, invalidParam(fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", role), fmt.Sprintf("messages[%d].role", i), "invalid_value")
		}
		text, n, err := openAIContent(m.Content, i, role)
		if err != nil {
			return nil, err
		}
		images += n
		switch role {
		case "system", "developer":
			system = append(system, text)
		case "assistant":
			r.conv.Messages = append(r.conv.Messages, Message{Role: "assistant", Text: text})
		default:
			r.conv.Messages = append(r.conv.Messages, Message{Role: "user", Text: text})
		}
	}
	r.conv.System = strings.Join(system, "\n")
	r.input = InputTokens(r.conv) + images*imageTokens
	if limit := contextWindow(cfg, ratelimit.OpenAI); r.input > limit {
		return nil, invalidParam(fmt.Sprintf("This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. Please reduce the length of the messages.", limit, r.input), "messages", "context_length_exceeded")
	}
	return r, nil
}

// openAIContent reads a message's content: a string, null (assistant
// messages with tool calls) or an array of parts. It returns the text and the
// number of image parts.
func openAIContent(raw json.RawMessage, idx int, role string) (string, int, *apiError) {
	if isAbsent(raw) {
		if role == "assistant" {
			return "", 0, nil
		}
		return "", 0, invalidParam(fmt.Sprintf("Missing required parameter: 'messages[%d].content'.", idx), fmt.Sprintf("messages[%d].content", idx), "missing_required_parameter")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, 0, nil
	}
	var parts []openAIPart
	if json.Unmarshal(raw, &parts) != nil {
		return "", 0, invalidParam(fmt.Sprintf("Invalid type for 'messages[%d].content': expected one of a string or array of objects, but got an object instead.", idx), fmt.Sprintf("messages[%d].content", idx), "invalid_type")
	}
	var sb strings.Builder
	images := 0
	for _, p := range parts {
		switch {
		case p.Type == "text" && p.Text != nil:
			sb.WriteString(*p.Text)
		default:
			images++
		}
	}
	return sb.String(), images, nil
}

// matchesAny reports whether name matches any of the path.Match patterns.
func matchesAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
