package resume

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// topKeys returns the top-level keys of a JSON object, in order.
func topKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func decodeTop(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return m
}

func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("invalid expectation %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

const userMsg = `{"role":"user","content":"Tell me a story."}`

func TestAnthropicContinuation(t *testing.T) {
	tests := []struct {
		name      string
		messages  string // the original's messages array
		partial   string
		produced  int64
		form      Form
		maxTokens string // the original's max_tokens
		want      string // the continuation's messages
		wantStrip string
		wantMax   string
	}{
		{
			name:     "prefill appends the partial text",
			messages: `[` + userMsg + `]`, partial: "Once upon a ti", produced: 5, form: Prefill, maxTokens: "1000",
			want:    `[` + userMsg + `,{"role":"assistant","content":"Once upon a ti"}]`,
			wantMax: "995",
		},
		{
			name:     "prefill trims trailing spaces into Strip",
			messages: `[` + userMsg + `]`, partial: "Once upon  ", produced: 3, form: Prefill, maxTokens: "1000",
			want:      `[` + userMsg + `,{"role":"assistant","content":"Once upon"}]`,
			wantStrip: "  ", wantMax: "997",
		},
		{
			name:     "prefill trims newlines and tabs",
			messages: `[` + userMsg + `]`, partial: "Title\n\n\t", produced: 2, form: Prefill, maxTokens: "50",
			want:      `[` + userMsg + `,{"role":"assistant","content":"Title"}]`,
			wantStrip: "\n\n\t", wantMax: "48",
		},
		{
			name:     "prefill trims multi-byte white space and keeps multi-byte text",
			messages: `[` + userMsg + `]`, partial: "日本語のテキスト 🎉\u3000\u00a0", produced: 9, form: Prefill, maxTokens: "100",
			want:      `[` + userMsg + `,{"role":"assistant","content":"日本語のテキスト 🎉"}]`,
			wantStrip: "\u3000\u00a0", wantMax: "91",
		},
		{
			name:     "prefill of white space only adds no message",
			messages: `[` + userMsg + `]`, partial: "\n\n", produced: 1, form: Prefill, maxTokens: "100",
			want:      `[` + userMsg + `]`,
			wantStrip: "\n\n", wantMax: "99",
		},
		{
			name:     "prefill merges into the caller's string prefill",
			messages: `[` + userMsg + `,{"role":"assistant","content":"{"}]`, partial: "\"a\": 1,\n", produced: 4, form: Prefill, maxTokens: "100",
			want:      `[` + userMsg + `,{"role":"assistant","content":"{\"a\": 1,"}]`,
			wantStrip: "\n", wantMax: "96",
		},
		{
			name:     "prefill merges into the caller's last text block, keeping its fields",
			messages: `[` + userMsg + `,{"role":"assistant","content":[{"type":"text","text":"Sure:","cache_control":{"type":"ephemeral"}}]}]`, partial: " here it is ", produced: 4, form: Prefill, maxTokens: "100",
			want:      `[` + userMsg + `,{"role":"assistant","content":[{"type":"text","text":"Sure: here it is","cache_control":{"type":"ephemeral"}}]}]`,
			wantStrip: " ", wantMax: "96",
		},
		{
			name:     "prefill adds a text block after a caller's non-text block",
			messages: `[` + userMsg + `,{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]}]`, partial: "A cat", produced: 2, form: Prefill, maxTokens: "100",
			want:    `[` + userMsg + `,{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},{"type":"text","text":"A cat"}]}]`,
			wantMax: "98",
		},
		{
			name:     "prefill with white space only keeps the caller's prefill as is",
			messages: `[` + userMsg + `,{"role":"assistant","content":"Answer:"}]`, partial: " ", produced: 1, form: Prefill, maxTokens: "100",
			want:      `[` + userMsg + `,{"role":"assistant","content":"Answer:"}]`,
			wantStrip: " ", wantMax: "99",
		},
		{
			name:     "user-continue keeps the whole partial text and asks to continue",
			messages: `[` + userMsg + `]`, partial: "Once upon  ", produced: 3, form: UserContinue, maxTokens: "1000",
			want:    `[` + userMsg + `,{"role":"assistant","content":"Once upon  "},{"role":"user","content":` + jsonString(ContinuePrompt) + `}]`,
			wantMax: "997",
		},
		{
			name:     "user-continue merges into the caller's prefill",
			messages: `[` + userMsg + `,{"role":"assistant","content":"{"}]`, partial: "\"a\": ", produced: 2, form: UserContinue, maxTokens: "100",
			want:    `[` + userMsg + `,{"role":"assistant","content":"{\"a\": "},{"role":"user","content":` + jsonString(ContinuePrompt) + `}]`,
			wantMax: "98",
		},
		{
			name:     "max_tokens never drops below 1",
			messages: `[` + userMsg + `]`, partial: "x", produced: 5000, form: Prefill, maxTokens: "1000",
			want:    `[` + userMsg + `,{"role":"assistant","content":"x"}]`,
			wantMax: "1",
		},
		{
			name:     "no output produced leaves max_tokens",
			messages: `[` + userMsg + `]`, partial: "x", produced: 0, form: Prefill, maxTokens: "1000",
			want:    `[` + userMsg + `,{"role":"assistant","content":"x"}]`,
			wantMax: "1000",
		},
		{
			name:     "a max_tokens that is not an integer is left alone",
			messages: `[` + userMsg + `]`, partial: "x", produced: 10, form: Prefill, maxTokens: `"many"`,
			want:    `[` + userMsg + `,{"role":"assistant","content":"x"}]`,
			wantMax: `"many"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":` + tt.maxTokens + `,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],` +
				`"messages":` + tt.messages + `,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"metadata":{"user_id":"u-1"},` +
				`"temperature":0.70,"stream":true,"x_future_field":{"nested":[1,2,3]}}`)
			c, err := Anthropic(body, tt.partial, tt.produced, tt.form)
			if err != nil {
				t.Fatalf("Anthropic: %v", err)
			}
			if c.Strip != tt.wantStrip {
				t.Errorf("Strip = %q, want %q", c.Strip, tt.wantStrip)
			}
			got, orig := decodeTop(t, c.Body), decodeTop(t, body)
			if !jsonEqual(t, got["messages"], tt.want) {
				t.Errorf("messages = %s\nwant       %s", got["messages"], tt.want)
			}
			if string(got["max_tokens"]) != tt.wantMax {
				t.Errorf("max_tokens = %s, want %s", got["max_tokens"], tt.wantMax)
			}
			for k, v := range orig {
				if k == "messages" || k == "max_tokens" {
					continue
				}
				if !bytes.Equal(got[k], v) {
					t.Errorf("field %s = %s, want it unchanged: %s", k, got[k], v)
				}
			}
			if len(got) != len(orig) {
				t.Errorf("continuation has %d fields, original %d", len(got), len(orig))
			}
			if g, w := topKeys(t, c.Body), topKeys(t, body); !reflect.DeepEqual(g, w) {
				t.Errorf("field order %v, want %v", g, w)
			}
		})
	}
}

