package sim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/streamgate/streamgate/sim"
)

// A test mounts the simulator on httptest, sends a request the way an SDK
// would, and reads the rate-limit headers and the deterministic answer.
func Example() {
	s := sim.New(sim.Config{Window: 6 * time.Second, TokensPerSecond: -1})
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close()

	body := `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"[sim:tokens=12] Hello"}]}`
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", "sk-ant-test")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	fmt.Println(resp.StatusCode)
	fmt.Println(resp.Header.Get("anthropic-ratelimit-requests-limit"), resp.Header.Get("anthropic-ratelimit-requests-remaining"))
	fmt.Println(resp.Header.Get("anthropic-ratelimit-output-tokens-limit"), resp.Header.Get("anthropic-ratelimit-output-tokens-remaining"))
	// Output:
	// 200
	// 50 49
	// 8000 8000
}

// The answer is a pure function of the conversation; a prefill continues
// it from exactly where the prefill ends.
func ExampleGenerator_Reply() {
	g := sim.Generator{Seed: 1}
	q := sim.Message{Role: "user", Text: "[sim:tokens=30] Tell me a story."}
	full := g.Text(sim.Conversation{Messages: []sim.Message{q}})

	partial := full[:len(full)/2]
	partial = strings.TrimRight(partial, " \n") // the API rejects a prefill ending in whitespace
	rest := g.Reply(sim.Conversation{Messages: []sim.Message{q, {Role: "assistant", Text: partial}}}, true)

	fmt.Println(len(g.Answer(sim.Conversation{Messages: []sim.Message{q}})))
	fmt.Println(partial+strings.Join(rest, "") == full)
	// Output:
	// 30
	// true
}

func ExampleCountTokens() {
	fmt.Println(sim.CountTokens("Hello, world!")) // Hello , world !
	fmt.Println(sim.CountTokens("東京 🚀"))          // 1 + 1 + (space free) + 2 for the emoji
	// Output:
	// 4
	// 4
}

func ExampleParseFaultSpec() {
	f, err := sim.ParseFaultSpec("drop-midstream;at=40;cut=7;times=2")
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Name, f.At, f.Cut, f.Times)
	_, err = sim.ParseFaultSpec("no-such-fault")
	fmt.Println(err)
	// Output:
	// drop-midstream 40 7 2
	// sim: unknown fault "no-such-fault"
}

func ExampleTier2() {
	cfg := sim.Tier2()
	cfg.Window = 6 * time.Second // a scaled-down minute
	fmt.Println(cfg.Anthropic.RPM, cfg.Anthropic.ITPM, cfg.Anthropic.OTPM, cfg.OpenAI.TPM)
	// Output: 1000 450000 90000 450000
}
