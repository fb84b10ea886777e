package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/sim"
)

// Environment of a client process started by TestBurstFromSeveralProcesses.
const (
	envClientURL     = "STREAMGATE_PROXY_TEST_CLIENT_URL"
	envClientID      = "STREAMGATE_PROXY_TEST_CLIENT_ID"
	envClientStreams = "STREAMGATE_PROXY_TEST_CLIENT_STREAMS"
)

// clientResult is one request's outcome, reported by a client process as
// a JSON line.
type clientResult struct {
	Prompt string `json:"prompt"`
	Text   string `json:"text"`
	Err    string `json:"err,omitempty"`
}

func burstPrompt(client, i int) string {
	return fmt.Sprintf("[sim:tokens=40] burst client %d request %d", client, i)
}

// runClientProcess runs the client side of the burst test when the test
// binary was started as a client process, and reports whether it was.
func runClientProcess() bool {
	url := os.Getenv(envClientURL)
	if url == "" {
		return false
	}
	id, _ := strconv.Atoi(os.Getenv(envClientID))
	n, _ := strconv.Atoi(os.Getenv(envClientStreams))
	// An unmodified SDK with its default retries, as a user runs it.
	client := anthropic.NewClient(aoption.WithBaseURL(url), aoption.WithAPIKey("sk-ant-burst-shared-key"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results := make([]clientResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := burstPrompt(id, i)
			msg, err := anthropicStream(ctx, client, messageParams(p))
			results[i] = clientResult{Prompt: p, Text: messageText(msg)}
			if err != nil {
				results[i].Err = err.Error()
			}
		})
	}
	wg.Wait()
	enc := json.NewEncoder(os.Stdout)
	for _, r := range results {
		_ = enc.Encode(r)
	}
	return true
}

// TestBurstFromSeveralProcesses starts several client processes that
// open streams at once on one key through one proxy. The proxy learns the
// key's limits from the first response and schedules the rest: every
// request completes and the simulator never has to refuse one.
func TestBurstFromSeveralProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts client processes")
	}
	const processes, streams = 4, 5
	sc := fastSim()
	sc.Anthropic.RPM = 10 // 20 requests against a 10-request bucket refilled 1 per 0.6s
	sc.Anthropic.OTPM = 2_000
	// Default admission (one stream until limits are known), with a quick
	// opening rate so the test stays fast.
	st := startStack(t, sc, Config{Gate: gate.Config{InitialOpenRate: 20, MaxOpenRate: 100}})
	var (
		mu  sync.Mutex
		out []clientResult
		wg  sync.WaitGroup
	)
	for p := range processes {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envClientURL+"="+st.url, envClientID+"="+strconv.Itoa(p), envClientStreams+"="+strconv.Itoa(streams))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Errorf("client %d: %v: %s", p, err, stderr.String())
				return
			}
			sc := bufio.NewScanner(&stdout)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var r clientResult
				if json.Unmarshal(sc.Bytes(), &r) == nil && r.Prompt != "" {
					mu.Lock()
					out = append(out, r)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(out) != processes*streams {
		t.Fatalf("%d results, want %d", len(out), processes*streams)
	}
	gen := st.sim.Generator()
	for _, r := range out {
		if r.Err != "" {
			t.Errorf("%s: %s", r.Prompt, r.Err)
		} else if want := gen.Text(conv(r.Prompt)); r.Text != want {
			t.Errorf("%s: text %q, want %q", r.Prompt, r.Text, want)
		}
	}
	if err := st.sim.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	upstream := 0
	for _, rec := range st.sim.Log() {
		if rec.Endpoint != "messages" {
			continue
		}
		upstream++
		if rec.Status != http.StatusOK || rec.End != sim.EndComplete {
			t.Errorf("simulator answered %d (%s, dimension %q): the burst exceeded its limits", rec.Status, rec.End, rec.Dimension)
		}
	}
	if upstream != processes*streams {
		t.Errorf("simulator saw %d requests, want %d", upstream, processes*streams)
	}
}
