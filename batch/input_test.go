package batch

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseRequestsFormats(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		format Format
		ids    []string
		model  string
		maxTok int64
	}{
		{
			name:   "anthropic",
			input:  anthropicInput("a-1", "hi", 100) + "\n" + anthropicInput("b_2", "yo", 7) + "\n",
			format: Anthropic, ids: []string{"a-1", "b_2"}, model: "claude-sonnet-4-5", maxTok: 100,
		},
		{
			name:   "openai without trailing newline, CRLF and blank lines",
			input:  "\r\n" + openAIInput("x y", "hi", 9) + "\r\n\n" + openAIInput("z", "yo", 3),
			format: OpenAI, ids: []string{"x y", "z"}, model: "gpt-4o", maxTok: 9,
		},
		{
			name:   "openai max_completion_tokens wins",
			input:  `{"custom_id":"c","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","max_tokens":5,"max_completion_tokens":50,"messages":[]}}`,
			format: OpenAI, ids: []string{"c"}, model: "gpt-4o", maxTok: 50,
		},
		{
			name:   "openai without max_tokens",
			input:  `{"custom_id":"c","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[]}}`,
			format: OpenAI, ids: []string{"c"}, model: "gpt-4o", maxTok: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := ParseRequests(strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Invalid) != 0 {
				t.Fatalf("invalid lines: %v", w.Invalid)
			}
			if w.Format != tc.format {
				t.Fatalf("format %v, want %v", w.Format, tc.format)
			}
			var ids []string
			for _, r := range w.Requests {
				ids = append(ids, r.CustomID)
			}
			if strings.Join(ids, "|") != strings.Join(tc.ids, "|") {
				t.Fatalf("ids %q, want %q", ids, tc.ids)
			}
			if r := w.Requests[0]; r.Model != tc.model || r.MaxTokens != tc.maxTok {
				t.Fatalf("first request model %q max_tokens %d", r.Model, r.MaxTokens)
			}
		})
	}
}

func TestParseRequestsReportsEveryBadLineWithItsNumber(t *testing.T) {
	lines := []string{
		anthropicInput("ok-1", "hi", 10), // 1
		`not json`,                       // 2
		`{"custom_id": 5, "params": {}}`, // 3
		`{"custom_id":"bad id!","params":{"model":"m","max_tokens":1,"messages":[]}}`, // 4
		`{"custom_id":"p","params":"x"}`,                                              // 5
		`{"custom_id":"q","params":{"max_tokens":1,"messages":[]}}`,                   // 6
		`{"custom_id":"r","params":{"model":"m","messages":[]}}`,                      // 7
		`{"custom_id":"s","params":{"model":"m","max_tokens":0,"messages":[]}}`,       // 8
		`{"custom_id":"t","params":{"model":"m","max_tokens":1,"messages":{}}}`,       // 9
		anthropicInput("ok-1", "again", 10),                                           // 10: duplicate
		openAIInput("o", "hi", 5),                                                     // 11: other format
		`{"custom_id":"u"}`,                                                           // 12
		`[1,2]`,                                                                       // 13
		``,                                                                            // 14: blank, fine
		anthropicInput("ok-2", "hi", 10),                                              // 15
		`{"custom_id":"v","params":{"model":"m","max_tokens":1,"messages":[]},"body":{}}`, // 16
	}
	w, err := ParseRequests(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16}
	if len(w.Invalid) != len(wantLines) {
		t.Fatalf("got %d invalid lines, want %d: %v", len(w.Invalid), len(wantLines), w.Invalid)
	}
	for i, l := range w.Invalid {
		if l.Line != wantLines[i] {
			t.Errorf("invalid[%d] is line %d, want %d (%v)", i, l.Line, wantLines[i], l)
		}
	}
	dup := w.Invalid[8]
	if dup.CustomID != "ok-1" || !strings.Contains(dup.Reason, "duplicate") || !strings.Contains(dup.Reason, "line 1") {
		t.Errorf("duplicate not reported with the first line: %v", dup)
	}
	if len(w.Requests) != 2 || w.Requests[0].CustomID != "ok-1" || w.Requests[0].Line != 1 || w.Requests[1].CustomID != "ok-2" || w.Requests[1].Line != 15 {
		t.Errorf("valid requests %+v", w.Requests)
	}
}

func TestParseRequestsOpenAIURLAndMethod(t *testing.T) {
	tests := []struct{ name, line, reason string }{
		{"embeddings", `{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"x"}}`, "not supported"},
		{"get", `{"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}`, "POST"},
		{"empty id", `{"custom_id":"","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}`, "empty"},
		{"no url", `{"custom_id":"a","method":"POST","body":{"model":"m","messages":[]}}`, "url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := ParseRequests(strings.NewReader(tc.line))
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Invalid) != 1 || !strings.Contains(w.Invalid[0].Reason, tc.reason) {
				t.Fatalf("invalid %v, want a reason containing %q", w.Invalid, tc.reason)
			}
		})
	}
}

func TestParseRequestsLongLine(t *testing.T) {
	long := `{"custom_id":"big","params":{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"` +
		strings.Repeat("x", MaxLineBytes) + `"}]}}`
	input := anthropicInput("a", "hi", 1) + "\n" + long + "\n" + anthropicInput("b", "hi", 1) + "\n"
	w, err := ParseRequests(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Invalid) != 1 || w.Invalid[0].Line != 2 {
		t.Fatalf("invalid = %v, want line 2 too long", w.Invalid)
	}
	if len(w.Requests) != 2 || w.Requests[1].Line != 3 {
		t.Fatalf("requests %+v", w.Requests)
	}
}

func TestParseRequestsReadError(t *testing.T) {
	boom := errors.New("disk gone")
	_, err := ParseRequests(io.MultiReader(strings.NewReader(anthropicInput("a", "x", 1)+"\n"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the read error", err)
	}
}

func TestInputErrorMatchesSentinel(t *testing.T) {
	err := error(&InputError{Lines: []LineError{{Line: 3, Reason: "x"}}})
	if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err %v", err)
	}
}
