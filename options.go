package streamgate

import (
	"net/http"
	"time"

	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/cost"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
	"github.com/streamgate/streamgate/resume"
	"github.com/streamgate/streamgate/retry"
)

// Option configures a Transport. Options are applied in order by
// NewTransport.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Limits are configured limits per dimension for one provider and model
// class, used before (and, for a limit the headers never report, instead
// of) the limits learned from response headers. Zero means unknown.
type Limits struct {
	Requests     int64
	InputTokens  int64
	OutputTokens int64
	Tokens       int64
}

type config struct {
	base          http.RoundTripper
	store         budget.Store
	window        time.Duration
	estimatorOpts []cost.Option
	policy        retry.Policy
	retryRatio    float64
	gate          gate.Config
	idleTimeout   time.Duration
	maxRequest    int64
	maxResponse   int64
	modelClass    func(ratelimit.Provider, string) string
	observer      func(Event)
	limits        map[string]Limits // by provider/modelClass
	maxWait       time.Duration
	resume        bool
	maxResumes    int
	prefill       *resume.PrefillPolicy
}

// Defaults for the options.
const (
	DefaultIdleTimeout     = 90 * time.Second
	DefaultMaxRequestBytes = 32 << 20
	// DefaultMaxResponseBytes bounds a non-streaming response body that is
	// read to learn its usage.
	DefaultMaxResponseBytes = 64 << 20
	// DefaultRetryRatio is the retry budget: over any 10 seconds, retries
	// may add at most this fraction of the requests made, plus
	// DefaultRetryAllowance per second. The gate's global backoff already
	// paces retries after a 529; the budget caps amplification when an
	// upstream fails everything.
	DefaultRetryRatio = 0.5
	// DefaultRetryAllowance is the retries per second allowed whatever the
	// traffic (so a quiet client can still retry).
	DefaultRetryAllowance = 2.0
)

func defaultConfig() config {
	return config{
		base:        http.DefaultTransport,
		window:      budget.DefaultWindow,
		retryRatio:  DefaultRetryRatio,
		idleTimeout: DefaultIdleTimeout,
		maxRequest:  DefaultMaxRequestBytes,
		maxResponse: DefaultMaxResponseBytes,
		modelClass:  DefaultModelClass,
		limits:      map[string]Limits{},
		resume:      true,
		maxResumes:  DefaultMaxResumes,
		prefill:     resume.NewPrefillPolicy(resume.DefaultNoPrefillModels...),
	}
}

// WithBase sets the RoundTripper that sends requests upstream (default
// http.DefaultTransport).
func WithBase(rt http.RoundTripper) Option {
	return optionFunc(func(c *config) {
		if rt != nil {
			c.base = rt
		}
	})
}

// WithStore sets the budget Store (default: an in-process budget.Memory).
// Share a Store between Transports (or, with a shared store, between
// processes) to share one key's budget.
func WithStore(s budget.Store) Option {
	return optionFunc(func(c *config) { c.store = s })
}

// WithWindow sets the rate-limit window of the default in-process store
// (default one minute; the simulator can scale it down). Ignored when
// WithStore is given: the store has its own window.
func WithWindow(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.window = d
		}
	})
}

// WithSafetyFactor multiplies estimates (default 1.2).
func WithSafetyFactor(f float64) Option {
	return optionFunc(func(c *config) { c.estimatorOpts = append(c.estimatorOpts, cost.WithSafetyFactor(f)) })
}

// WithOutputPolicy chooses the output reservation: cost.ReserveMaxTokens
// (default, safe) or cost.ReserveQuantile with quantile q after minSamples
// observed outputs.
func WithOutputPolicy(p cost.OutputPolicy, q float64, minSamples int) Option {
	return optionFunc(func(c *config) {
		c.estimatorOpts = append(c.estimatorOpts, cost.WithOutputPolicy(p, q, minSamples))
	})
}

// WithRetryPolicy sets the retry policy (default: the zero retry.Policy,
// i.e. its documented defaults). Its Budget field is ignored: use
// WithRetryBudget.
func WithRetryPolicy(p retry.Policy) Option {
	return optionFunc(func(c *config) { c.policy = p })
}

// WithRetryBudget limits retries to ratio of requests plus
// DefaultRetryAllowance per second (default ratio 0.5); 0 disables the
// retry budget.
func WithRetryBudget(ratio float64) Option {
	return optionFunc(func(c *config) { c.retryRatio = ratio })
}

// WithGate sets the admission gate configuration used for every key.
func WithGate(g gate.Config) Option {
	return optionFunc(func(c *config) { c.gate = g })
}

// WithIdleTimeout sets how long a stream may go without a byte before it is
// treated as stalled (default 90s).
func WithIdleTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.idleTimeout = d
		}
	})
}

// WithMaxRequestBytes bounds the request bodies the Transport buffers (it
// must keep a copy to retry). Larger bodies fail with ErrRequestTooLarge.
func WithMaxRequestBytes(n int64) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxRequest = n
		}
	})
}

// WithModelClass overrides how model names map to rate-limit classes
// (default DefaultModelClass).
func WithModelClass(f func(ratelimit.Provider, string) string) Option {
	return optionFunc(func(c *config) {
		if f != nil {
			c.modelClass = f
		}
	})
}

// WithLimits configures limits for a provider's model class, used before any
// response headers have been seen (so admission does not start at one
// stream at a time) and for dimensions the headers never report.
func WithLimits(p ratelimit.Provider, modelClass string, l Limits) Option {
	return optionFunc(func(c *config) { c.limits[p.String()+"/"+modelClass] = l })
}

// WithObserver registers a function called synchronously with every Event
// (metrics, logs, recorded timelines). It must be fast and must not block.
func WithObserver(f func(Event)) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			return
		}
		if prev := c.observer; prev != nil {
			c.observer = func(e Event) { prev(e); f(e) }
			return
		}
		c.observer = f
	})
}

// WithMaxAdmissionWait bounds how long a request may wait to be admitted
// (default 0: as long as its context allows). A request that would wait
// longer fails with an *AdmissionError carrying the estimated wait; a
// proxy turns that into its own 429 with retry-after.
func WithMaxAdmissionWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxWait = max(d, 0) })
}

// WithResume turns the resumption of interrupted streams on (the default)
// or off. Off, an interrupted stream ends with a *StreamError; a single
// request can opt out with the header X-Streamgate-Resume: off.
func WithResume(on bool) Option {
	return optionFunc(func(c *config) { c.resume = on })
}

// WithMaxResumes bounds the continuations of one stream (default
// DefaultMaxResumes).
func WithMaxResumes(n int) Option {
	return optionFunc(func(c *config) {
		if n >= 0 {
			c.maxResumes = n
		}
	})
}

// WithPrefillPolicy sets which models accept a prefilled assistant message
// for continuations (default: resume.DefaultNoPrefillModels reject it).
// Models that reject it are also learned from the provider's 400.
func WithPrefillPolicy(p *resume.PrefillPolicy) Option {
	return optionFunc(func(c *config) {
		if p != nil {
			c.prefill = p
		}
	})
}
