package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamgate/streamgate/sim"
)

// simFlags are the `streamgate sim` flags; zero values mean the simulator's
// defaults.
type simFlags struct {
	listen            string
	tier              string
	rpm, itpm, otpm   int64
	combinedTPM       bool
	tpm               int64
	openaiRPM         int64
	openaiTPM         int64
	openaiLive        bool
	openaiMaxTokens   int
	window            time.Duration
	tokensPerSecond   float64
	firstTokenDelay   time.Duration
	flushInterval     time.Duration
	pingInterval      time.Duration
	minOutput         int
	maxOutput         int
	seed              uint64
	noPrefill         []string
	faults            string
	faultSeed         uint64
	accel             bool
	accelFloor        int
	accelFactor       float64
	accelInterval     time.Duration
	maxHold           time.Duration
	cacheTTL          time.Duration
	contextWindow     int
	validKeys         []string
	logPath           string
	maxLogRecords     int
	statsInterval     time.Duration
	statsSamples      int
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
}

func newSimCmd(e *env) *cobra.Command {
	f := &simFlags{}
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the LLM API simulator (Anthropic and OpenAI compatible, with real rate limiting)",
		Long: `sim serves a local Anthropic Messages API (/v1/messages,
/v1/messages/count_tokens) and OpenAI Chat Completions API
(/v1/chat/completions) that behave like the real services: per-key
continuously refilled RPM/ITPM/OTPM (or TPM) buckets, output tokens drawn as
they stream (a stream that runs the budget dry ends with a rate-limit error
event), the real rate-limit headers, 429s with retry-after, deterministic
answers, and injectable faults.

Point a client at it with ANTHROPIC_BASE_URL=http://ADDR or
OPENAI_BASE_URL=http://ADDR/v1 and any API key. Target a fault at one
request with the header "x-sim-fault: NAME[;at=N][;times=K]" or the model
suffix "+fault=NAME". Fault names: 429, 529, 529-midstream, 500, 502, 503,
reset, drop-midstream, stall-midstream, no-response, slow-first-token,
malformed-event, no-terminal, context-length, content-filter, spend-cap.

The simulator also serves GET /sim/stats, GET /sim/log, POST /sim/reset and
GET /sim/health. Limits of 0 take the tier's value; -1 means unlimited.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			return runSim(cmd.Context(), e, f, cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8788", "address to listen on (port 0 picks a free port)")
	fl.StringVar(&f.tier, "tier", "tier1", "limit preset: tier1, tier2, tier3 or tier4")
	fl.Int64Var(&f.rpm, "rpm", 0, "Anthropic requests per window (0: tier value, -1: unlimited)")
	fl.Int64Var(&f.itpm, "itpm", 0, "Anthropic input tokens per window (0: tier value, -1: unlimited)")
	fl.Int64Var(&f.otpm, "otpm", 0, "Anthropic output tokens per window (0: tier value, -1: unlimited)")
	fl.BoolVar(&f.combinedTPM, "combined-tpm", false, "Anthropic: one tokens bucket for input and output instead of ITPM and OTPM")
	fl.Int64Var(&f.tpm, "tpm", 0, "Anthropic combined tokens per window with --combined-tpm (0: itpm+otpm)")
	fl.Int64Var(&f.openaiRPM, "openai-rpm", 0, "OpenAI requests per window (0: tier value, -1: unlimited)")
	fl.Int64Var(&f.openaiTPM, "openai-tpm", 0, "OpenAI tokens per window (0: tier value, -1: unlimited)")
	fl.BoolVar(&f.openaiLive, "openai-live-output", false, "OpenAI: draw output tokens from TPM as they stream instead of charging max_tokens up front")
	fl.IntVar(&f.openaiMaxTokens, "openai-default-max-tokens", 0, "OpenAI output cap when a request sets none (0: 4096)")
	fl.DurationVar(&f.window, "window", 60*time.Second, "length of the rate-limit \"minute\" (scale down, e.g. 6s, for fast runs)")
	fl.Float64Var(&f.tokensPerSecond, "tokens-per-second", 100, "output tokens generated per second per response (negative: unpaced)")
	fl.DurationVar(&f.firstTokenDelay, "first-token-delay", 0, "delay between the response headers and the first output token")
	fl.DurationVar(&f.flushInterval, "flush-interval", 20*time.Millisecond, "shortest time between two writes of one stream")
	fl.DurationVar(&f.pingInterval, "ping-interval", 10*time.Second, "interval between ping events on long Anthropic streams")
	fl.IntVar(&f.minOutput, "min-output-tokens", 20, "shortest answer, in tokens, for prompts without [sim:tokens=N]")
	fl.IntVar(&f.maxOutput, "max-output-tokens", 400, "longest answer, in tokens, for prompts without [sim:tokens=N]")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the deterministic answers")
	fl.StringSliceVar(&f.noPrefill, "no-prefill-models", sim.DefaultNoPrefillModels, "model patterns (path.Match) that reject assistant prefill; \"none\" for no model")
	fl.StringVar(&f.faults, "faults", "", "random fault rates, e.g. \"529=0.01,drop-midstream=0.02\"")
	fl.Uint64Var(&f.faultSeed, "fault-seed", 1, "seed of the random fault sequence")
	fl.BoolVar(&f.accel, "acceleration", false, "enable the acceleration limit (429s for a sudden ramp of concurrent requests)")
	fl.IntVar(&f.accelFloor, "acceleration-floor", 8, "concurrent requests per key always allowed by the acceleration limit")
	fl.Float64Var(&f.accelFactor, "acceleration-factor", 2, "growth of allowed concurrency per acceleration interval")
	fl.DurationVar(&f.accelInterval, "acceleration-interval", 0, "acceleration time step (0: window/6)")
	fl.DurationVar(&f.maxHold, "max-hold", 0, "longest a stall or no-response fault holds a connection (0: until the client gives up)")
	fl.DurationVar(&f.cacheTTL, "cache-ttl", 5*time.Minute, "prompt-cache entry lifetime")
	fl.IntVar(&f.contextWindow, "context-window", 0, "largest prompt in tokens (0: 200000 Anthropic, 128000 OpenAI)")
	fl.StringSliceVar(&f.validKeys, "valid-keys", nil, "the only API keys accepted (default: any non-empty key)")
	fl.StringVar(&f.logPath, "log", "", "append every request as a JSON line to this file")
	fl.IntVar(&f.maxLogRecords, "max-log-records", 100_000, "request records kept in memory for /sim/log")
	fl.DurationVar(&f.statsInterval, "stats-interval", time.Second, "sampling interval of the bucket series in /sim/stats")
	fl.IntVar(&f.statsSamples, "stats-samples", 600, "samples kept per bucket in /sim/stats")
	fl.DurationVar(&f.readHeaderTimeout, "read-header-timeout", 10*time.Second, "HTTP server: time allowed to read request headers")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 2*time.Minute, "HTTP server: keep-alive idle timeout")
	return cmd
}

// config builds the simulator Config from the flags.
func (f *simFlags) config() (sim.Config, error) {
	cfg, ok := sim.TierByName(f.tier)
	if !ok {
		return sim.Config{}, fmt.Errorf("sim: unknown tier %q (want tier1..tier4)", f.tier)
	}
	override := func(dst *int64, v int64) {
		if v != 0 {
			*dst = v
		}
	}
	override(&cfg.Anthropic.RPM, f.rpm)
	override(&cfg.Anthropic.ITPM, f.itpm)
	override(&cfg.Anthropic.OTPM, f.otpm)
	override(&cfg.OpenAI.RPM, f.openaiRPM)
	override(&cfg.OpenAI.TPM, f.openaiTPM)
	cfg.Anthropic.CombinedTPM, cfg.Anthropic.TPM = f.combinedTPM, f.tpm
	cfg.OpenAI.LiveOutput, cfg.OpenAI.DefaultMaxTokens = f.openaiLive, f.openaiMaxTokens
	if f.window <= 0 {
		return sim.Config{}, fmt.Errorf("sim: --window must be positive")
	}
	if f.tokensPerSecond == 0 {
		return sim.Config{}, fmt.Errorf("sim: --tokens-per-second must not be 0 (negative means unpaced)")
	}
	cfg.Window, cfg.TokensPerSecond = f.window, f.tokensPerSecond
	cfg.FirstTokenDelay, cfg.FlushInterval, cfg.PingInterval = f.firstTokenDelay, f.flushInterval, f.pingInterval
	cfg.MinOutputTokens, cfg.MaxOutputTokens, cfg.Seed = f.minOutput, f.maxOutput, f.seed
	cfg.NoPrefillModels = f.noPrefill
	if len(f.noPrefill) == 1 && f.noPrefill[0] == "none" {
		cfg.NoPrefillModels = []string{}
	}
	if f.faults != "" {
		rates, err := sim.ParseFaultRates(f.faults)
		if err != nil {
			return sim.Config{}, err
		}
		cfg.Faults = sim.FaultRates{Seed: f.faultSeed, Rates: rates}
	}
	if f.accel {
		cfg.Acceleration = &sim.Acceleration{Floor: f.accelFloor, Factor: f.accelFactor, Interval: f.accelInterval}
	}
	cfg.MaxHold, cfg.CacheTTL, cfg.ContextWindow = f.maxHold, f.cacheTTL, f.contextWindow
	cfg.ValidKeys, cfg.LogPath, cfg.MaxLogRecords = f.validKeys, f.logPath, f.maxLogRecords
	cfg.StatsInterval, cfg.StatsSamples = f.statsInterval, f.statsSamples
	return cfg, nil
}

// runSim serves the simulator until ctx is done, then closes open
// responses and shuts the HTTP server down.
func runSim(ctx context.Context, e *env, f *simFlags, cfg sim.Config) error {
	s := sim.New(cfg)
	if err := s.Err(); err != nil {
		_ = s.Close()
		return fmt.Errorf("sim: request log: %w", err)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("sim: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: f.readHeaderTimeout, IdleTimeout: f.idleTimeout}
	c := s.Config()
	fmt.Fprintf(e.stdout, "streamgate sim listening on http://%s\n", ln.Addr())
	fmt.Fprintf(e.stdout, "anthropic: rpm=%s itpm=%s otpm=%s combined=%v; openai: rpm=%s tpm=%s; window=%s tokens/s=%g\n",
		limitString(c.Anthropic.RPM), limitString(c.Anthropic.ITPM), limitString(c.Anthropic.OTPM), c.Anthropic.CombinedTPM,
		limitString(c.OpenAI.RPM), limitString(c.OpenAI.TPM), c.Window, c.TokensPerSecond)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	closeErr := s.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = serr
	}
	if err == nil {
		err = <-errc
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if closeErr != nil {
		return fmt.Errorf("sim: request log: %w", closeErr)
	}
	return nil
}

func limitString(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}
