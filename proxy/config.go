package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/metrics"
)

// API is the wire format an upstream speaks: it decides the error bodies
// the proxy writes and the header that carries the API key.
type API string

const (
	// APIAnthropic is the Anthropic API: x-api-key, Anthropic error bodies.
	APIAnthropic API = "anthropic"
	// APIOpenAI is the OpenAI API or an OpenAI-compatible server:
	// Authorization: Bearer, OpenAI error bodies.
	APIOpenAI API = "openai"
)

// Defaults for the zero fields of Config.
const (
	DefaultListen            = "127.0.0.1:8787"
	DefaultAnthropicURL      = "https://api.anthropic.com"
	DefaultOpenAIURL         = "https://api.openai.com"
	DefaultMaxAdmissionWait  = 30 * time.Second
	DefaultMaxRequestBytes   = streamgate.DefaultMaxRequestBytes
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultDrainTimeout      = 30 * time.Second
	// MinTokenLength is the shortest proxy token accepted.
	MinTokenLength = 16
)

// Sentinel errors. New returns them wrapped; test with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every configuration error.
	ErrInvalidConfig = errors.New("proxy: invalid configuration")
	// ErrInsecureListen: the proxy would listen on a non-loopback address
	// without client tokens, letting anyone on the network spend the keys
	// it forwards or holds.
	ErrInsecureListen = errors.New("proxy: refusing to listen on a non-loopback address without client tokens")
	// ErrKeyWithoutTokens: an upstream holds an API key but no client
	// tokens are configured, so any local process could spend it.
	ErrKeyWithoutTokens = errors.New("proxy: an upstream holds an API key but no client tokens are configured")
)

// Upstream is a provider endpoint the proxy forwards to.
type Upstream struct {
	// Name selects the upstream by path prefix: a request for
	// /NAME/v1/chat/completions goes to URL + /v1/chat/completions. For
	// Config.Anthropic and Config.OpenAI it is ignored ("anthropic" and
	// "openai"). Names are lower-case letters, digits and dashes.
	Name string
	// URL is the upstream's base URL (scheme, host and an optional path
	// prefix), e.g. "https://api.anthropic.com" or
	// "http://127.0.0.1:8000". Request paths are appended to it. Zero
	// means the provider's public API for Config.Anthropic and
	// Config.OpenAI; it is required for Config.Upstreams.
	URL string
	// API is the wire format; for Config.Upstreams zero means APIOpenAI
	// (OpenAI-compatible servers are the common case).
	API API
	// APIKey, when set, is the provider key the proxy holds for this
	// upstream: a client presenting a proxy token instead of an API key is
	// sent upstream with it. It requires Config.Tokens. It is never
	// logged or exposed.
	APIKey string
}

// Token is a client credential for the proxy.
type Token struct {
	// Name labels the client in logs (never the token itself).
	Name string
	// Token is the secret the client presents, at least MinTokenLength
	// bytes.
	Token string
	// APIKeys optionally gives this client its own provider keys, by
	// upstream name ("anthropic", "openai" or a Config.Upstreams name);
	// they take precedence over Upstream.APIKey, so each tenant can have
	// its own key and budget.
	APIKeys map[string]string
}

// Limit configures the limits of one provider's model class before any
// response headers have been seen.
type Limit struct {
	// API is the provider.
	API API
	// ModelClass is the class, as streamgate.DefaultModelClass names it
	// (e.g. "claude-sonnet-4").
	ModelClass string
	// Limits are the per-window limits; zero fields are unknown.
	Limits streamgate.Limits
}

