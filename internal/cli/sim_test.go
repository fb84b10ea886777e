package cli

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestSimHelpDocumentsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"sim", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	help := out.String()
	n := 0
	newSimCmd(&env{}).Flags().VisitAll(func(f *pflag.Flag) {
		n++
		if !strings.Contains(help, "--"+f.Name+" ") && !strings.Contains(help, "--"+f.Name+"\n") {
			t.Errorf("--help does not list --%s", f.Name)
		}
		if strings.TrimSpace(f.Usage) == "" {
			t.Errorf("--%s has no description", f.Name)
		}
	})
	if n < 30 {
		t.Fatalf("only %d flags", n)
	}
	for _, want := range []string{"x-sim-fault", "+fault=", "/sim/stats", "drop-midstream"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
}

// firstLine is a goroutine-safe writer that hands over its first line.
type firstLine struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
	ch   chan string
}

func (w *firstLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if i := bytes.IndexByte(w.buf.Bytes(), '\n'); i >= 0 {
		line := string(w.buf.Bytes()[:i])
		w.once.Do(func() { w.ch <- line })
	}
	return len(p), nil
}

func (w *firstLine) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestSimServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &firstLine{ch: make(chan string, 1)}
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sim", "--listen", "127.0.0.1:0", "--window", "6s", "--rpm", "2", "--tokens-per-second", "-1"}, out, &errb)
	}()
	var line string
	select {
	case line = <-out.ch:
	case code := <-done:
		t.Fatalf("exited %d before listening: %s", code, errb.String())
	}
	url := strings.TrimPrefix(line, "streamgate sim listening on ")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}
	statuses := []int{}
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("x-api-key", "k")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("anthropic-ratelimit-requests-limit") != "2" {
			t.Fatalf("requests limit header %q", resp.Header.Get("anthropic-ratelimit-requests-limit"))
		}
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 429 {
		t.Fatalf("statuses %v, want 200 200 429 with --rpm 2", statuses)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not stop after cancel")
	}
}

func TestSimRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--tier", "tier9"},
		{"sim", "--faults", "bogus=0.1"},
		{"sim", "--faults", "529=2"},
		{"sim", "--window", "0s"},
		{"sim", "--tokens-per-second", "0"},
		{"sim", "--listen", "256.0.0.1:99999"},
	} {
		t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Run(context.Background(), args, &out, &errb); code == 0 {
				t.Fatalf("exit 0 for %v", args)
			}
			if !strings.Contains(errb.String(), "sim") {
				t.Fatalf("stderr %q does not explain", errb.String())
			}
		})
	}
}