func TestOpenAIContinuation(t *testing.T) {
	sys := `{"role":"system","content":"Be brief."}`
	tests := []struct {
		name      string
		messages  string
		limits    string // max token fields of the original
		partial   string
		produced  int64
		form      Form
		want      string
		wantStrip string
		wantLimit map[string]string
	}{
		{
			name:     "user-continue appends the answer and the prompt",
			messages: `[` + sys + `,` + userMsg + `]`, limits: `"max_completion_tokens":500`, partial: "Once upon a time ", produced: 4, form: UserContinue,
			want:      `[` + sys + `,` + userMsg + `,{"role":"assistant","content":"Once upon a time "},{"role":"user","content":` + jsonString(ContinuePrompt) + `}]`,
			wantLimit: map[string]string{"max_completion_tokens": "496"},
		},
		{
			name:     "user-continue never merges into an earlier assistant turn",
			messages: `[` + userMsg + `,{"role":"assistant","content":"Earlier answer."}]`, limits: `"max_tokens":100`, partial: "New", produced: 1, form: UserContinue,
			want:      `[` + userMsg + `,{"role":"assistant","content":"Earlier answer."},{"role":"assistant","content":"New"},{"role":"user","content":` + jsonString(ContinuePrompt) + `}]`,
			wantLimit: map[string]string{"max_tokens": "99"},
		},
		{
			name:     "prefill merges into a final assistant message with content parts",
			messages: `[` + userMsg + `,{"role":"assistant","content":[{"type":"text","text":"Start"}]}]`, limits: `"max_tokens":100,"max_completion_tokens":80`, partial: " and more\n", produced: 3, form: Prefill,
			want:      `[` + userMsg + `,{"role":"assistant","content":[{"type":"text","text":"Start and more"}]}]`,
			wantStrip: "\n",
			wantLimit: map[string]string{"max_tokens": "97", "max_completion_tokens": "77"},
		},
		{
			name:     "prefill fills a null content",
			messages: `[` + userMsg + `,{"role":"assistant","content":null}]`, limits: `"max_tokens":10`, partial: "héllo", produced: 20, form: Prefill,
			want:      `[` + userMsg + `,{"role":"assistant","content":"héllo"}]`,
			wantLimit: map[string]string{"max_tokens": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"model":"gpt-4o","messages":` + tt.messages + `,` + tt.limits +
				`,"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"f"}}],"seed":7}`)
			c, err := OpenAI(body, tt.partial, tt.produced, tt.form)
			if err != nil {
				t.Fatalf("OpenAI: %v", err)
			}
			if c.Strip != tt.wantStrip {
				t.Errorf("Strip = %q, want %q", c.Strip, tt.wantStrip)
			}
			got, orig := decodeTop(t, c.Body), decodeTop(t, body)
			if !jsonEqual(t, got["messages"], tt.want) {
				t.Errorf("messages = %s\nwant       %s", got["messages"], tt.want)
			}
			for k, v := range orig {
				if want, ok := tt.wantLimit[k]; ok {
					if string(got[k]) != want {
						t.Errorf("%s = %s, want %s", k, got[k], want)
					}
					continue
				}
				if k != "messages" && !bytes.Equal(got[k], v) {
					t.Errorf("field %s = %s, want it unchanged: %s", k, got[k], v)
				}
			}
		})
	}
}

