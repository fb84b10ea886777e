package sse

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current results")

// goldenResult is what a stream model concluded about a recorded stream.
type goldenResult struct {
	Status       string     `json:"status"`
	Reason       string     `json:"reason"`
	ErrorType    string     `json:"error_type,omitempty"`
	ErrorCode    string     `json:"error_code,omitempty"`
	ErrorMessage string     `json:"error_message,omitempty"`
	Text         string     `json:"text"`
	OutputTokens int64      `json:"output_tokens"`
	Usage        any        `json:"usage"`
	StopReason   string     `json:"stop_reason,omitempty"`
	FinishReason string     `json:"finish_reason,omitempty"`
	SawDone      bool       `json:"saw_done,omitempty"`
	Blocks       []Block    `json:"blocks,omitempty"`
	ToolCalls    []ToolCall `json:"tool_calls,omitempty"`
	Events       int        `json:"events"`
	PartialEvent bool       `json:"partial_event"`
}

// model is what both stream models have in common.
type model interface {
	Observe(Event)
	End() Verdict
	Interrupt(string) Verdict
}

// runModel reads the stream through an Observer, as the transport does,
// and ends the model the way the transport would: Interrupt when the body
// ended in the middle of an event, End otherwise.
func runModel(t *testing.T, r io.Reader, m model) (Verdict, *Observer) {
	t.Helper()
	o := NewObserver(r, m.Observe)
	if _, err := io.Copy(io.Discard, o); err != nil {
		t.Fatal(err)
	}
	if o.Err() != nil {
		t.Fatal(o.Err())
	}
	if o.Partial() {
		return m.Interrupt("stream ended in the middle of an event"), o
	}
	return m.End(), o
}

func goldenFor(t *testing.T, name string, r io.Reader) goldenResult {
	t.Helper()
	var g goldenResult
	var v Verdict
	var o *Observer
	if strings.HasPrefix(name, "anthropic_") {
		var s MessageStream
		v, o = runModel(t, r, &s)
		g.Text, g.OutputTokens, g.Usage, g.StopReason = s.Text(), s.OutputTokens(), s.Usage(), s.StopReason()
		g.Blocks = s.Blocks()
	} else {
		var s ChatStream
		v, o = runModel(t, r, &s)
		g.Text, g.OutputTokens, g.Usage, g.FinishReason, g.SawDone = s.Text(), s.OutputTokens(), s.Usage(), s.FinishReason(), s.SawDone()
		if c, ok := s.Choice(0); ok {
			g.ToolCalls = c.ToolCalls
		}
	}
	g.Status, g.Reason = v.Status.String(), v.Reason
	if v.Error != nil {
		g.ErrorType, g.ErrorCode, g.ErrorMessage = v.Error.Type, v.Error.Code, v.Error.Message
	}
	g.Events, g.PartialEvent = o.Events(), o.Partial()
	return g
}

// randomChunkReader returns b in random pieces.
type randomChunkReader struct {
	b   []byte
	rng *rand.Rand
}

func (r *randomChunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+r.rng.IntN(40))], r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.sse"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".sse")
		t.Run(name, func(t *testing.T) {
			input, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenFor(t, name, bytes.NewReader(input))

			// The result must not depend on how the body was chunked.
			for how, r := range map[string]io.Reader{
				"one byte at a time": iotest.OneByteReader(bytes.NewReader(input)),
				"random chunks":      &randomChunkReader{b: input, rng: rand.New(rand.NewPCG(7, uint64(len(input))))},
			} {
				if other := goldenFor(t, name, r); !reflect.DeepEqual(other, got) {
					t.Fatalf("%s: %+v\nwhole: %+v", how, other, got)
				}
			}

			// The file name states the expected status.
			wantStatus := strings.Split(name, "_")[1]
			if wantStatus == "error" {
				wantStatus = Errored.String()
			}
			if got.Status != wantStatus {
				t.Fatalf("status %q (%s), but the file is named %s", got.Status, got.Reason, name)
			}

			goldenFile := strings.TrimSuffix(file, ".sse") + ".golden.json"
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON = append(gotJSON, '\n')
			if *update {
				if err := os.WriteFile(goldenFile, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenFile)
			if err != nil {
				t.Fatalf("%v (run go test ./sse -update to create it)", err)
			}
			if !bytes.Equal(gotJSON, want) {
				t.Fatalf("result differs from %s:\n got %s\nwant %s", goldenFile, gotJSON, want)
			}
		})
	}
}
