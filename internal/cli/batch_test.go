package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"image/png"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/batch"
	"github.com/streamgate/streamgate/sim"
	"github.com/streamgate/streamgate/timeline"
)

// batchInput writes n Message Batches lines whose answers have the given
// lengths and returns the path and the simulator's full answer per
// custom_id.
func batchInput(t *testing.T, dir string, n int, lens []int, g sim.Generator) (string, map[string]string) {
	t.Helper()
	var b bytes.Buffer
	want := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("job-%02d", i)
		text := fmt.Sprintf("[sim:tokens=%d] Job %d.", lens[i%len(lens)], i)
		line, _ := json.Marshal(map[string]any{"custom_id": id, "params": map[string]any{
			"model": "claude-sonnet-4-5", "max_tokens": 4096,
			"messages": []map[string]any{{"role": "user", "content": text}},
		}})
		b.Write(line)
		b.WriteByte('\n')
		want[id] = g.Text(sim.Conversation{Messages: []sim.Message{{Role: "user", Text: text}}})
	}
	path := filepath.Join(dir, "requests.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// startTestSim serves a simulator with generous limits on loopback.
func startTestSim(t *testing.T, tokensPerSecond float64) (*sim.Server, string) {
	t.Helper()
	s := sim.New(sim.Config{
		Anthropic:       sim.AnthropicLimits{RPM: 100_000, ITPM: 10_000_000, OTPM: 10_000_000},
		Window:          6 * time.Second,
		TokensPerSecond: tokensPerSecond,
		FlushInterval:   5 * time.Millisecond,
	})
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		s.Close()
	})
	return s, ts.URL
}

// checkResults asserts exactly one succeeded result per custom_id, each
// the simulator's full answer.
func checkResults(t *testing.T, out string, want map[string]string) {
	t.Helper()
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rf, err := batch.ReadResults(f)
	if err != nil {
		t.Fatal(err)
	}
	if rf.Torn != 0 {
		t.Errorf("torn last line left in %s", out)
	}
	count := map[string]int{}
	for _, r := range rf.Results {
		count[r.CustomID]++
		var m struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if r.Status != batch.Succeeded || json.Unmarshal(r.Message, &m) != nil || len(m.Content) != 1 {
			t.Errorf("%s: %s %s", r.CustomID, r.Status, r.Message)
			continue
		}
		if m.Content[0].Text != want[r.CustomID] {
			t.Errorf("%s: answer is not the simulator's full answer", r.CustomID)
		}
	}
	for id := range want {
		if count[id] != 1 {
			t.Errorf("%s: %d results, want exactly 1", id, count[id])
		}
	}
	if len(count) != len(want) {
		t.Errorf("%d custom_ids in the results, want %d", len(count), len(want))
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// streamgateBinary builds cmd/streamgate once per test process.
func streamgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "streamgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "streamgate")
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(build.Default.GOROOT, "bin", "go")
		}
		cmd := exec.Command(goTool, "build", "-o", binPath, "github.com/streamgate/streamgate/cmd/streamgate")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestMain removes the binary streamgateBinary built, once every test
// (and every -count repetition) is done with it.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// A real process killed with SIGKILL at random moments, then rerun until
// it finishes, leaves exactly one complete result per custom_id.
func TestBatchKilledAtRandomPointsGivesExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	bin := streamgateBinary(t)
	s, url := startTestSim(t, 1500)
	dir := t.TempDir()
	in, want := batchInput(t, dir, 20, []int{10, 80, 300, 600, 40, 150}, s.Generator())
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel() // separate keys and results files
			rng := rand.New(rand.NewPCG(seed, 7))
			out := filepath.Join(dir, fmt.Sprintf("out-%d.jsonl", seed))
			var kills []int
			for round := 0; ; round++ {
				if round > 12 {
					t.Fatalf("no clean finish after %d rounds", round)
				}
				cmd := exec.Command(bin, "batch", "--in", in, "--out", out, "--base-url", url,
					"--progress", "off", "--window", "6s")
				cmd.Env = append(os.Environ(), fmt.Sprintf("ANTHROPIC_API_KEY=key-%d", seed))
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				var timer *time.Timer
				if round < 3 {
					d := time.Duration(rng.IntN(2500)) * time.Millisecond
					timer = time.AfterFunc(d, func() { _ = cmd.Process.Kill() })
				}
				err := cmd.Wait()
				if timer != nil {
					timer.Stop()
				}
				if err == nil {
					break
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != -1 {
					t.Fatalf("round %d: %v\n%s", round, err, stderr.String())
				}
				kills = append(kills, countLines(t, out))
			}
			checkResults(t, out, want)
			t.Logf("results on disk after each kill: %v", kills)
		})
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