// Config configures a Server. The zero Config is usable: every zero field
// means the documented default, giving a proxy on 127.0.0.1:8787 that
// forwards the clients' own keys to the public Anthropic and OpenAI APIs.
type Config struct {
	// Listen is the address ListenAndServe listens on (DefaultListen). A
	// non-loopback address requires Tokens.
	Listen string
	// Anthropic is the Anthropic upstream (URL default
	// DefaultAnthropicURL; its API is always APIAnthropic).
	Anthropic Upstream
	// OpenAI is the OpenAI upstream (URL default DefaultOpenAIURL; its API
	// is always APIOpenAI).
	OpenAI Upstream
	// Upstreams are further upstreams, each reached under /NAME/.
	Upstreams []Upstream
	// Tokens, when non-empty, are the only credentials that may use the
	// proxy (and its /metrics and /streamgate/status, unless OpenOps).
	Tokens []Token
	// OpenOps serves /metrics and /streamgate/status without a token even
	// when Tokens are configured. /healthz and /readyz are always open.
	OpenOps bool

	// MaxAdmissionWait bounds how long a request may wait for admission
	// before the proxy answers 429 itself (DefaultMaxAdmissionWait).
	MaxAdmissionWait time.Duration
	// Gate is the admission gate configuration of every budget key; zero
	// fields take the gate package's defaults (queue of 1024, at most 64
	// streams in flight per key).
	Gate gate.Config
	// Window is the rate-limit window of the in-process budget store
	// (default one minute). Ignored when Store is set.
	Window time.Duration
	// Store is the budget store; nil means an in-process one. A shared
	// store shares budgets between proxies.
	Store budget.Store
	// Limits are configured limits used before the first response headers.
	Limits []Limit
	// StreamIdleTimeout is how long a stream may go without a byte before
	// it is treated as stalled (streamgate.DefaultIdleTimeout).
	StreamIdleTimeout time.Duration

	// MaxRequestBytes bounds request bodies (DefaultMaxRequestBytes);
	// larger ones get a 413.
	MaxRequestBytes int64
	// MaxHeaderBytes bounds request headers (DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading a request's headers
	// (DefaultReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long
	// (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// DrainTimeout bounds how long Serve waits for in-flight streams when
	// its context is cancelled (DefaultDrainTimeout).
	DrainTimeout time.Duration

	// Logger receives one line per request and the proxy's own messages;
	// nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the scheduler's events and is served on /metrics;
	// nil means metrics.New().
	Metrics *metrics.Metrics
	// UpstreamTransport sends requests upstream; nil means a clone of
	// http.DefaultTransport tuned for many concurrent streams.
	UpstreamTransport http.RoundTripper
	// TransportOptions are appended to the options the proxy gives
	// streamgate.NewTransport (e.g. streamgate.WithRetryPolicy).
	TransportOptions []streamgate.Option
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// reservedNames cannot be upstream names: they are paths the proxy serves
// or forwards itself.
var reservedNames = map[string]bool{"v1": true, "v2": true, "healthz": true, "readyz": true, "metrics": true, "streamgate": true}

// upstream is a validated Upstream.
type upstream struct {
	name   string
	api    API
	target *url.URL
	apiKey string
}

// withDefaults validates c and fills in defaults.
func (c Config) withDefaults() (Config, []*upstream, error) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MaxAdmissionWait, DefaultMaxAdmissionWait)
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.DrainTimeout, DefaultDrainTimeout)
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	a, o := c.Anthropic, c.OpenAI
	a.Name, a.API = string(APIAnthropic), APIAnthropic
	o.Name, o.API = string(APIOpenAI), APIOpenAI
	if a.URL == "" {
		a.URL = DefaultAnthropicURL
	}
	if o.URL == "" {
		o.URL = DefaultOpenAIURL
	}
	var ups []*upstream
	seen := map[string]bool{}
	heldKey := false
	for i, u := range append([]Upstream{a, o}, c.Upstreams...) {
		if i >= 2 {
			if u.API == "" {
				u.API = APIOpenAI
			}
			if !nameRE.MatchString(u.Name) || reservedNames[u.Name] {
				return c, nil, fmt.Errorf("%w: upstream name %q: want lower-case letters, digits and dashes, not a reserved path", ErrInvalidConfig, u.Name)
			}
		}
		if seen[u.Name] {
			return c, nil, fmt.Errorf("%w: upstream name %q used twice", ErrInvalidConfig, u.Name)
		}
		seen[u.Name] = true
		if u.API != APIAnthropic && u.API != APIOpenAI {
			return c, nil, fmt.Errorf("%w: upstream %q: unknown api %q (want anthropic or openai)", ErrInvalidConfig, u.Name, u.API)
		}
		t, err := parseUpstreamURL(u.URL)
		if err != nil {
			return c, nil, fmt.Errorf("%w: upstream %q: %v", ErrInvalidConfig, u.Name, err)
		}
		ups = append(ups, &upstream{name: u.Name, api: u.API, target: t, apiKey: u.APIKey})
		heldKey = heldKey || u.APIKey != ""
	}
	tokens := map[string]bool{}
	for _, t := range c.Tokens {
		if len(t.Token) < MinTokenLength {
			return c, nil, fmt.Errorf("%w: token %q is shorter than %d bytes", ErrInvalidConfig, t.Name, MinTokenLength)
		}
		if tokens[t.Token] {
			return c, nil, fmt.Errorf("%w: token %q is configured twice", ErrInvalidConfig, t.Name)
		}
		tokens[t.Token] = true
		for name, k := range t.APIKeys {
			if !seen[name] {
				return c, nil, fmt.Errorf("%w: token %q has a key for unknown upstream %q", ErrInvalidConfig, t.Name, name)
			}
			heldKey = heldKey || k != ""
		}
	}
	if heldKey && len(c.Tokens) == 0 {
		return c, nil, ErrKeyWithoutTokens
	}
	for _, l := range c.Limits {
		if l.API != APIAnthropic && l.API != APIOpenAI {
			return c, nil, fmt.Errorf("%w: limit for %q: unknown api %q", ErrInvalidConfig, l.ModelClass, l.API)
		}
	}
	if err := checkListen(c.Listen, len(c.Tokens) > 0); err != nil {
		return c, nil, err
	}
	return c, ups, nil
}

func parseUpstreamURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: scheme must be http or https", s)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("URL %q: want scheme://host[:port][/path] without user, query or fragment", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// checkListen refuses a non-loopback address when there are no tokens.
func checkListen(addr string, haveTokens bool) error {
	if haveTokens {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: listen address %q: %v", ErrInvalidConfig, addr, err)
	}
	if !IsLoopback(host) {
		return fmt.Errorf("%w: %q", ErrInsecureListen, addr)
	}
	return nil
}

// IsLoopback reports whether host (an IP address or "localhost") names
// only the loopback interface. An empty host (every interface) and any
// other name are not loopback.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // zone
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
