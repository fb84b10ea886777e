package batch

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/streamgate/streamgate/sse"
)

// stream renders events ("type", data) as an SSE body.
func stream(events ...[2]string) string {
	var b []byte
	for _, e := range events {
		b = sse.AppendEvent(b, e[0], []byte(e[1]))
	}
	return string(b)
}

// richMessageStream is an Anthropic stream with every kind of block and
// delta: thinking with a split signature, text with a citation, tool input
// in fragments, a server tool, a ping and an unknown event.
var richMessageStream = stream(
	[2]string{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":3,"cache_read_input_tokens":0,"output_tokens":1}}}`},
	[2]string{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me "}}`},
	[2]string{"ping", `{"type":"ping"}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"think."}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"Zz=="}}`},
	[2]string{"content_block_stop", `{"type":"content_block_stop","index":0}`},
	[2]string{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Héllo, 東京 🚀"}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x","document_index":0,"document_title":"d","start_char_index":0,"end_char_index":1}}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"\n- done"}}`},
	[2]string{"content_block_stop", `{"type":"content_block_stop","index":1}`},
	[2]string{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}`},
	[2]string{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"is\", \"days\": 3}"}}`},
	[2]string{"content_block_stop", `{"type":"content_block_stop","index":2}`},
	[2]string{"future_event", `{"type":"future_event","x":1}`},
	[2]string{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":87}}`},
	[2]string{"message_stop", `{"type":"message_stop"}`},
)

func assemble(t *testing.T, f Format, body string) (assembler, sse.Verdict) {
	t.Helper()
	a := newAssembler(f)
	rd := sse.NewReader(strings.NewReader(body))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return a, a.end()
		}
		if err != nil {
			return a, a.interrupt(err.Error())
		}
		a.observe(ev)
	}
}

// The assembled message equals what the official SDK's accumulator makes
// of the same stream.
func TestMessageAssemblerMatchesTheSDK(t *testing.T) {
	a, v := assemble(t, Anthropic, richMessageStream)
	if v.Status != sse.Complete {
		t.Fatalf("verdict %+v", v)
	}
	got, err := a.message()
	if err != nil {
		t.Fatal(err)
	}
	var acc anthropic.Message
	rd := sse.NewReader(strings.NewReader(richMessageStream))
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		var e anthropic.MessageStreamEventUnion
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatal(err)
		}
		if err := acc.Accumulate(e); err != nil {
			t.Fatal(err)
		}
	}
	var mine anthropic.Message
	if err := json.Unmarshal(got, &mine); err != nil {
		t.Fatal(err)
	}
	if len(mine.Content) != 3 || len(acc.Content) != 3 {
		t.Fatalf("blocks: mine %d, SDK %d", len(mine.Content), len(acc.Content))
	}
	for i := range acc.Content {
		m, s := mine.Content[i], acc.Content[i]
		if m.Type != s.Type || m.Text != s.Text || m.Thinking != s.Thinking || m.Signature != s.Signature ||
			m.ID != s.ID || m.Name != s.Name || !jsonEqual(m.Input, s.Input) || len(m.Citations) != len(s.Citations) {
			t.Errorf("block %d:\n mine %+v\n  SDK %+v", i, m, s)
		}
	}
	if mine.StopReason != acc.StopReason || mine.Usage.OutputTokens != 87 || mine.Usage.InputTokens != 25 ||
		mine.Usage.CacheCreationInputTokens != 3 || mine.ID != "msg_1" || mine.Model != "claude-sonnet-4-5" {
		t.Errorf("message fields: mine %+v", mine)
	}
	if in, out := a.usage(); in != 28 || out != 87 {
		t.Errorf("usage %d/%d, want 28 input (cache creation counts) and 87 output", in, out)
	}
}

func TestAssemblersJudgeIncompleteStreams(t *testing.T) {
	cut := richMessageStream[:strings.Index(richMessageStream, "event: message_delta")]
	tests := []struct {
		name   string
		f      Format
		body   string
		status sse.Status
	}{
		{"anthropic without message_stop", Anthropic, cut, sse.Truncated},
		{"anthropic error event", Anthropic, cut + stream([2]string{"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}), sse.Errored},
		{"anthropic cut inside an event", Anthropic, richMessageStream[:len(richMessageStream)-5], sse.Truncated},
		{"openai without finish_reason", OpenAI, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n", sse.Truncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, v := assemble(t, tc.f, tc.body)
			if v.Status != tc.status {
				t.Fatalf("verdict %v (%s), want %v", v.Status, v.Reason, tc.status)
			}
		})
	}
}

func TestChatAssemblerBuildsAChatCompletion(t *testing.T) {
	chunks := []string{
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Héllo "},"finish_reason":null}]}`,
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"東京"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":1,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":null}]}`,
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":"tool_calls"}]}`,
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`,
		`[DONE]`,
	}
	var body string
	for _, c := range chunks {
		body += stream([2]string{"", c})
	}
	a, v := assemble(t, OpenAI, body)
	if v.Status != sse.Complete {
		t.Fatalf("verdict %+v", v)
	}
	raw, err := a.message()
	if err != nil {
		t.Fatal(err)
	}
	var cc openai.ChatCompletion
	if err := json.Unmarshal(raw, &cc); err != nil {
		t.Fatal(err)
	}
	if cc.ID != "chatcmpl-9" || cc.Object != "chat.completion" || cc.Created != 1700000000 || cc.Model != "gpt-4o" || !strings.Contains(string(raw), `"system_fingerprint":"fp_1"`) {
		t.Errorf("fields %s", raw)
	}
	if len(cc.Choices) != 2 || cc.Choices[0].Message.Content != "Héllo 東京" || cc.Choices[0].FinishReason != "stop" {
		t.Fatalf("choice 0 of %s", raw)
	}
	tc := cc.Choices[1].Message.ToolCalls
	if cc.Choices[1].FinishReason != "tool_calls" || len(tc) != 1 || tc[0].ID != "call_1" || tc[0].Function.Name != "f" || tc[0].Function.Arguments != `{"a":1}` {
		t.Fatalf("choice 1 of %s", raw)
	}
	if cc.Usage.TotalTokens != 13 || cc.Usage.CompletionTokens != 4 {
		t.Errorf("usage %+v", cc.Usage)
	}
}
