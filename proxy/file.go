package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/gate"
)

// File is the schema of the proxy's YAML configuration file. Durations
// are Go duration strings ("30s"). Secrets may be given inline or, better,
// as the name of an environment variable holding them (the *_env fields);
// File.Config resolves those. An example:
//
//	listen: 127.0.0.1:8787
//	anthropic:
//	  url: https://api.anthropic.com
//	  api_key_env: ANTHROPIC_API_KEY   # the proxy holds this key
//	upstreams:
//	  - name: local                    # reached as /local/v1/...
//	    url: http://127.0.0.1:8000
//	    api: openai
//	tokens:
//	  - name: alice
//	    token_env: ALICE_PROXY_TOKEN
//	max_admission_wait: 30s
//	limits:
//	  - api: anthropic
//	    model_class: claude-sonnet-4
//	    requests: 50
//	    input_tokens: 30000
//	    output_tokens: 8000
//	log:
//	  level: info
//	  format: json
type File struct {
	Listen            string         `yaml:"listen"`
	Anthropic         FileUpstream   `yaml:"anthropic"`
	OpenAI            FileUpstream   `yaml:"openai"`
	Upstreams         []FileUpstream `yaml:"upstreams"`
	Tokens            []FileToken    `yaml:"tokens"`
	OpenOps           bool           `yaml:"open_ops"`
	MaxAdmissionWait  time.Duration  `yaml:"max_admission_wait"`
	MaxQueue          int            `yaml:"max_queue"`
	MaxConcurrency    int            `yaml:"max_concurrency"`
	Window            time.Duration  `yaml:"window"`
	Limits            []FileLimit    `yaml:"limits"`
	StreamIdleTimeout time.Duration  `yaml:"stream_idle_timeout"`
	MaxRequestBytes   int64          `yaml:"max_request_bytes"`
	MaxHeaderBytes    int            `yaml:"max_header_bytes"`
	ReadHeaderTimeout time.Duration  `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration  `yaml:"idle_timeout"`
	DrainTimeout      time.Duration  `yaml:"drain_timeout"`
	Log               FileLog        `yaml:"log"`
}

// FileUpstream is an upstream in the configuration file.
type FileUpstream struct {
	Name      string `yaml:"name"`
	URL       string `yaml:"url"`
	API       string `yaml:"api"`
	APIKey    string `yaml:"api_key"`
	APIKeyEnv string `yaml:"api_key_env"`
}

// FileToken is a client token in the configuration file.
type FileToken struct {
	Name       string            `yaml:"name"`
	Token      string            `yaml:"token"`
	TokenEnv   string            `yaml:"token_env"`
	APIKeys    map[string]string `yaml:"api_keys"`
	APIKeysEnv map[string]string `yaml:"api_keys_env"`
}

// FileLimit is a configured limit in the configuration file.
type FileLimit struct {
	API          string `yaml:"api"`
	ModelClass   string `yaml:"model_class"`
	Requests     int64  `yaml:"requests"`
	InputTokens  int64  `yaml:"input_tokens"`
	OutputTokens int64  `yaml:"output_tokens"`
	Tokens       int64  `yaml:"tokens"`
}

// FileLog configures logging: level debug, info, warn or error; format
// json or text. The proxy package does not read it; the command does.
type FileLog struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// ParseFile parses a YAML configuration. Unknown fields are errors, so a
// misspelt setting is never silently ignored. An empty document is the
// zero File.
func ParseFile(data []byte) (File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return File{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return f, nil
}

// LoadFile reads and parses the configuration file at path.
func LoadFile(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("proxy: config file: %w", err)
	}
	f, err := ParseFile(b)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Config converts the file into a Config, resolving every *_env field
// with getenv (os.Getenv, usually). A referenced variable that is unset or
// empty is an error: a proxy must not start without a secret it was told
// to hold.
func (f File) Config(getenv func(string) string) (Config, error) {
	secret := func(what, inline, env string) (string, error) {
		if env == "" {
			return inline, nil
		}
		if inline != "" {
			return "", fmt.Errorf("%w: %s has both a value and %q", ErrInvalidConfig, what, env)
		}
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("%w: %s: environment variable %s is empty", ErrInvalidConfig, what, env)
		}
		return v, nil
	}
	upstream := func(u FileUpstream) (Upstream, error) {
		key, err := secret("api key of upstream "+u.Name, u.APIKey, u.APIKeyEnv)
		return Upstream{Name: u.Name, URL: u.URL, API: API(u.API), APIKey: key}, err
	}
	c := Config{
		Listen:            f.Listen,
		OpenOps:           f.OpenOps,
		MaxAdmissionWait:  f.MaxAdmissionWait,
		Gate:              gate.Config{MaxQueue: f.MaxQueue, MaxConcurrency: f.MaxConcurrency},
		Window:            f.Window,
		StreamIdleTimeout: f.StreamIdleTimeout,
		MaxRequestBytes:   f.MaxRequestBytes,
		MaxHeaderBytes:    f.MaxHeaderBytes,
		ReadHeaderTimeout: f.ReadHeaderTimeout,
		IdleTimeout:       f.IdleTimeout,
		DrainTimeout:      f.DrainTimeout,
	}
	var err error
	if f.Anthropic.Name != "" || f.OpenAI.Name != "" || f.Anthropic.API != "" || f.OpenAI.API != "" {
		return Config{}, fmt.Errorf("%w: the anthropic and openai upstreams take no name or api", ErrInvalidConfig)
	}
	if c.Anthropic, err = upstream(f.Anthropic); err != nil {
		return Config{}, err
	}
	if c.OpenAI, err = upstream(f.OpenAI); err != nil {
		return Config{}, err
	}
	for _, u := range f.Upstreams {
		cu, err := upstream(u)
		if err != nil {
			return Config{}, err
		}
		c.Upstreams = append(c.Upstreams, cu)
	}
	for _, t := range f.Tokens {
		tok, err := secret("token "+t.Name, t.Token, t.TokenEnv)
		if err != nil {
			return Config{}, err
		}
		ct := Token{Name: t.Name, Token: tok}
		for name, k := range t.APIKeys {
			if ct.APIKeys == nil {
				ct.APIKeys = map[string]string{}
			}
			ct.APIKeys[name] = k
		}
		for name, env := range t.APIKeysEnv {
			k, err := secret("token "+t.Name+" key for "+name, t.APIKeys[name], env)
			if err != nil {
				return Config{}, err
			}
			if ct.APIKeys == nil {
				ct.APIKeys = map[string]string{}
			}
			ct.APIKeys[name] = k
		}
		c.Tokens = append(c.Tokens, ct)
	}
	for _, l := range f.Limits {
		c.Limits = append(c.Limits, Limit{API: API(l.API), ModelClass: l.ModelClass, Limits: streamgate.Limits{
			Requests: l.Requests, InputTokens: l.InputTokens, OutputTokens: l.OutputTokens, Tokens: l.Tokens,
		}})
	}
	return c, nil
}
