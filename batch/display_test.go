package batch

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/ratelimit"
)

// syncBuffer is a bytes.Buffer safe for the display's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func sampleProgress(done int, elapsed time.Duration, finished bool) Progress {
	return Progress{Total: 10, Done: done, Elapsed: elapsed, OutputTokensPerSecond: 812,
		Binding: ratelimit.OutputTokens, Utilisation: 0.97, RateLimited: 3, Retries: 5, ETA: 38 * time.Second, Finished: finished}
}

func TestDisplayLogLinesOffATerminal(t *testing.T) {
	var buf syncBuffer
	d := NewDisplay(&buf, DisplayAuto, 5*time.Second)
	if d.Mode() != DisplayLog {
		t.Fatalf("a buffer is not a terminal: mode %v", d.Mode())
	}
	track := d.Track("streamgate")
	track(sampleProgress(0, 0, false))
	track(sampleProgress(2, 2*time.Second, false)) // within the interval: no line
	track(sampleProgress(5, 5*time.Second, false))
	track(sampleProgress(10, 7*time.Second, true)) // the last one always
	d.Close()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	want := "streamgate: 5/10 done, 812 tok/s, output_tokens 97%, 3 rate-limited, 5 retries, ETA 38s"
	if !strings.HasSuffix(lines[1], want) || !strings.HasPrefix(lines[1], "[   5.0s]") {
		t.Errorf("line %q, want %q", lines[1], want)
	}
	if !strings.Contains(lines[2], "10/10 done") || !strings.HasSuffix(lines[2], "finished in 7s") {
		t.Errorf("last line %q", lines[2])
	}
	if strings.ContainsRune(buf.String(), '\x1b') {
		t.Errorf("escape sequences in plain log output: %q", buf.String())
	}
}

func TestDisplayBar(t *testing.T) {
	var buf syncBuffer
	d := NewDisplay(&buf, DisplayBar, 0)
	track := d.Track("streamgate")
	track(sampleProgress(4, time.Second, false))
	track(sampleProgress(10, 2*time.Second, true))
	d.Close()
	out := buf.String()
	for _, want := range []string{"streamgate", "10/10", "812 tok/s", "output_tokens 97%", "3 rate-limited", "5 retries"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q: %q", want, out)
		}
	}
}

func TestDisplayBarLeftUnfinished(t *testing.T) {
	var buf syncBuffer
	d := NewDisplay(&buf, DisplayBar, 0)
	d.Track("naive")(sampleProgress(3, time.Second, false))
	d.Track("other") // never reports
	done := make(chan struct{})
	go func() { d.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs on a bar that never finished")
	}
	if !strings.Contains(buf.String(), "3/10") {
		t.Errorf("bar output %q", buf.String())
	}
}

func TestDisplayOff(t *testing.T) {
	var buf syncBuffer
	d := NewDisplay(&buf, DisplayOff, 0)
	d.Track("x")(sampleProgress(10, time.Second, true))
	d.Close()
	if buf.String() != "" {
		t.Fatalf("output %q", buf.String())
	}
}

func TestParseDisplayMode(t *testing.T) {
	for in, want := range map[string]DisplayMode{"": DisplayAuto, "auto": DisplayAuto, "BAR": DisplayBar, "log": DisplayLog, "off": DisplayOff} {
		if got, err := ParseDisplayMode(in); err != nil || got != want {
			t.Errorf("ParseDisplayMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDisplayMode("fancy"); err == nil {
		t.Error("no error for an unknown mode")
	}
}