func TestBatchCommandEndToEnd(t *testing.T) {
	s, url := startTestSim(t, 3000)
	dir := t.TempDir()
	in, want := batchInput(t, dir, 9, []int{5, 50, 500}, s.Generator())
	out := filepath.Join(dir, "out.jsonl")
	tl := filepath.Join(dir, "tl.jsonl")
	plot := filepath.Join(dir, "plot.png")
	t.Setenv("ANTHROPIC_API_KEY", "k-e2e")
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"batch", "--in", in, "--out", out, "--base-url", url, "--window", "6s",
		"--progress", "log", "--log-interval", "1ms", "--timeline", tl, "--plot", plot}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
	checkResults(t, out, want)
	for _, wantOut := range []string{"9 succeeded", "makespan:", "theoretical min:", "output_tokens", plot, tl} {
		if !strings.Contains(stdout.String(), wantOut) {
			t.Errorf("stdout lacks %q:\n%s", wantOut, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "9/9 done") || !strings.Contains(stderr.String(), "tok/s") {
		t.Errorf("no progress lines on stderr:\n%s", stderr.String())
	}
	f, err := os.Open(tl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, err := timeline.Read(f)
	if err != nil || rec.Skipped != 0 {
		t.Fatalf("timeline: %v, %d skipped", err, rec.Skipped)
	}
	kinds := map[string]int{}
	for _, r := range rec.Records {
		kinds[r.Type+"/"+r.Event]++
	}
	if kinds["run/"] != 1 || kinds["event/completed"] != 9 || kinds["progress/"] < 2 {
		t.Errorf("timeline records %v", kinds)
	}
	pf, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if _, err := png.Decode(pf); err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
}

func TestBatchCommandInvalidInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	content := `{"custom_id":"a","params":{"model":"m","max_tokens":5,"messages":[]}}` + "\n" +
		"not json\n" +
		`{"custom_id":"a","params":{"model":"m","max_tokens":5,"messages":[]}}` + "\n"
	if err := os.WriteFile(in, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"batch", "--in", in, "--out", filepath.Join(dir, "out.jsonl")}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"line 2: not a JSON object", "line 3 (custom_id \"a\"): duplicate custom_id \"a\" (first on line 1)", "--skip-invalid"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("results file created for a refused input")
	}
}

func TestBatchDryRun(t *testing.T) {
	dir := t.TempDir()
	// 10 requests of max_tokens 4096: 40,960 output tokens at most. Tier 1
	// grants 8,000 a minute from a full bucket, so the output needs
	// (40,960 - 8,000) / (8,000 / 60 s) = 247.2 s; 10 requests and a few
	// hundred input tokens fit in the other budgets.
	in, _ := batchInput(t, dir, 10, []int{5}, sim.Generator{})
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"batch", "--in", in, "--dry-run"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"nothing was sent", "binding dimension: output_tokens", "4m7.2s", "40960", "half the price", "24 h"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	code = Run(context.Background(), []string{"batch", "--in", in, "--dry-run", "--expected-output", "800", "--tier", "tier2"}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "no dimension binds") {
		t.Fatalf("tier 2 with 800-token answers should fit: exit %d\n%s", code, stdout.String())
	}
}

func TestBatchCommandFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"batch"}, "--in is required"},
		{[]string{"batch", "--in", "x", "--progress", "fancy"}, "unknown progress mode"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), tc.args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, stderr.String(), tc.want)
			}
		})
	}
}
