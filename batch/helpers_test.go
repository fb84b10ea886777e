package batch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamgate/streamgate/sim"
)

// fastSim is a simulator whose budgets are generous and whose streams are
// quick, so functional tests run in well under a second.
func fastSim() sim.Config {
	return sim.Config{
		Anthropic:       sim.AnthropicLimits{RPM: 100_000, ITPM: 10_000_000, OTPM: 10_000_000},
		OpenAI:          sim.OpenAILimits{RPM: 100_000, TPM: 100_000_000},
		Window:          6 * time.Second,
		TokensPerSecond: 5000,
		FlushInterval:   5 * time.Millisecond,
	}
}

// startSim serves a simulator on a loopback httptest server until the test
// ends.
func startSim(t testing.TB, cfg sim.Config) (*sim.Server, string) {
	t.Helper()
	s := sim.New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		s.Close()
	})
	return s, ts.URL
}

// prompt is the user message of request i: the directive fixes the answer
// length.
func prompt(i, tokens int) string {
	return fmt.Sprintf("[sim:tokens=%d] Question %d: tell me about buckets.", tokens, i)
}

// anthropicLine is one Message Batches input line.
func anthropicInput(id, text string, maxTokens int) string {
	b, _ := json.Marshal(map[string]any{
		"custom_id": id,
		"params": map[string]any{
			"model":      "claude-sonnet-4-5",
			"max_tokens": maxTokens,
			"messages":   []map[string]any{{"role": "user", "content": text}},
		},
	})
	return string(b)
}

// openAIInput is one OpenAI Batch input line.
func openAIInput(id, text string, maxTokens int) string {
	b, _ := json.Marshal(map[string]any{
		"custom_id": id,
		"method":    "POST",
		"url":       "/v1/chat/completions",
		"body": map[string]any{
			"model":      "gpt-4o",
			"max_tokens": maxTokens,
			"messages":   []map[string]any{{"role": "user", "content": text}},
		},
	})
	return string(b)
}

// workload writes n requests (lengths cycling through lens) in format f to
// a file in dir and returns its path and the expected answer per custom_id.
func workload(t testing.TB, dir string, f Format, n int, lens []int, g sim.Generator) (string, map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	want := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("req-%03d", i)
		text := prompt(i, lens[i%len(lens)])
		if f == OpenAI {
			buf.WriteString(openAIInput(id, text, 4096))
		} else {
			buf.WriteString(anthropicInput(id, text, 4096))
		}
		buf.WriteByte('\n')
		want[id] = g.Text(sim.Conversation{Messages: []sim.Message{{Role: "user", Text: text}}})
	}
	path := filepath.Join(dir, "requests.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// readResultsFile reads every result line of path.
func readResultsFile(t testing.TB, path string) *ResultsFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rf, err := ReadResults(f)
	if err != nil {
		t.Fatal(err)
	}
	return rf
}

// messageText returns the text of a succeeded result's message.
func messageText(t testing.TB, r Result) string {
	t.Helper()
	if r.Format == OpenAI {
		var m struct {
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(r.Message, &m); err != nil || len(m.Choices) != 1 {
			t.Fatalf("%s: bad chat.completion %s: %v", r.CustomID, r.Message, err)
		}
		return m.Choices[0].Message.Content
	}
	var m struct {
		Type    string `json:"type"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StopReason string `json:"stop_reason"`
	}
	if err := json.Unmarshal(r.Message, &m); err != nil {
		t.Fatalf("%s: bad message %s: %v", r.CustomID, r.Message, err)
	}
	var s string
	for _, c := range m.Content {
		s += c.Text
	}
	return s
}