func TestContinuationErrors(t *testing.T) {
	good := []byte(`{"model":"m","max_tokens":10,"messages":[` + userMsg + `]}`)
	tests := []struct {
		name    string
		body    []byte
		partial string
		form    Form
		want    error
	}{
		{"empty partial", good, "", Prefill, ErrNothingToResume},
		{"invalid UTF-8 partial", good, "ab\xe6\x97", Prefill, ErrInvalidPartial},
		{"unknown form", good, "x", Form(9), ErrUnknownForm},
		{"empty body", nil, "x", Prefill, ErrInvalidBody},
		{"array body", []byte(`[1,2]`), "x", Prefill, ErrInvalidBody},
		{"truncated body", []byte(`{"messages":[`), "x", Prefill, ErrInvalidBody},
		{"trailing garbage", append(bytes.Clone(good), '}'), "x", Prefill, ErrInvalidBody},
		{"no messages", []byte(`{"model":"m"}`), "x", UserContinue, ErrInvalidBody},
		{"messages not an array", []byte(`{"messages":{"role":"user"}}`), "x", Prefill, ErrInvalidBody},
		{"empty messages", []byte(`{"messages":[]}`), "x", Prefill, ErrInvalidBody},
		{"last message not an object", []byte(`{"messages":[` + userMsg + `,"hi"]}`), "x", Prefill, ErrInvalidBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, build := range map[string]func([]byte, string, int64, Form) (Continuation, error){"anthropic": Anthropic, "openai": OpenAI} {
				c, err := build(tt.body, tt.partial, 1, tt.form)
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: err = %v, want %v", name, err, tt.want)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "resume: ") {
					t.Errorf("%s: error %q lacks the package prefix", name, err)
				}
				if c.Body != nil {
					t.Errorf("%s: body %s returned with an error", name, c.Body)
				}
			}
		})
	}
}

func TestFormString(t *testing.T) {
	for f, want := range map[Form]string{Prefill: "prefill", UserContinue: "user-continue", Form(7): "Form(7)"} {
		if got := f.String(); got != want {
			t.Errorf("Form(%d).String() = %q, want %q", uint8(f), got, want)
		}
	}
}

func TestContinuePromptAsksToContinue(t *testing.T) {
	// The simulator (and the documented recovery) recognise a continuation
	// by a user message containing "continue".
	if !strings.Contains(strings.ToLower(ContinuePrompt), "continue") {
		t.Fatalf("ContinuePrompt %q does not ask to continue", ContinuePrompt)
	}
}
