package sim

import (
	"time"
)

// Unlimited, as a limit in AnthropicLimits or OpenAILimits, removes that
// bucket: nothing is drawn from it and its header family is not sent.
const Unlimited int64 = -1

// Config configures a Server. The zero Config is usable: every zero field
// means the documented default, which gives Tier-1-like limits over a real
// 60-second window.
type Config struct {
	// Anthropic are the limits of every API key on /v1/messages.
	Anthropic AnthropicLimits
	// OpenAI are the limits of every API key on /v1/chat/completions.
	OpenAI OpenAILimits

	// Window is the length of the simulated "minute": every bucket refills
	// continuously at limit/Window. Zero means 60s; tests scale it down
	// (e.g. 6s) so that budgets recover quickly.
	Window time.Duration

	// TokensPerSecond is how fast one response generates output tokens.
	// Zero means 100. A negative value means unpaced: every token is due at
	// once (useful with a fake Clock and in benchmarks of the server itself).
	TokensPerSecond float64
	// FirstTokenDelay is the time between the response headers and the first
	// output token. Zero means none.
	FirstTokenDelay time.Duration
	// FlushInterval is the shortest time between two writes of one stream:
	// tokens that fall due in between are sent together in one write (as
	// separate events). Zero means 20ms. It bounds the number of wake-ups per
	// stream, which is what keeps thousands of streams cheap.
	FlushInterval time.Duration
	// PingInterval is how often a long Anthropic stream sends a ping event
	// (one is always sent after the first content_block_start). Zero means
	// 10s.
	PingInterval time.Duration

	// MinOutputTokens and MaxOutputTokens bound the answer length chosen for
	// a prompt without a [sim:tokens=N] directive. Zero means 20 and 400.
	MinOutputTokens int
	MaxOutputTokens int
	// Seed makes the answers of this server differ from another's; the same
	// Seed and conversation always give the same answer.
	Seed uint64

	// NoPrefillModels are path.Match patterns of models that reject a final
	// assistant message with the real 400 ("This model does not support
	// assistant message prefill..."). nil means DefaultNoPrefillModels; an
	// empty non-nil slice means every model accepts prefill.
	NoPrefillModels []string

	// Faults injects faults at random into /v1/messages and
	// /v1/chat/completions requests. The zero value injects none.
	Faults FaultRates

	// Acceleration, when non-nil, rejects a sudden ramp of concurrent
	// requests on one key with 429s even when the budget would allow them.
	Acceleration *Acceleration

	// MaxHold bounds how long the stall-midstream and no-response faults hold
	// a connection before the server drops it. Zero means until the client
	// gives up or the Server is closed.
	MaxHold time.Duration

	// CacheTTL is how long a prompt-cache entry lives after its last use.
	// Zero means 5 minutes.
	CacheTTL time.Duration

	// ContextWindow is the largest prompt (input tokens) a request may have;
	// larger prompts get the real 400. Zero means 200,000 on /v1/messages and
	// 128,000 on /v1/chat/completions.
	ContextWindow int

	// ValidKeys, when non-empty, lists the only API keys that authenticate;
	// any other key gets the real 401. Empty means every non-empty key is
	// accepted.
	ValidKeys []string

	// LogPath, when set, appends every request Record as one JSON line to
	// that file.
	LogPath string
	// MaxLogRecords bounds the in-memory request log (oldest dropped first).
	// Zero means 100,000.
	MaxLogRecords int
	// StatsInterval is how often every bucket's level is sampled for
	// /sim/stats. Zero means 1s.
	StatsInterval time.Duration
	// StatsSamples is how many samples per bucket are kept (a ring). Zero
	// means 600.
	StatsSamples int

	// Clock supplies the time for bucket arithmetic, headers and the log.
	// nil means the real clock. Pacing always waits on real timers, so tests
	// of stream timing run under testing/synctest (where both are virtual);
	// a fake Clock suits unpaced admission tests.
	Clock Clock
}

// AnthropicLimits are the per-key limits of the Anthropic Messages API.
// Zero fields mean the Tier 1 value; Unlimited removes the bucket.
type AnthropicLimits struct {
	// RPM is requests per Window.
	RPM int64
	// ITPM is input tokens per Window (input + cache creation tokens; cache
	// reads are free).
	ITPM int64
	// OTPM is output tokens per Window, drawn as tokens stream.
	OTPM int64
	// CombinedTPM replaces the ITPM and OTPM buckets with one tokens bucket
	// that counts input and output tokens together, the model of the seed
	// article. Its limit is TPM.
	CombinedTPM bool
	// TPM is the combined bucket's limit when CombinedTPM is set. Zero means
	// ITPM + OTPM.
	TPM int64
}

// OpenAILimits are the per-key limits of the OpenAI-compatible endpoint.
// Zero fields mean the Tier 1 value; Unlimited removes the bucket.
type OpenAILimits struct {
	// RPM is requests per Window.
	RPM int64
	// TPM is tokens per Window. By default a request is charged its prompt
	// tokens plus max_tokens when it is admitted, and the unused part is not
	// refunded (as the real API does).
	TPM int64
	// LiveOutput switches to the model of OpenAI-compatible servers that
	// meter output as it streams: admission charges the prompt only (and
	// needs one token more), and each output token is drawn from TPM as it
	// is produced; when TPM runs dry the stream ends with an error chunk.
	LiveOutput bool
	// DefaultMaxTokens is the output cap assumed when a request sets neither
	// max_tokens nor max_completion_tokens. Zero means 4096.
	DefaultMaxTokens int
}

