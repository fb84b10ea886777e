package batch_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/batch"
)

// Invalid lines are reported with their numbers before anything runs.
func ExampleParseRequests() {
	input := `{"custom_id":"q1","params":{"model":"claude-sonnet-4-5","max_tokens":512,"messages":[{"role":"user","content":"Hi"}]}}
{"custom_id":"q2","params":{"model":"claude-sonnet-4-5","messages":[]}}
{"custom_id":"q1","params":{"model":"claude-sonnet-4-5","max_tokens":512,"messages":[]}}
`
	w, err := batch.ParseRequests(strings.NewReader(input))
	if err != nil {
		panic(err)
	}
	fmt.Println(w.Format, len(w.Requests), "valid")
	for _, l := range w.Invalid {
		fmt.Println(l)
	}
	// Output:
	// anthropic 1 valid
	// line 2 (custom_id "q2"): params.max_tokens missing
	// line 3 (custom_id "q1"): duplicate custom_id "q1" (first on line 1)
}

// The theoretical minimum of a dimension: 48,000 output tokens from a
// full bucket of 8,000 refilled at 8,000 per minute.
func ExampleMinTime() {
	fmt.Println(batch.MinTime(48_000, 8_000, time.Minute))
	fmt.Println(batch.MinTime(6_000, 8_000, time.Minute))
	// Output:
	// 5m0s
	// 0s
}

// A dry run: 100 requests that may each produce up to 1,000 tokens, under
// Tier 1's 8,000 output tokens per minute.
func ExampleEstimate() {
	var lines strings.Builder
	for i := range 100 {
		fmt.Fprintf(&lines, `{"custom_id":"r%d","params":{"model":"claude-sonnet-4-5","max_tokens":1000,"messages":[{"role":"user","content":"Summarise document %d."}]}}`+"\n", i, i)
	}
	w, _ := batch.ParseRequests(strings.NewReader(lines.String()))
	plan := batch.Estimate(w, batch.PlanConfig{Limits: streamgate.Limits{Requests: 50, InputTokens: 30_000, OutputTokens: 8_000}})
	fmt.Println(plan.Binding, plan.Time)
	// Output: output_tokens 11m30s
}

// A result line in the Message Batches format.
func ExampleResult_AppendLine() {
	r := batch.Result{CustomID: "q1", Format: batch.Anthropic, Status: batch.Succeeded,
		Message: json.RawMessage(`{"type":"message","content":[{"type":"text","text":"Hello"}]}`)}
	line, _ := r.AppendLine(nil)
	os.Stdout.Write(line)
	// Output: {"custom_id":"q1","result":{"type":"succeeded","message":{"type":"message","content":[{"type":"text","text":"Hello"}]}}}
}
