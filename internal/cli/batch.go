package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/batch"
	"github.com/streamgate/streamgate/sim"
	"github.com/streamgate/streamgate/timeline"
)

// batchFlags are the `streamgate batch` flags.
type batchFlags struct {
	in, out        string
	baseURL        string
	apiKeyEnv      string
	skipInvalid    bool
	dryRun         bool
	expectedOutput int64
	tier           string
	rpm, itpm      int64
	otpm, tpm      int64
	window         time.Duration
	concurrency    int
	maxAttempts    int
	strategy       string
	progress       string
	logInterval    time.Duration
	timelinePath   string
	plotPath       string
}

func newBatchCmd(e *env) *cobra.Command {
	f := &batchFlags{}
	cmd := &cobra.Command{
		Use:   "batch --in requests.jsonl --out results.jsonl",
		Short: "Run a JSONL file of requests through streamgate, resumably, one result per request",
		Long: `batch streams every request of a JSONL file through streamgate (admission
against the learned rate-limit budget, retries honouring retry-after,
resumption of interrupted streams) and appends one result line per request
to --out as it completes, synced to disk.

Input: Anthropic Message Batches lines {"custom_id", "params"} or OpenAI
Batch lines {"custom_id", "method", "url": "/v1/chat/completions", "body"}.
Output: the matching provider's batch result lines, with the message
assembled from the stream.

Rerunning with the same --out resumes: requests already in it are skipped,
a torn last line left by a killed run is removed, so every custom_id ends
with exactly one result. Malformed lines and duplicate custom_ids are
reported with their line numbers before anything is sent (the run is
refused unless --skip-invalid). Requests that keep failing transiently are
left without a result (exit status 1) for a rerun.

The API key is read from the environment (ANTHROPIC_API_KEY or
OPENAI_API_KEY by the input's format, or --api-key-env); the base URL from
--base-url, else ANTHROPIC_BASE_URL / OPENAI_BASE_URL, else the provider's.

--dry-run estimates the tokens per dimension and the time the batch needs
under the limits (--tier, or --rpm/--itpm/--otpm/--tpm), names the binding
dimension and compares with the provider's asynchronous batch API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBatch(cmd.Context(), e, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in, "in", "", "input JSONL file (\"-\" for standard input)")
	fl.StringVar(&f.out, "out", "", "results JSONL file (created, or resumed if it exists)")
	fl.StringVar(&f.baseURL, "base-url", "", "API base URL (default from ANTHROPIC_BASE_URL / OPENAI_BASE_URL, else the provider's)")
	fl.StringVar(&f.apiKeyEnv, "api-key-env", "", "environment variable holding the API key (default ANTHROPIC_API_KEY or OPENAI_API_KEY)")
	fl.BoolVar(&f.skipInvalid, "skip-invalid", false, "run the valid lines of an input with invalid ones (listed in the summary)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "estimate tokens and time under the limits; send nothing")
	fl.Int64Var(&f.expectedOutput, "expected-output", 0, "dry run: expected output tokens per request (default: max_tokens, an upper bound)")
	fl.StringVar(&f.tier, "tier", "tier1", "limits assumed by the dry run: tier1..tier4")
	fl.Int64Var(&f.rpm, "rpm", 0, "requests per window (dry run; also used before headers report the real limit)")
	fl.Int64Var(&f.itpm, "itpm", 0, "input tokens per window (as --rpm)")
	fl.Int64Var(&f.otpm, "otpm", 0, "output tokens per window (as --rpm)")
	fl.Int64Var(&f.tpm, "tpm", 0, "combined tokens per window (as --rpm; OpenAI's TPM)")
	fl.DurationVar(&f.window, "window", time.Minute, "the rate-limit window of the limits")
	fl.IntVar(&f.concurrency, "concurrency", batch.DefaultConcurrency, "most requests in flight")
	fl.IntVar(&f.maxAttempts, "max-attempts", batch.DefaultMaxAttempts, "attempts per request before leaving it for a rerun")
	fl.StringVar(&f.strategy, "strategy", "streamgate", "streamgate, or naive (the baseline: all at once, fixed 1s retries)")
	fl.StringVar(&f.progress, "progress", "auto", "progress display: auto (a bar on a terminal, log lines otherwise), bar, log or off")
	fl.DurationVar(&f.logInterval, "log-interval", batch.DefaultLogInterval, "interval between progress lines off a terminal")
	fl.StringVar(&f.timelinePath, "timeline", "", "record the run (events, budget levels, progress) to this JSONL file for streamgate report")
	fl.StringVar(&f.plotPath, "plot", "", "write a PNG of budget remaining and throughput over time")
	return cmd
}

func runBatch(ctx context.Context, e *env, f *batchFlags) error {
	if f.in == "" {
		return fmt.Errorf("batch: --in is required")
	}
	var in io.Reader
	if f.in == "-" {
		in = os.Stdin
	}
	mode, err := batch.ParseDisplayMode(f.progress)
	if err != nil {
		return err
	}
	wl, err := batch.ReadWorkload(batch.Config{InPath: f.in, In: in})
	if err != nil {
		return err
	}
	if len(wl.Invalid) > 0 {
		verb := "refusing the input (use --skip-invalid to run the valid lines)"
		if f.skipInvalid {
			verb = "skipping them"
		}
		fmt.Fprintf(e.stderr, "streamgate batch: %d invalid line(s), %s:\n", len(wl.Invalid), verb)
		for _, l := range wl.Invalid {
			fmt.Fprintf(e.stderr, "  %s\n", l.Error())
		}
		if !f.skipInvalid {
			return &batch.InputError{Lines: wl.Invalid}
		}
	}
	limits, err := f.limits(wl.Format)
	if err != nil {
		return err
	}
	if f.dryRun {
		plan := batch.Estimate(wl, batch.PlanConfig{Limits: limits, Window: f.window, OutputTokens: f.expectedOutput})
		return plan.WriteText(e.stdout)
	}
	if f.out == "" {
		return fmt.Errorf("batch: --out is required")
	}
	strategy := batch.Streamgate
	switch f.strategy {
	case "streamgate", "":
	case "naive":
		strategy = batch.Naive
	default:
		return fmt.Errorf("batch: unknown --strategy %q (want streamgate or naive)", f.strategy)
	}
	keyEnv, baseEnv := "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"
	if wl.Format == batch.OpenAI {
		keyEnv, baseEnv = "OPENAI_API_KEY", "OPENAI_BASE_URL"
	}
	if f.apiKeyEnv != "" {
		keyEnv = f.apiKeyEnv
	}
	baseURL := f.baseURL
	if baseURL == "" {
		baseURL = os.Getenv(baseEnv)
	}
	cfg := batch.Config{
		Workload: &wl, OutPath: f.out, SkipInvalid: f.skipInvalid,
		BaseURL: baseURL, APIKey: os.Getenv(keyEnv), Strategy: strategy,
		Window: f.window, Limits: f.explicitLimits(), Concurrency: f.concurrency, MaxAttempts: f.maxAttempts,
	}
	var tlBuf bytes.Buffer
	var tlFile *os.File
	if f.timelinePath != "" || f.plotPath != "" {
		var w io.Writer = &tlBuf
		if f.timelinePath != "" {
			tlFile, err = os.Create(f.timelinePath)
			if err != nil {
				return fmt.Errorf("batch: %w", err)
			}
			defer tlFile.Close()
			w = io.MultiWriter(tlFile, &tlBuf)
		}
		cfg.Timeline = timeline.NewRecorder(w)
	}
	disp := batch.NewDisplay(e.stderr, mode, f.logInterval)
	cfg.OnProgress = disp.Track(strategy.String())
	sum, runErr := batch.Run(ctx, cfg)
	disp.Close()
	if errors.Is(runErr, batch.ErrNoAPIKey) {
		return fmt.Errorf("batch: no API key: set %s (or --api-key-env)", keyEnv)
	}
	var ie *batch.InputError
	if errors.As(runErr, &ie) {
		return runErr
	}
	if sum.Start.IsZero() && runErr != nil {
		return runErr
	}
	if err := sum.WriteText(e.stdout); err != nil {
		return err
	}
	if f.plotPath != "" && runErr == nil || f.plotPath != "" && errors.Is(runErr, batch.ErrIncomplete) {
		tl, err := timeline.Read(&tlBuf)
		if err == nil {
			err = timeline.SavePNG(f.plotPath, tl, timeline.PlotOptions{Title: "streamgate batch"})
		}
		if err != nil && !errors.Is(err, timeline.ErrEmpty) {
			return err
		}
		if err == nil {
			fmt.Fprintf(e.stdout, "  plot:            %s\n", f.plotPath)
		}
	}
	if tlFile != nil {
		if err := tlFile.Close(); err != nil {
			return fmt.Errorf("batch: timeline: %w", err)
		}
		fmt.Fprintf(e.stdout, "  timeline:        %s\n", f.timelinePath)
	}
	return runErr
}

// limits returns the dry run's limits: the tier's for the format, with the
// explicit flags on top.
func (f *batchFlags) limits(format batch.Format) (streamgate.Limits, error) {
	cfg, ok := sim.TierByName(f.tier)
	if !ok {
		return streamgate.Limits{}, fmt.Errorf("batch: unknown --tier %q (want tier1..tier4)", f.tier)
	}
	l := streamgate.Limits{Requests: cfg.Anthropic.RPM, InputTokens: cfg.Anthropic.ITPM, OutputTokens: cfg.Anthropic.OTPM}
	if format == batch.OpenAI {
		l = streamgate.Limits{Requests: cfg.OpenAI.RPM, Tokens: cfg.OpenAI.TPM}
	}
	x := f.explicitLimits()
	if x.Requests > 0 {
		l.Requests = x.Requests
	}
	if x.InputTokens > 0 {
		l.InputTokens = x.InputTokens
	}
	if x.OutputTokens > 0 {
		l.OutputTokens = x.OutputTokens
	}
	if x.Tokens > 0 {
		l.Tokens = x.Tokens
	}
	return l, nil
}

func (f *batchFlags) explicitLimits() streamgate.Limits {
	return streamgate.Limits{Requests: f.rpm, InputTokens: f.itpm, OutputTokens: f.otpm, Tokens: f.tpm}
}
