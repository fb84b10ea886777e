package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamgate/streamgate/batch"
	"github.com/streamgate/streamgate/sim"
	"github.com/streamgate/streamgate/timeline"
)

// demoFlags are the `streamgate demo` flags.
type demoFlags struct {
	requests     int
	window       time.Duration
	seed         uint64
	dir          string
	plotPath     string
	timelinePath string
	progress     string
	logInterval  time.Duration
	naive        bool
	real         bool
	model        string
}

// Demo defaults: a Tier-1-like account whose "minute" lasts demoWindow,
// and a workload sized so the streamgate run takes about a minute.
const (
	demoRequests  = 90
	demoWindow    = 10 * time.Second
	demoMaxTokens = 2048
	demoModel     = "claude-sonnet-4-5"
	demoRealModel = "claude-haiku-4-5"
)

func newDemoCmd(e *env) *cobra.Command {
	f := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a sample batch on the embedded simulator, naive retries vs streamgate, with a summary and a plot",
		Long: `demo needs no API key and no network: it starts the embedded simulator with
Tier-1-like limits (50 requests, 30,000 input and 8,000 output tokens per
"minute", the minute scaled to --window so the demo takes about a minute),
generates a workload of mixed answer lengths, and runs it twice at the same
time on two API keys (two separate budgets):

  naive       the usual "before": every request at once, no rate-limit
              headers read, a fixed 1 s retry delay, a broken stream retried
              from scratch, again and again;
  streamgate  streamgate batch: admission against the learned budget,
              retry-after honoured, output charged live, resumption.

Naive gets the time streamgate needs for the whole workload: when streamgate
has finished, naive is stopped and what it has not finished is counted.

It shows progress, then both runs side by side, streamgate's summary (with
the theoretical minimum for the workload), checks every answer against the
simulator's deterministic full answer, and writes a plot of budget
remaining and throughput over time.

With --real and ANTHROPIC_API_KEY set, the streamgate run (a smaller
workload, model claude-haiku-4-5 unless --model) goes to the real API
(ANTHROPIC_BASE_URL if set) instead; add --naive to run the baseline too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("naive") {
				f.naive = !f.real
			}
			if f.real && !cmd.Flags().Changed("requests") {
				f.requests = 12
			}
			if f.real && !cmd.Flags().Changed("window") {
				f.window = time.Minute
			}
			return runDemo(cmd.Context(), e, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.requests, "requests", demoRequests, "number of requests in the workload")
	fl.DurationVar(&f.window, "window", demoWindow, "length of the simulated rate-limit \"minute\"")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the workload's mix of lengths")
	fl.StringVar(&f.dir, "dir", "", "directory for the workload, results, timeline and plot (default: a new temporary directory)")
	fl.StringVar(&f.plotPath, "plot", "", "plot file (default DIR/streamgate-demo.png; \"-\" for none)")
	fl.StringVar(&f.timelinePath, "timeline", "", "timeline file (default DIR/timeline.jsonl)")
	fl.StringVar(&f.progress, "progress", "auto", "progress display: auto, bar, log or off")
	fl.DurationVar(&f.logInterval, "log-interval", batch.DefaultLogInterval, "interval between progress lines off a terminal")
	fl.BoolVar(&f.naive, "naive", true, "also run the naive baseline (default on, off with --real)")
	fl.BoolVar(&f.real, "real", false, "send the streamgate run to the real Anthropic API (needs ANTHROPIC_API_KEY)")
	fl.StringVar(&f.model, "model", "", "model of the workload (default claude-sonnet-4-5 on the simulator, claude-haiku-4-5 with --real)")
	return cmd
}

// demoRequest is one request of the generated workload.
type demoRequest struct {
	id     string
	prompt string
	tokens int
}

// demoWorkload generates n requests with a mix of answer lengths: most
// between 40 and 600 tokens, one in eight long (900 to 1,800), and prompts
// of varied size. On the simulator the [sim:tokens=N] directive fixes each
// answer's length; on a real model the prompt asks for about that many
// words.
func demoWorkload(n int, seed uint64, real bool) []demoRequest {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	topics := []string{"token buckets", "rate limits", "rivers", "lanterns", "orchards", "harbors", "copper", "bridges"}
	reqs := make([]demoRequest, n)
	for i := range reqs {
		tokens := 40 + rng.IntN(560)
		if rng.IntN(8) == 0 {
			tokens = 900 + rng.IntN(900)
		}
		topic := topics[rng.IntN(len(topics))]
		context := strings.Repeat("Some background for the answer. ", rng.IntN(40))
		var p string
		if real {
			words := max(20, tokens*3/4/4) // keep the real run small
			tokens = words * 2
			p = fmt.Sprintf("Write about %d words about %s. %s", words, topic, context)
		} else {
			p = fmt.Sprintf("[sim:tokens=%d] Request %d: write about %s. %s", tokens, i, topic, context)
		}
		reqs[i] = demoRequest{id: fmt.Sprintf("demo-%03d", i), prompt: strings.TrimSpace(p), tokens: tokens}
	}
	return reqs
}

// writeDemoWorkload writes reqs as Message Batches lines.
func writeDemoWorkload(path, model string, reqs []demoRequest) error {
	var b bytes.Buffer
	for _, r := range reqs {
		line, err := json.Marshal(map[string]any{
			"custom_id": r.id,
			"params": map[string]any{
				"model":      model,
				"max_tokens": demoMaxTokens,
				"messages":   []map[string]any{{"role": "user", "content": r.prompt}},
			},
		})
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// demoRun is one strategy's run in the demo.
type demoRun struct {
	name     string
	strategy batch.Strategy
	out      string
	sum      batch.Summary
	err      error
	verified int  // succeeded answers equal to the simulator's full answer
	stopped  bool // naive was stopped when streamgate had finished
}

// naiveMaxAttempts lets the naive run retry as an application loop would:
// until it is stopped.
const naiveMaxAttempts = 1 << 20

func runDemo(ctx context.Context, e *env, f *demoFlags) error {
	if f.requests < 1 {
		return fmt.Errorf("demo: --requests must be at least 1")
	}
	if f.window <= 0 {
		return fmt.Errorf("demo: --window must be positive")
	}
	mode, err := batch.ParseDisplayMode(f.progress)
	if err != nil {
		return err
	}
	dir := f.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "streamgate-demo-"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	model := f.model
	if model == "" {
		model = demoModel
		if f.real {
			model = demoRealModel
		}
	}
	reqs := demoWorkload(f.requests, f.seed, f.real)
	in := filepath.Join(dir, "requests.jsonl")
	if err := writeDemoWorkload(in, model, reqs); err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	baseURL, keys, gen, stop, err := demoUpstream(f)
	if err != nil {
		return err
	}
	defer stop()

	tlPath := f.timelinePath
	if tlPath == "" {
		tlPath = filepath.Join(dir, "timeline.jsonl")
	}
	tlFile, err := os.Create(tlPath)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer tlFile.Close()
	var tlBuf bytes.Buffer
	rec := timeline.NewRecorder(io.MultiWriter(tlFile, &tlBuf))

	runs := []*demoRun{{name: "streamgate", strategy: batch.Streamgate}}
	if f.naive {
		runs = append([]*demoRun{{name: "naive", strategy: batch.Naive}}, runs...)
	}
	w := e.stdout
	if f.real {
		fmt.Fprintf(w, "streamgate demo: %d requests (%s) to the real API at %s\n", len(reqs), model, baseURL)
	} else {
		fmt.Fprintf(w, "streamgate demo: %d requests with mixed answer lengths (%s) on the embedded simulator\n", len(reqs), outputRange(reqs))
		fmt.Fprintf(w, "limits per key: 50 requests, 30,000 input and 8,000 output tokens per \"minute\" of %s (Tier 1, time-scaled)\n", f.window)
	}
	if f.naive {
		fmt.Fprintf(w, "running naive (the usual retry loop) and streamgate at the same time, on separate keys;\n")
		fmt.Fprintf(w, "naive is stopped when streamgate has finished\n")
	}
	fmt.Fprintf(w, "files in %s\n\n", dir)

	disp := batch.NewDisplay(w, mode, f.logInterval)
	// The naive run gets the time streamgate needs for the whole workload:
	// when streamgate is done, whatever naive has not finished is left.
	naiveCtx, stopNaive := context.WithCancel(ctx)
	defer stopNaive()
	var wg sync.WaitGroup
	for i, r := range runs {
		r.out = filepath.Join(dir, "results-"+r.name+".jsonl")
		if err := os.Remove(r.out); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("demo: %w", err)
		}
		cfg := batch.Config{
			InPath: in, OutPath: r.out, BaseURL: baseURL, APIKey: keys[i%len(keys)],
			Strategy: r.strategy, Window: f.window, Timeline: rec, Name: r.name,
			OnProgress: disp.Track(fmt.Sprintf("%-10s", r.name)),
		}
		runCtx := ctx
		if r.strategy == batch.Naive {
			runCtx = naiveCtx
			cfg.MaxAttempts = naiveMaxAttempts
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sum, r.err = batch.Run(runCtx, cfg)
			if r.strategy == batch.Streamgate {
				stopNaive()
			}
			r.stopped = r.strategy == batch.Naive && r.sum.Pending > 0 && naiveCtx.Err() != nil && ctx.Err() == nil
		}()
	}
	wg.Wait()
	disp.Close()
	if err := rec.Flush(); err != nil {
		return err
	}
	for _, r := range runs {
		if r.err != nil && !errors.Is(r.err, batch.ErrIncomplete) {
			return fmt.Errorf("demo: %s run: %w", r.name, r.err)
		}
		if gen != nil {
			if r.verified, err = verifyDemo(r.out, reqs, *gen); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(w)
	writeComparison(w, runs, len(reqs), gen != nil)
	fmt.Fprintln(w)
	sg := runs[len(runs)-1]
	if err := sg.sum.WriteText(w); err != nil {
		return err
	}
	if f.plotPath != "-" {
		plot := f.plotPath
		if plot == "" {
			plot = filepath.Join(dir, "streamgate-demo.png")
		}
		tl, err := timeline.Read(&tlBuf)
		if err == nil {
			err = timeline.SavePNG(plot, tl, timeline.PlotOptions{Title: "streamgate demo"})
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nplot:     %s\n", plot)
	}
	fmt.Fprintf(w, "timeline: %s\n", tlPath)
	return ctx.Err()
}

// demoUpstream starts the embedded simulator (or, with --real, names the
// real API) and returns the base URL, the API keys for the runs (one per
// run so they do not share a budget), the generator to verify answers
// with (nil for the real API) and a stop function.
func demoUpstream(f *demoFlags) (string, []string, *sim.Generator, func(), error) {
	if f.real {
		key := os.Getenv("ANTHROPIC_API_KEY")
		if key == "" {
			return "", nil, nil, nil, fmt.Errorf("demo: --real needs ANTHROPIC_API_KEY")
		}
		base := os.Getenv("ANTHROPIC_BASE_URL")
		if base == "" {
			base = batch.DefaultAnthropicBaseURL
		}
		return base, []string{key}, nil, func() {}, nil
	}
	cfg := sim.Tier1()
	cfg.Window = f.window
	// Streams keep the pace they would have in a real minute, so each
	// draws the same share of the budget.
	cfg.TokensPerSecond = 60 * float64(time.Minute) / float64(f.window)
	cfg.NoPrefillModels = []string{}
	s := sim.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return "", nil, nil, nil, fmt.Errorf("demo: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	stop := func() {
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	g := s.Generator()
	return "http://" + ln.Addr().String(), []string{"sk-demo-naive", "sk-demo-streamgate"}, &g, stop, nil
}

// verifyDemo counts the succeeded results whose text is exactly the
// simulator's full answer to the request.
func verifyDemo(path string, reqs []demoRequest, g sim.Generator) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("demo: %w", err)
	}
	defer f.Close()
	rf, err := batch.ReadResults(f)
	if err != nil {
		return 0, err
	}
	want := map[string]string{}
	for _, r := range reqs {
		want[r.id] = g.Text(sim.Conversation{Messages: []sim.Message{{Role: "user", Text: r.prompt}}})
	}
	n := 0
	for _, r := range rf.Results {
		if r.Status != batch.Succeeded {
			continue
		}
		var m struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if json.Unmarshal(r.Message, &m) != nil {
			continue
		}
		var text strings.Builder
		for _, c := range m.Content {
			text.WriteString(c.Text)
		}
		if w, ok := want[r.CustomID]; ok && text.String() == w {
			n++
		}
	}
	return n, nil
}

// writeComparison prints the runs side by side.
func writeComparison(w io.Writer, runs []*demoRun, total int, verified bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', tabwriter.AlignRight)
	row := func(label string, cell func(*demoRun) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, r := range runs {
			fmt.Fprintf(tw, "%s\t", cell(r))
		}
		fmt.Fprintln(tw)
	}
	row("", func(r *demoRun) string { return r.name })
	row("completed", func(r *demoRun) string { return fmt.Sprintf("%d/%d", r.sum.Succeeded, total) })
	row("makespan", func(r *demoRun) string {
		m := r.sum.Makespan.Round(100 * time.Millisecond).String()
		if r.stopped {
			return "stopped at " + m
		}
		return m
	})
	row("rate-limit errors (429s)", func(r *demoRun) string { return fmt.Sprint(r.sum.RateLimited) })
	row("mid-stream failures", func(r *demoRun) string { return fmt.Sprint(r.sum.MidStreamFailures) })
	row("retries", func(r *demoRun) string { return fmt.Sprint(r.sum.Retries) })
	row("wasted output tokens", func(r *demoRun) string { return fmt.Sprint(r.sum.WastedOutputTokens) })
	row("unfinished (left for a rerun)", func(r *demoRun) string { return fmt.Sprint(r.sum.Pending) })
	if verified {
		row("answers checked complete", func(r *demoRun) string { return fmt.Sprintf("%d/%d", r.verified, r.sum.Succeeded) })
	}
	tw.Flush()
	sg := runs[len(runs)-1]
	if sg.sum.Succeeded == total && sg.sum.TheoreticalMin > 0 {
		fmt.Fprintf(w, "theoretical minimum for the whole workload: %s (streamgate: %.2fx)\n",
			sg.sum.TheoreticalMin.Round(100*time.Millisecond), sg.sum.Makespan.Seconds()/sg.sum.TheoreticalMin.Seconds())
	}
}

func outputRange(reqs []demoRequest) string {
	lo, hi, sum := reqs[0].tokens, reqs[0].tokens, 0
	for _, r := range reqs {
		lo, hi, sum = min(lo, r.tokens), max(hi, r.tokens), sum+r.tokens
	}
	return fmt.Sprintf("%d to %d output tokens, %d in all", lo, hi, sum)
}