// Acceleration is the optional acceleration limit: a key may always run
// Floor requests at once, and otherwise at most Factor times the peak
// concurrency it had in the previous Interval. A request beyond that gets a
// 429 rate_limit_error whose retry-after is the time to the next interval.
type Acceleration struct {
	// Floor is the concurrency always allowed. Zero means 8.
	Floor int
	// Factor is the growth allowed per Interval. Zero means 2.
	Factor float64
	// Interval is the ramp's time step. Zero means Window/6.
	Interval time.Duration
}

// DefaultNoPrefillModels are the models that reject a final assistant
// message by default: Claude 4.6 and later.
var DefaultNoPrefillModels = []string{
	"claude-opus-4-6*", "claude-sonnet-4-6*", "claude-opus-4-7*", "claude-opus-4-8*",
	"claude-opus-5*", "claude-sonnet-5*", "claude-haiku-5*",
}

// Tier presets. The Anthropic numbers are the published limits of the
// Claude Sonnet 4.x / Opus 4.x model class (Anthropic rate-limits
// documentation: Tier 1 50 RPM, 30,000 ITPM, 8,000 OTPM; Tier 2 1,000 /
// 450,000 / 90,000; Tier 3 2,000 / 800,000 / 160,000; Tier 4 4,000 /
// 2,000,000 / 400,000). The OpenAI numbers are those published for gpt-4o
// (Tier 1 500 RPM / 30,000 TPM; Tier 2 5,000 / 450,000; Tier 3 5,000 /
// 800,000; Tier 4 10,000 / 2,000,000). Providers change these tables: treat
// them as realistic shapes, not as the truth about any account.

// Tier1 returns a Config with Tier 1 limits (also what the zero Config uses).
func Tier1() Config { return tierConfig(50, 30_000, 8_000, 500, 30_000) }

// Tier2 returns a Config with Tier 2 limits.
func Tier2() Config { return tierConfig(1_000, 450_000, 90_000, 5_000, 450_000) }

// Tier3 returns a Config with Tier 3 limits.
func Tier3() Config { return tierConfig(2_000, 800_000, 160_000, 5_000, 800_000) }

// Tier4 returns a Config with Tier 4 limits.
func Tier4() Config { return tierConfig(4_000, 2_000_000, 400_000, 10_000, 2_000_000) }

// TierByName returns the preset named "tier1".."tier4" (or "1".."4").
func TierByName(name string) (Config, bool) {
	switch name {
	case "tier1", "1":
		return Tier1(), true
	case "tier2", "2":
		return Tier2(), true
	case "tier3", "3":
		return Tier3(), true
	case "tier4", "4":
		return Tier4(), true
	}
	return Config{}, false
}

func tierConfig(rpm, itpm, otpm, orpm, otpmOpenAI int64) Config {
	return Config{
		Anthropic: AnthropicLimits{RPM: rpm, ITPM: itpm, OTPM: otpm},
		OpenAI:    OpenAILimits{RPM: orpm, TPM: otpmOpenAI},
	}
}

const (
	defaultWindow          = 60 * time.Second
	defaultTokensPerSecond = 100
	defaultFlushInterval   = 20 * time.Millisecond
	defaultPingInterval    = 10 * time.Second
	defaultMinOutput       = 20
	defaultMaxOutput       = 400
	defaultCacheTTL        = 5 * time.Minute
	defaultAnthropicCtx    = 200_000
	defaultOpenAICtx       = 128_000
	defaultMaxLogRecords   = 100_000
	defaultStatsInterval   = time.Second
	defaultStatsSamples    = 600
	defaultOpenAIMaxTokens = 4096
)

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	t1 := Tier1()
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Anthropic.RPM, t1.Anthropic.RPM)
	def(&c.Anthropic.ITPM, t1.Anthropic.ITPM)
	def(&c.Anthropic.OTPM, t1.Anthropic.OTPM)
	if c.Anthropic.CombinedTPM && c.Anthropic.TPM == 0 {
		switch {
		case c.Anthropic.ITPM < 0 || c.Anthropic.OTPM < 0:
			c.Anthropic.TPM = Unlimited
		default:
			c.Anthropic.TPM = c.Anthropic.ITPM + c.Anthropic.OTPM
		}
	}
	def(&c.OpenAI.RPM, t1.OpenAI.RPM)
	def(&c.OpenAI.TPM, t1.OpenAI.TPM)
	if c.OpenAI.DefaultMaxTokens <= 0 {
		c.OpenAI.DefaultMaxTokens = defaultOpenAIMaxTokens
	}
	if c.Window <= 0 {
		c.Window = defaultWindow
	}
	if c.TokensPerSecond == 0 {
		c.TokensPerSecond = defaultTokensPerSecond
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = defaultFlushInterval
	}
	if c.PingInterval <= 0 {
		c.PingInterval = defaultPingInterval
	}
	if c.MinOutputTokens <= 0 {
		c.MinOutputTokens = defaultMinOutput
	}
	if c.MaxOutputTokens <= 0 {
		c.MaxOutputTokens = defaultMaxOutput
	}
	if c.MaxOutputTokens < c.MinOutputTokens {
		c.MaxOutputTokens = c.MinOutputTokens
	}
	if c.NoPrefillModels == nil {
		c.NoPrefillModels = DefaultNoPrefillModels
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = defaultCacheTTL
	}
	if c.MaxLogRecords <= 0 {
		c.MaxLogRecords = defaultMaxLogRecords
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = defaultStatsInterval
	}
	if c.StatsSamples <= 0 {
		c.StatsSamples = defaultStatsSamples
	}
	if c.Acceleration != nil {
		a := *c.Acceleration
		if a.Floor <= 0 {
			a.Floor = 8
		}
		if a.Factor <= 0 {
			a.Factor = 2
		}
		if a.Interval <= 0 {
			a.Interval = c.Window / 6
		}
		c.Acceleration = &a
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	return c
}

// Clock tells the time. Implementations must be safe for concurrent use.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
