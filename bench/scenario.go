package bench

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/streamgate/streamgate/sim"
)

// Saturate is benchmarks.md's "saturate" scenario: a backlog of n streaming
// requests with mixed prompt and output lengths against Tier-1-like limits
// (50 RPM, 30,000 ITPM, 8,000 OTPM) over a window scaled to window, so the
// output budget binds. seed varies the mix.
func Saturate(n int, window time.Duration, seed uint64) Scenario {
	cfg := sim.Tier1()
	cfg.Window = window
	// The simulator's pace scales with the window, so a stream draws the
	// same share of the budget as it would in a real minute.
	cfg.TokensPerSecond = 60 * float64(time.Minute) / float64(window)
	cfg.NoPrefillModels = []string{}
	g := sim.Generator{Seed: cfg.Seed}
	rng := rand.New(rand.NewPCG(seed, 1))
	reqs := make([]Request, n)
	for i := range reqs {
		tokens := 50 + rng.IntN(650)
		if rng.IntN(10) == 0 {
			tokens = 800 + rng.IntN(700) // a few long generations
		}
		pad := rng.IntN(400)
		prompt := fmt.Sprintf("[sim:tokens=%d] Request %d of the backlog. %s", tokens, i, filler(pad))
		reqs[i] = Request{Prompt: prompt, MaxTokens: 2048, Want: g.Text(conv(prompt)), Tokens: tokens}
	}
	return Scenario{Name: "saturate", Sim: cfg, Requests: reqs}
}

// filler returns about n words of prompt text.
func filler(n int) string {
	words := []string{"context", "about", "the", "task", "with", "some", "detail", "and", "data"}
	b := make([]byte, 0, n*6)
	for i := range n {
		b = append(b, words[i%len(words)]...)
		b = append(b, ' ')
	}
	return string(b)
}

// LongStreams is benchmarks.md's "long-streams" scenario, the seed
// article's case: n long generations (1,000 to 2,500 tokens, max_tokens
// 3,000) against Tier-1-like limits, so the output budget binds, with
// mid-stream failures injected at random (15% of responses overloaded
// mid-stream, 10% dropped mid-stream).
func LongStreams(n int, window time.Duration, seed uint64) Scenario {
	sc := Saturate(0, window, seed)
	sc.Name = "long-streams"
	sc.Sim.Faults = sim.FaultRates{Seed: seed, Rates: map[string]float64{"529-midstream": 0.15, "drop-midstream": 0.10}}
	g := sim.Generator{Seed: sc.Sim.Seed}
	rng := rand.New(rand.NewPCG(seed, 3))
	sc.Requests = make([]Request, n)
	for i := range sc.Requests {
		tokens := 1000 + rng.IntN(1500)
		prompt := fmt.Sprintf("[sim:tokens=%d] Long generation %d: write the whole report.", tokens, i)
		sc.Requests[i] = Request{Prompt: prompt, MaxTokens: 3000, Want: g.Text(conv(prompt)), Tokens: tokens}
	}
	return sc
}
