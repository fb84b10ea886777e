package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/streamgate/streamgate/proxy"
)

// proxySetting is one setting of `streamgate proxy` that a flag and an
// environment variable can both set (the flag wins, then the variable,
// then the configuration file).
type proxySetting struct {
	flag, env, usage string
	apply            func(f *proxy.File, v string) error
}

func durationSetting(dst func(*proxy.File) *time.Duration) func(*proxy.File, string) error {
	return func(f *proxy.File, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*dst(f) = d
		return nil
	}
}

func intSetting(dst func(*proxy.File) *int) func(*proxy.File, string) error {
	return func(f *proxy.File, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		*dst(f) = n
		return nil
	}
}

var proxySettings = []proxySetting{
	{"listen", "STREAMGATE_LISTEN", "address to listen on (default 127.0.0.1:8787; a non-loopback address requires client tokens)",
		func(f *proxy.File, v string) error { f.Listen = v; return nil }},
	{"anthropic-url", "STREAMGATE_ANTHROPIC_URL", "Anthropic upstream base URL (default https://api.anthropic.com)",
		func(f *proxy.File, v string) error { f.Anthropic.URL = v; return nil }},
	{"openai-url", "STREAMGATE_OPENAI_URL", "OpenAI (or OpenAI-compatible) upstream base URL (default https://api.openai.com)",
		func(f *proxy.File, v string) error { f.OpenAI.URL = v; return nil }},
	{"anthropic-key-env", "STREAMGATE_ANTHROPIC_KEY_ENV", "name of an environment variable holding an Anthropic key the proxy holds for token clients (requires tokens)",
		func(f *proxy.File, v string) error { f.Anthropic.APIKeyEnv, f.Anthropic.APIKey = v, ""; return nil }},
	{"openai-key-env", "STREAMGATE_OPENAI_KEY_ENV", "name of an environment variable holding an OpenAI key the proxy holds for token clients (requires tokens)",
		func(f *proxy.File, v string) error { f.OpenAI.APIKeyEnv, f.OpenAI.APIKey = v, ""; return nil }},
	{"max-admission-wait", "STREAMGATE_MAX_ADMISSION_WAIT", "longest a request waits for admission before the proxy answers 429 (default 30s)",
		durationSetting(func(f *proxy.File) *time.Duration { return &f.MaxAdmissionWait })},
	{"max-queue", "STREAMGATE_MAX_QUEUE", "requests that may wait for admission per key (default 1024)",
		intSetting(func(f *proxy.File) *int { return &f.MaxQueue })},
	{"max-concurrency", "STREAMGATE_MAX_CONCURRENCY", "upper bound of streams in flight per key (default 64)",
		intSetting(func(f *proxy.File) *int { return &f.MaxConcurrency })},
	{"window", "STREAMGATE_WINDOW", "rate-limit window of the budget (default 1m; match a simulator's --window)",
		durationSetting(func(f *proxy.File) *time.Duration { return &f.Window })},
	{"stream-idle-timeout", "STREAMGATE_STREAM_IDLE_TIMEOUT", "a stream silent this long is stalled (default 90s)",
		durationSetting(func(f *proxy.File) *time.Duration { return &f.StreamIdleTimeout })},
	{"drain-timeout", "STREAMGATE_DRAIN_TIMEOUT", "on SIGTERM, how long in-flight streams may run before they are aborted (default 30s)",
		durationSetting(func(f *proxy.File) *time.Duration { return &f.DrainTimeout })},
	{"max-request-bytes", "STREAMGATE_MAX_REQUEST_BYTES", "largest request body accepted (default 32 MiB)",
		func(f *proxy.File, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			f.MaxRequestBytes = n
			return err
		}},
	{"open-ops", "STREAMGATE_OPEN_OPS", "serve /metrics and /streamgate/status without a token even when tokens are configured",
		func(f *proxy.File, v string) error {
			b, err := strconv.ParseBool(v)
			f.OpenOps = b
			return err
		}},
	{"log-level", "STREAMGATE_LOG_LEVEL", "log level: debug, info, warn or error (default info)",
		func(f *proxy.File, v string) error { f.Log.Level = v; return nil }},
	{"log-format", "STREAMGATE_LOG_FORMAT", "log format: json or text (default json)",
		func(f *proxy.File, v string) error { f.Log.Format = v; return nil }},
}

// envTokens is the variable holding extra client tokens, as
// "name=token,name=token" (a bare token is named by its position).
const envTokens = "STREAMGATE_TOKENS"

