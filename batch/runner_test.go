package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/sim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkExactlyOnce asserts that out has exactly one succeeded result per
// custom_id of want, each with the simulator's full answer.
func checkExactlyOnce(t *testing.T, out string, want map[string]string) {
	t.Helper()
	rf := readResultsFile(t, out)
	if rf.Torn != 0 {
		t.Errorf("results file ends with a torn line (%d bytes)", rf.Torn)
	}
	seen := map[string]int{}
	for _, r := range rf.Results {
		seen[r.CustomID]++
		if r.Status != Succeeded {
			t.Errorf("%s: %s: %s", r.CustomID, r.Status, r.Error)
			continue
		}
		if got := messageText(t, r); got != want[r.CustomID] {
			t.Errorf("%s: text is not the full answer:\n got %q\nwant %q", r.CustomID, got, want[r.CustomID])
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("%s has %d results, want exactly 1", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d custom_ids in the results, want %d", len(seen), len(want))
	}
}

func TestRunBothFormatsRecordCompleteAnswers(t *testing.T) {
	for _, f := range []Format{Anthropic, OpenAI} {
		t.Run(f.String(), func(t *testing.T) {
			s, url := startSim(t, fastSim())
			dir := t.TempDir()
			in, want := workload(t, dir, f, 12, []int{1, 7, 64, 300, 900}, s.Generator())
			out := filepath.Join(dir, "out.jsonl")
			var last Progress
			var reports int
			sum, err := Run(context.Background(), Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "k", Window: 6 * time.Second,
				OnProgress: func(p Progress) { last = p; reports++ }})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Succeeded != 12 || sum.Pending != 0 || sum.Errored != 0 || sum.Format != f {
				t.Fatalf("summary %+v", sum)
			}
			checkExactlyOnce(t, out, want)
			var outTokens int64
			for _, r := range readResultsFile(t, out).Results {
				outTokens += resultUsage(t, r)
			}
			if sum.OutputTokens != outTokens {
				t.Errorf("summary output tokens %d, results say %d", sum.OutputTokens, outTokens)
			}
			if reports < 2 || !last.Finished || last.Done != 12 || last.Total != 12 || last.InFlight != 0 ||
				last.UsefulOutputTokens != outTokens || last.OutputTokens != outTokens || last.ETA != 0 {
				t.Errorf("last of %d progress reports: %+v (output %d)", reports, last, outTokens)
			}
			if len(s.Log()) != 12 {
				t.Errorf("simulator saw %d requests, want 12", len(s.Log()))
			}
		})
	}
}

// resultUsage returns the output tokens a succeeded result reports and
// checks its completion fields.
func resultUsage(t *testing.T, r Result) int64 {
	t.Helper()
	if r.Format == OpenAI {
		var m struct {
			Object  string `json:"object"`
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				CompletionTokens int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(r.Message, &m); err != nil || m.Object != "chat.completion" || m.Choices[0].FinishReason != "stop" {
			t.Fatalf("%s: %s", r.CustomID, r.Message)
		}
		return m.Usage.CompletionTokens
	}
	var m struct {
		Type       string `json:"type"`
		ID         string `json:"id"`
		StopReason string `json:"stop_reason"`
		Usage      struct {
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(r.Message, &m); err != nil || m.Type != "message" || m.StopReason != "end_turn" || !strings.HasPrefix(m.ID, "msg_") {
		t.Fatalf("%s: %s", r.CustomID, r.Message)
	}
	return m.Usage.OutputTokens
}

func TestRunResumesFromAnExistingResultsFile(t *testing.T) {
	s, url := startSim(t, fastSim())
	dir := t.TempDir()
	in, want := workload(t, dir, Anthropic, 10, []int{5, 50}, s.Generator())
	all, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(all), "\n")
	half := filepath.Join(dir, "half.jsonl")
	if err := os.WriteFile(half, []byte(strings.Join(lines[:4], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	cfg := Config{InPath: half, OutPath: out, BaseURL: url, APIKey: "k", Window: 6 * time.Second}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// A torn line, as a killed run leaves.
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"custom_id":"req-004","result":{"type":"succ`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg.InPath = in
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.AlreadyDone != 4 || sum.Succeeded != 6 || sum.TornBytes == 0 {
		t.Fatalf("second run: already %d, succeeded %d, torn %d", sum.AlreadyDone, sum.Succeeded, sum.TornBytes)
	}
	checkExactlyOnce(t, out, want)
	if n := len(s.Log()); n != 10 {
		t.Errorf("simulator saw %d requests, want 10 (nothing sent twice)", n)
	}
	// A third run has nothing to do and needs no key.
	cfg.APIKey = ""
	sum, err = Run(context.Background(), cfg)
	if err != nil || sum.AlreadyDone != 10 || sum.Succeeded != 0 {
		t.Fatalf("third run: %v %+v", err, sum)
	}
}

func TestRunRefusesInvalidInputBeforeSending(t *testing.T) {
	s, url := startSim(t, fastSim())
	dir := t.TempDir()
	input := anthropicInput("a", prompt(0, 3), 10) + "\n{oops\n" + anthropicInput("a", prompt(1, 3), 10) + "\n" + anthropicInput("b", prompt(2, 3), 10) + "\n"
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	_, err := Run(context.Background(), Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "k"})
	var ie *InputError
	if !errors.As(err, &ie) || len(ie.Lines) != 2 || ie.Lines[0].Line != 2 || ie.Lines[1].Line != 3 {
		t.Fatalf("err = %v, want lines 2 and 3", err)
	}
	if len(s.Log()) != 0 {
		t.Fatalf("%d requests sent for a refused input", len(s.Log()))
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("results file created for a refused input: %v", err)
	}
	sum, err := Run(context.Background(), Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "k", SkipInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Succeeded != 2 || len(sum.Invalid) != 2 || sum.Invalid[1].CustomID != "a" {
		t.Fatalf("summary %+v", sum)
	}
	var buf strings.Builder
	if err := sum.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "line 3") || !strings.Contains(buf.String(), "duplicate") {
		t.Fatalf("summary does not list the skipped lines:\n%s", buf.String())
	}
}

func TestRunRecordsProviderRefusals(t *testing.T) {
	for _, f := range []Format{Anthropic, OpenAI} {
		t.Run(f.String(), func(t *testing.T) {
			_, url := startSim(t, fastSim())
			dir := t.TempDir()
			// An empty user message: both APIs reject it with a 400.
			line := anthropicInput("bad", "", 10)
			if f == OpenAI {
				line = `{"custom_id":"bad","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","max_tokens":10,"messages":[]}}`
			}
			in := filepath.Join(dir, "in.jsonl")
			if err := os.WriteFile(in, []byte(line+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out.jsonl")
			sum, err := Run(context.Background(), Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "k"})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Errored != 1 || sum.Succeeded != 0 {
				t.Fatalf("summary %+v", sum)
			}
			r := readResultsFile(t, out).Results[0]
			var body struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(r.Error, &body); err != nil || body.Error.Type != "invalid_request_error" || body.Error.Message == "" {
				t.Fatalf("error body %s (%v)", r.Error, err)
			}
			if f == Anthropic && (body.Type != "error" || body.RequestID == "") {
				t.Fatalf("Anthropic error body %s", r.Error)
			}
			if f == OpenAI && r.StatusCode != 400 {
				t.Fatalf("OpenAI status %d", r.StatusCode)
			}
		})
	}
}

func TestRunRetriesBrokenStreamsAndNeverRecordsThemAsSuccess(t *testing.T) {
	s, url := startSim(t, fastSim())
	dir := t.TempDir()
	g := s.Generator()
	text := prompt(1, 400)
	var b strings.Builder
	// Cut mid-stream once, then fine.
	b.WriteString(strings.Replace(anthropicInput("heals", text, 1000), "claude-sonnet-4-5", "claude-sonnet-4-5+fault=drop-midstream;at=50;times=1", 1) + "\n")
	// Cut every time, continuations included.
	b.WriteString(strings.Replace(anthropicInput("never", prompt(2, 100), 1000), "claude-sonnet-4-5", "claude-sonnet-4-5+fault=drop-midstream;at=0;times=100000", 1) + "\n")
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	sum, err := Run(context.Background(), Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "k", MaxAttempts: 2, RetryDelay: time.Millisecond})
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	if sum.Succeeded != 1 || sum.Pending != 1 || len(sum.Failures) != 1 || sum.Failures[0].CustomID != "never" {
		t.Fatalf("summary %+v", sum)
	}
	if sum.MidStreamFailures+sum.Resumes < 1 {
		t.Errorf("the cut stream was neither resumed nor retried: %+v", sum)
	}
	rf := readResultsFile(t, out)
	if len(rf.Results) != 1 || rf.Results[0].CustomID != "heals" {
		t.Fatalf("results %+v", rf.Results)
	}
	if got, want := messageText(t, rf.Results[0]), g.Text(sim.Conversation{Messages: []sim.Message{{Role: "user", Text: text}}}); got != want {
		t.Fatalf("healed answer is not the full answer:\n got %q\nwant %q", got, want)
	}
}

func TestRunCancelledLeavesTheRestForARerun(t *testing.T) {
	cfg := fastSim()
	cfg.TokensPerSecond = 400 // each answer takes a while
	s, url := startSim(t, cfg)
	dir := t.TempDir()
	in, want := workload(t, dir, Anthropic, 8, []int{20, 200}, s.Generator())
	out := filepath.Join(dir, "out.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	run := Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "k", Concurrency: 2, Window: 6 * time.Second,
		OnProgress: func(p Progress) {
			if p.Done >= 2 {
				cancel()
			}
		}, ProgressInterval: 10 * time.Millisecond}
	sum, err := Run(ctx, run)
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrIncomplete and context.Canceled", err)
	}
	if sum.Pending == 0 || sum.Succeeded+sum.Pending != 8 {
		t.Fatalf("summary %+v", sum)
	}
	run.OnProgress = nil
	sum2, err := Run(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.AlreadyDone != sum.Succeeded || sum2.Succeeded != sum.Pending {
		t.Fatalf("rerun: %+v after %+v", sum2, sum)
	}
	checkExactlyOnce(t, out, want)
}

func TestRunNaiveStrategy(t *testing.T) {
	s, url := startSim(t, fastSim())
	dir := t.TempDir()
	in, want := workload(t, dir, Anthropic, 10, []int{3, 30, 300}, s.Generator())
	out := filepath.Join(dir, "out.jsonl")
	sum, err := Run(context.Background(), Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "k", Strategy: Naive})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Strategy != Naive || sum.Succeeded != 10 || sum.Attempts != 10 || sum.RateLimited != 0 {
		t.Fatalf("summary %+v", sum)
	}
	checkExactlyOnce(t, out, want)
	for _, r := range s.Log() {
		if r.Status != 200 {
			t.Fatalf("unexpected upstream status %d", r.Status)
		}
	}
}

// With a tight budget the naive strategy meets rate limits that
// streamgate avoids; both count them from what the upstream said.
func TestRunCountsRateLimits(t *testing.T) {
	cfg := sim.Tier1()
	cfg.Window = 2 * time.Second
	cfg.TokensPerSecond = 4000
	cfg.Anthropic.RPM = 10
	_, url := startSim(t, cfg)
	dir := t.TempDir()
	in, _ := workload(t, dir, Anthropic, 16, []int{5}, sim.Generator{})
	out := filepath.Join(dir, "out.jsonl")
	sum, err := Run(context.Background(), Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "naive", Strategy: Naive, RetryDelay: 50 * time.Millisecond, MaxAttempts: 100, Window: cfg.Window})
	if err != nil {
		t.Fatal(err)
	}
	if sum.RateLimited == 0 || sum.Retries == 0 || sum.Attempts != sum.Succeeded+sum.RateLimited {
		t.Fatalf("naive against 10 RPM: %+v", sum)
	}
	var rpm *DimensionSummary
	for i := range sum.Dimensions {
		if sum.Dimensions[i].Dimension.String() == "requests" {
			rpm = &sum.Dimensions[i]
		}
	}
	if rpm == nil || rpm.Limit != 10 || rpm.Needed != 16 || rpm.MinTime != MinTime(16, 10, 2*time.Second) {
		t.Fatalf("requests dimension %+v", rpm)
	}
	if sum.TheoreticalMin < rpm.MinTime || sum.Makespan < sum.TheoreticalMin {
		t.Fatalf("theoretical min %v, makespan %v, requests need %v", sum.TheoreticalMin, sum.Makespan, rpm.MinTime)
	}
}

func TestMinTime(t *testing.T) {
	tests := []struct {
		need, limit int64
		window      time.Duration
		want        time.Duration
	}{
		{100, 0, time.Minute, 0},                 // unknown limit
		{100, 200, time.Minute, 0},               // fits in a full bucket
		{200, 200, time.Minute, 0},               // exactly
		{300, 100, time.Minute, 2 * time.Minute}, // 200 more at 100/min
		{48000, 8000, 10 * time.Second, 50 * time.Second},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d_of_%d", tc.need, tc.limit), func(t *testing.T) {
			if got := MinTime(tc.need, tc.limit, tc.window); got != tc.want {
				t.Fatalf("MinTime = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRunConfigErrors(t *testing.T) {
	dir := t.TempDir()
	in, _ := workload(t, dir, Anthropic, 1, []int{1}, sim.Generator{})
	if _, err := Run(context.Background(), Config{InPath: in}); !errors.Is(err, ErrNoOutput) {
		t.Errorf("no output: %v", err)
	}
	if _, err := Run(context.Background(), Config{InPath: in, OutPath: filepath.Join(dir, "o")}); !errors.Is(err, ErrNoAPIKey) {
		t.Errorf("no key: %v", err)
	}
	if _, err := Run(context.Background(), Config{InPath: filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing input: %v", err)
	}
	oa := filepath.Join(dir, "oa.jsonl")
	line, _ := Result{CustomID: "x", Format: OpenAI, Status: Succeeded, Message: json.RawMessage(`{}`), StatusCode: 200}.AppendLine(nil)
	if err := os.WriteFile(oa, line, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), Config{InPath: in, OutPath: oa, APIKey: "k"}); !errors.Is(err, ErrFormatMismatch) {
		t.Errorf("format mismatch: %v", err)
	}
}

// The naive strategy's counters agree with what the simulator saw: every
// attempt, every rate-limit error (before the stream and during it), and
// every output token sent for a stream that was then cut.
func TestNaiveCountersMatchTheSimulator(t *testing.T) {
	cfg := sim.Tier1()
	cfg.Window = time.Second
	cfg.Anthropic.OTPM = 3000
	cfg.TokensPerSecond = 4000
	cfg.FlushInterval = 5 * time.Millisecond
	s, url := startSim(t, cfg)
	dir := t.TempDir()
	in, want := workload(t, dir, Anthropic, 12, []int{900, 700}, s.Generator())
	out := filepath.Join(dir, "out.jsonl")
	// Everything at once against a small output budget: streams are cut
	// and retried together, again and again; six attempts bound the test.
	sum, err := Run(context.Background(), Config{InPath: in, OutPath: out, BaseURL: url, APIKey: "naive", Strategy: Naive,
		RetryDelay: 100 * time.Millisecond, MaxAttempts: 6, Window: cfg.Window})
	if err != nil && !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	var rl, mid, complete int
	var wasted int64
	for _, r := range s.Log() {
		switch r.End {
		case sim.EndRateLimited:
			rl++
		case sim.EndRateLimitedMidstream:
			rl++
			mid++
			wasted += int64(r.OutputTokens)
		case sim.EndComplete:
			complete++
		default:
			t.Errorf("unexpected end %q", r.End)
		}
	}
	if mid == 0 {
		t.Fatal("no stream was cut: the test does not exercise mid-stream failures")
	}
	if sum.Attempts != len(s.Log()) || sum.RateLimited != rl || sum.MidStreamFailures != mid ||
		sum.WastedOutputTokens != wasted || sum.Succeeded != complete || sum.Retries != len(s.Log())-12 ||
		sum.Pending != 12-complete {
		t.Fatalf("summary: attempts %d, 429s %d, mid-stream %d, wasted %d, succeeded %d, retries %d, pending %d\n"+
			"simulator: %d requests, %d rate-limited, %d cut, %d tokens wasted, %d complete",
			sum.Attempts, sum.RateLimited, sum.MidStreamFailures, sum.WastedOutputTokens, sum.Succeeded, sum.Retries, sum.Pending,
			len(s.Log()), rl, mid, wasted, complete)
	}
	for _, r := range readResultsFile(t, out).Results {
		if r.Status != Succeeded || messageText(t, r) != want[r.CustomID] {
			t.Errorf("%s: %s result is not the full answer", r.CustomID, r.Status)
		}
	}
}
