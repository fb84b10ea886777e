package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

func TestResultLineRoundTrip(t *testing.T) {
	msg := json.RawMessage(`{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"héllo 東"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}`)
	anthErr := json.RawMessage(`{"type":"error","error":{"type":"invalid_request_error","message":"bad"},"request_id":"req_1"}`)
	chat := json.RawMessage(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	oaErr := json.RawMessage(`{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}`)
	tests := []Result{
		{CustomID: "a", Format: Anthropic, Status: Succeeded, Message: msg},
		{CustomID: "b", Format: Anthropic, Status: Errored, Error: anthErr},
		{CustomID: "c", Format: OpenAI, Status: Succeeded, Message: chat, StatusCode: 200, RequestID: "req_x"},
		{CustomID: "d", Format: OpenAI, Status: Errored, Error: oaErr, StatusCode: 400, RequestID: "req_y"},
	}
	for _, want := range tests {
		t.Run(want.CustomID, func(t *testing.T) {
			line, err := want.AppendLine(nil)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("not one line: %q", line)
			}
			got, err := ParseResultLine(line[:len(line)-1])
			if err != nil {
				t.Fatal(err)
			}
			if got.CustomID != want.CustomID || got.Format != want.Format || got.Status != want.Status ||
				!jsonEqual(got.Message, want.Message) || !jsonEqual(got.Error, want.Error) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
			if want.Format == OpenAI && (got.StatusCode != want.StatusCode || got.RequestID != want.RequestID) {
				t.Fatalf("status/request id lost: %+v", got)
			}
		})
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// The official SDK decodes the Anthropic lines: the format is the real one.
func TestAnthropicResultLinesDecodeWithTheSDK(t *testing.T) {
	ok := Result{CustomID: "a", Format: Anthropic, Status: Succeeded, Message: json.RawMessage(
		`{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}`)}
	bad := Result{CustomID: "b", Format: Anthropic, Status: Errored, Error: json.RawMessage(
		`{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"},"request_id":"req_1"}`)}
	for _, r := range []Result{ok, bad} {
		line, err := r.AppendLine(nil)
		if err != nil {
			t.Fatal(err)
		}
		var resp anthropic.MessageBatchIndividualResponse
		if err := json.Unmarshal(line, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.CustomID != r.CustomID || resp.Result.Type != string(r.Status) {
			t.Fatalf("SDK read custom_id %q type %q", resp.CustomID, resp.Result.Type)
		}
		switch v := resp.Result.AsAny().(type) {
		case anthropic.MessageBatchSucceededResult:
			if v.Message.Content[0].Text != "hello" || v.Message.Usage.OutputTokens != 2 {
				t.Fatalf("SDK message %+v", v.Message)
			}
		case anthropic.MessageBatchErroredResult:
			if v.Error.RequestID != "req_1" || v.Error.Error.Message != "max_tokens: too big" {
				t.Fatalf("SDK error %+v", v.Error)
			}
		default:
			t.Fatalf("SDK result %T", v)
		}
	}
}

func TestOpenAIResultIDIsStable(t *testing.T) {
	r := Result{CustomID: "same", Format: OpenAI, Status: Succeeded, Message: json.RawMessage(`{}`), StatusCode: 200}
	a, _ := r.AppendLine(nil)
	b, _ := r.AppendLine(nil)
	var x struct {
		ID    string          `json:"id"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(a, &x); err != nil || !strings.HasPrefix(x.ID, "batch_req_") || string(x.Error) != "null" {
		t.Fatalf("line %s: %+v %v", a, x, err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the same result encodes differently")
	}
}

func TestReadResultsTornAndCorrupt(t *testing.T) {
	l1, _ := Result{CustomID: "a", Format: Anthropic, Status: Succeeded, Message: json.RawMessage(`{"x":1}`)}.AppendLine(nil)
	l2, _ := Result{CustomID: "b", Format: Anthropic, Status: Succeeded, Message: json.RawMessage(`{"x":2}`)}.AppendLine(nil)
	full := string(l1) + string(l2)
	tests := []struct {
		name    string
		content string
		ids     string
		size    int
		torn    int
		err     error
	}{
		{"empty", "", "", 0, 0, nil},
		{"clean", full, "a,b", len(full), 0, nil},
		{"torn without newline", full + string(l1[:10]), "a,b", len(full), 10, nil},
		{"torn complete json without newline", full + strings.TrimSpace(string(l1)), "a,b", len(full), len(l1) - 1, nil},
		{"garbage last line with newline", full + "{\"cust\n", "a,b", len(full), 7, nil},
		{"garbage in the middle", string(l1) + "nope\n" + string(l2), "", 0, 0, ErrCorruptResults},
		{"format change", string(l1) + `{"id":"x","custom_id":"c","response":{"status_code":200,"body":{}},"error":null}` + "\n" + string(l2), "", 0, 0, ErrCorruptResults},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rf, err := ReadResults(strings.NewReader(tc.content))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			var ids []string
			for _, r := range rf.Results {
				ids = append(ids, r.CustomID)
			}
			if strings.Join(ids, ",") != tc.ids || rf.Size != int64(tc.size) || rf.Torn != int64(tc.torn) {
				t.Fatalf("ids %v size %d torn %d, want %s %d %d", ids, rf.Size, rf.Torn, tc.ids, tc.size, tc.torn)
			}
		})
	}
}

func TestOpenOutFileTruncatesTornTailAndLocks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	l1, _ := Result{CustomID: "a", Format: Anthropic, Status: Succeeded, Message: json.RawMessage(`{"x":1}`)}.AppendLine(nil)
	if err := os.WriteFile(path, append(append([]byte{}, l1...), `{"custom_id":"b","res`...), 0o644); err != nil {
		t.Fatal(err)
	}
	o, rf, err := openOutFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if rf.Torn == 0 || len(rf.Results) != 1 {
		t.Fatalf("torn %d results %d", rf.Torn, len(rf.Results))
	}
	if _, _, err := openOutFile(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if err := o.append(Result{CustomID: "b", Format: Anthropic, Status: Succeeded, Message: json.RawMessage(`{"x":2}`)}); err != nil {
		t.Fatal(err)
	}
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
	rf = readResultsFile(t, path)
	if rf.Torn != 0 || len(rf.Results) != 2 || rf.Results[1].CustomID != "b" {
		t.Fatalf("after append: %+v", rf)
	}
}