func newProxyCmd(e *env) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the scheduling proxy any SDK can point its base URL at",
		Long: `proxy serves a local gateway for the Anthropic and OpenAI APIs: point an
unmodified SDK at it and every process on the machine shares one scheduler
for its keys.

  ANTHROPIC_BASE_URL=http://127.0.0.1:8787
  OPENAI_BASE_URL=http://127.0.0.1:8787/v1

Anthropic /v1/messages and OpenAI /v1/chat/completions are admitted
against each key's rate-limit budget; every other path is forwarded
unchanged. A request that cannot be admitted within --max-admission-wait
gets the proxy's own 429 with a truthful retry-after. A self-hosted
OpenAI-compatible server configured in the file as upstream NAME is
reached at http://127.0.0.1:8787/NAME/v1.

Settings come from the YAML file (--config or STREAMGATE_CONFIG), then
environment variables, then flags: flags win. Client tokens come from the
file or from STREAMGATE_TOKENS ("name=token,..."), never from flags. The
proxy also serves GET /healthz, /readyz, /metrics (Prometheus) and
/streamgate/status (JSON). On SIGTERM it stops accepting and drains
in-flight streams for up to --drain-timeout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := proxyFile(cmd.Flags(), configPath, os.Getenv)
			if err != nil {
				return err
			}
			return runProxy(cmd.Context(), e, file, os.Getenv)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configPath, "config", "", "YAML configuration file (env STREAMGATE_CONFIG)")
	for _, s := range proxySettings {
		if s.flag == "open-ops" {
			fl.Bool(s.flag, false, s.usage+" (env "+s.env+")")
			continue
		}
		fl.String(s.flag, "", s.usage+" (env "+s.env+")")
	}
	return cmd
}

// proxyFile assembles the settings: the configuration file, overridden by
// the environment, overridden by the flags that were set.
func proxyFile(fl *pflag.FlagSet, configPath string, getenv func(string) string) (proxy.File, error) {
	if configPath == "" {
		configPath = getenv("STREAMGATE_CONFIG")
	}
	var f proxy.File
	if configPath != "" {
		var err error
		if f, err = proxy.LoadFile(configPath); err != nil {
			return f, err
		}
	}
	for _, s := range proxySettings {
		if v := getenv(s.env); v != "" {
			if err := s.apply(&f, v); err != nil {
				return f, fmt.Errorf("proxy: %s=%q: %w", s.env, v, err)
			}
		}
	}
	for _, s := range proxySettings {
		if fl.Changed(s.flag) {
			v, _ := fl.GetString(s.flag)
			if s.flag == "open-ops" {
				b, _ := fl.GetBool(s.flag)
				v = strconv.FormatBool(b)
			}
			if err := s.apply(&f, v); err != nil {
				return f, fmt.Errorf("proxy: --%s=%q: %w", s.flag, v, err)
			}
		}
	}
	if v := getenv(envTokens); v != "" {
		for i, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, tok, ok := strings.Cut(item, "=")
			if !ok {
				name, tok = "token"+strconv.Itoa(i+1), item
			}
			f.Tokens = append(f.Tokens, proxy.FileToken{Name: name, Token: tok})
		}
	}
	return f, nil
}

// newLogger builds the proxy's logger from the log settings.
func newLogger(w io.Writer, l proxy.FileLog) (*slog.Logger, error) {
	var level slog.Level
	if l.Level != "" {
		if err := level.UnmarshalText([]byte(l.Level)); err != nil {
			return nil, fmt.Errorf("proxy: log level %q: want debug, info, warn or error", l.Level)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.Format) {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("proxy: log format %q: want json or text", l.Format)
}

// runProxy serves until ctx is done (SIGTERM or SIGINT), then drains.
func runProxy(ctx context.Context, e *env, file proxy.File, getenv func(string) string) error {
	cfg, err := file.Config(getenv)
	if err != nil {
		return err
	}
	if cfg.Logger, err = newLogger(e.stderr, file.Log); err != nil {
		return err
	}
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	listen := cfg.Listen
	if listen == "" {
		listen = proxy.DefaultListen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	fmt.Fprintf(e.stdout, "streamgate proxy listening on http://%s\n", ln.Addr())
	fmt.Fprintf(e.stdout, "  ANTHROPIC_BASE_URL=http://%s  OPENAI_BASE_URL=http://%s/v1\n", ln.Addr(), ln.Addr())
	if err := p.Serve(ctx, ln); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "streamgate proxy stopped")
	return nil
}
