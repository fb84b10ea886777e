// Package interop runs the official Node SDKs (@anthropic-ai/sdk and
// openai, from interop/node) against streamgate proxy in front of the
// simulator. The Go SDKs are exercised in package proxy itself.
package interop

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/metrics"
	"github.com/streamgate/streamgate/proxy"
	"github.com/streamgate/streamgate/retry"
	"github.com/streamgate/streamgate/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type interopCase struct {
	Prompt string `json:"prompt"`
	Text   string `json:"text"`
	Tokens int    `json:"tokens"`
}

// faultIDs are the faults test.mjs injects; each must have fired.
var faultIDs = []string{"node-a-529", "node-a-429", "node-a-500", "node-a-reset", "node-a-mid", "node-o-429", "node-o-503", "node-o-reset", "node-o-mid"}

func TestNodeSDKs(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the Node SDK interop test needs Node.js (.ci/run installs it)")
	}
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"@anthropic-ai/sdk", "openai"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("%s is not installed in %s: run `npm ci` there (make test does)", pkg, dir)
		}
	}

	s := sim.New(sim.Config{
		Window:          6 * time.Second,
		TokensPerSecond: 20_000,
		Anthropic:       sim.AnthropicLimits{RPM: 1000, ITPM: 1_000_000, OTPM: 1_000_000},
		OpenAI:          sim.OpenAILimits{RPM: 1000, TPM: 1_000_000},
	})
	up := httptest.NewServer(s)
	defer func() { up.Close(); _ = s.Close() }()
	var logs strings.Builder
	logw := &lockedWriter{w: &logs}
	p, err := proxy.New(proxy.Config{
		Anthropic: proxy.Upstream{URL: up.URL},
		OpenAI:    proxy.Upstream{URL: up.URL},
		Window:    6 * time.Second,
		Logger:    slog.New(slog.NewTextHandler(logw, nil)),
		Metrics:   metrics.New(metrics.WithoutRuntimeMetrics()),
		// Quick retries keep the test fast; the default backoff starts at 1s.
		TransportOptions: []streamgate.Option{streamgate.WithRetryPolicy(retry.Policy{BaseDelay: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	gen := s.Generator()
	cases := map[string]interopCase{}
	add := func(name string, tokens int) {
		prompt := "[sim:tokens=" + itoa(tokens) + "] node interop " + name
		cases[name] = interopCase{Prompt: prompt, Text: gen.Text(sim.Conversation{Messages: []sim.Message{{Role: "user", Text: prompt}}}), Tokens: tokens}
	}
	for _, name := range []string{"anthropic-create", "anthropic-stream", "anthropic-raw", "anthropic-midstream",
		"anthropic-fault-529", "anthropic-fault-429;retry=0.05", "anthropic-fault-500", "anthropic-fault-reset",
		"openai-create", "openai-stream", "openai-midstream",
		"openai-fault-429;retry=0.05", "openai-fault-503", "openai-fault-reset"} {
		add(name, 60)
	}
	count := "[sim:tokens=5] node interop count tokens"
	cases["anthropic-count"] = interopCase{Prompt: count, Tokens: sim.InputTokens(sim.Conversation{Messages: []sim.Message{{Role: "user", Text: count}}})}
	casesJSON, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stop()
	cmd := exec.CommandContext(runCtx, node, "--test", "test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"STREAMGATE_PROXY_URL=http://"+ln.Addr().String(),
		"STREAMGATE_INTEROP_CASES="+string(casesJSON),
		"NO_COLOR=1",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test test.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("node tests failed: %v\nproxy log:\n%s", err, logs.String())
	}
	if !strings.Contains(string(out), "# fail 0") {
		t.Fatalf("node test output has no '# fail 0' summary")
	}
	if err := s.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range faultIDs {
		fired := false
		for _, rec := range s.Log() {
			if strings.Contains(rec.Fault, ";id="+id) {
				fired = true
			}
		}
		if !fired {
			t.Errorf("fault %s never fired: the Node test did not reach the simulator through the proxy", id)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
