package cli

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDemoRunsBothStrategiesAndVerifiesAnswers(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	// A short "minute" and a small workload: the whole demo in seconds.
	code := Run(context.Background(), []string{"demo", "--requests", "12", "--window", "2s", "--progress", "log",
		"--log-interval", "500ms", "--dir", dir}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"naive", "streamgate", "rate-limit errors (429s)", "mid-stream failures", "wasted output tokens",
		"theoretical min:", "plot:", "timeline:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// streamgate completes everything, and every answer is the
	// simulator's full answer.
	m := regexp.MustCompile(`(?m)^\s*completed\s+(\d+)/12\s+12/12\s*$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no completed row with streamgate at 12/12:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^\s*answers checked complete\s+(\d+)/(\d+)\s+12/12\s*$`).MatchString(out) {
		t.Fatalf("streamgate answers not all checked complete:\n%s", out)
	}
	if !strings.Contains(out, "12 succeeded, 0 errored, 0 pending") {
		t.Errorf("summary does not report 12 succeeded:\n%s", out)
	}
	f, err := os.Open(filepath.Join(dir, "streamgate-demo.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot: %v", err)
	}
	for _, name := range []string{"requests.jsonl", "results-naive.jsonl", "results-streamgate.jsonl", "timeline.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
}

func TestDemoRealNeedsAKey(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "")
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"demo", "--real", "--dir", t.TempDir()}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "ANTHROPIC_API_KEY") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

// --real sends the streamgate run to ANTHROPIC_BASE_URL with the key from
// the environment; here that is a simulator standing in for the API.
func TestDemoRealUsesTheEnvironment(t *testing.T) {
	s, url := startTestSim(t, 5000)
	t.Setenv("ANTHROPIC_API_KEY", "sk-real-test")
	t.Setenv("ANTHROPIC_BASE_URL", url)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"demo", "--real", "--requests", "3", "--progress", "off", "--dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "to the real API at "+url) || !strings.Contains(stdout.String(), "3 succeeded") {
		t.Fatalf("output:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "naive") {
		t.Fatalf("--real ran the naive baseline without --naive:\n%s", stdout.String())
	}
	log := s.Log()
	if len(log) != 3 || log[0].Model != demoRealModel {
		t.Fatalf("simulator saw %d requests (first %+v)", len(log), log[0])
	}
}
