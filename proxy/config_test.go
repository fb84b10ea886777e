package proxy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	tok := []Token{{Name: "a", Token: tokenA}}
	tests := []struct {
		name string
		cfg  Config
		want error // nil: valid
	}{
		{"zero config", Config{}, nil},
		{"named upstream", Config{Upstreams: []Upstream{{Name: "local", URL: "http://127.0.0.1:8000/v1"}}}, nil},
		{"reserved name", Config{Upstreams: []Upstream{{Name: "v1", URL: "http://x"}}}, ErrInvalidConfig},
		{"upper-case name", Config{Upstreams: []Upstream{{Name: "Local", URL: "http://x"}}}, ErrInvalidConfig},
		{"duplicate name", Config{Upstreams: []Upstream{{Name: "anthropic", URL: "http://x"}}}, ErrInvalidConfig},
		{"missing url", Config{Upstreams: []Upstream{{Name: "local"}}}, ErrInvalidConfig},
		{"bad scheme", Config{Anthropic: Upstream{URL: "ftp://x"}}, ErrInvalidConfig},
		{"url with query", Config{OpenAI: Upstream{URL: "https://x/?key=1"}}, ErrInvalidConfig},
		{"url with user", Config{OpenAI: Upstream{URL: "https://u:p@x/"}}, ErrInvalidConfig},
		{"unknown api", Config{Upstreams: []Upstream{{Name: "x", URL: "http://x", API: "gemini"}}}, ErrInvalidConfig},
		{"short token", Config{Tokens: []Token{{Name: "a", Token: "short"}}}, ErrInvalidConfig},
		{"duplicate token", Config{Tokens: []Token{{Name: "a", Token: tokenA}, {Name: "b", Token: tokenA}}}, ErrInvalidConfig},
		{"token key for unknown upstream", Config{Tokens: []Token{{Name: "a", Token: tokenA, APIKeys: map[string]string{"nope": "k"}}}}, ErrInvalidConfig},
		{"held key without tokens", Config{Anthropic: Upstream{APIKey: "k"}}, ErrKeyWithoutTokens},
		{"held key with tokens", Config{Anthropic: Upstream{APIKey: "k"}, Tokens: tok}, nil},
		{"tenant key needs tokens", Config{Tokens: []Token{{Name: "a", Token: tokenA, APIKeys: map[string]string{"openai": "k"}}}}, nil},
		{"public without tokens", Config{Listen: "0.0.0.0:8787"}, ErrInsecureListen},
		{"public with tokens", Config{Listen: "0.0.0.0:8787", Tokens: tok}, nil},
		{"bad listen", Config{Listen: "nonsense"}, ErrInvalidConfig},
		{"unknown limit api", Config{Limits: []Limit{{API: "x"}}}, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.want == nil && err != nil {
				t.Fatalf("New: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want %v", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "proxy: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "[::1]": true, "localhost": true, "LOCALHOST": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "example.com": false, "localhost.example": false,
		"::ffff:127.0.0.1": true, "fe80::1%lo": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

const sampleFile = `
listen: 127.0.0.1:9000
anthropic:
  url: http://127.0.0.1:8788
  api_key_env: TEST_HELD_KEY
openai:
  url: http://127.0.0.1:8789
upstreams:
  - name: local
    url: http://127.0.0.1:8000
    api: openai
tokens:
  - name: alice
    token_env: TEST_ALICE_TOKEN
  - name: bob
    token: sgt-bob-inline-0123456789
    api_keys_env:
      openai: TEST_BOB_OPENAI
max_admission_wait: 5s
max_queue: 10
max_concurrency: 8
window: 6s
limits:
  - api: anthropic
    model_class: claude-sonnet-4
    requests: 50
    output_tokens: 8000
drain_timeout: 1m
log:
  level: debug
  format: text
`

func TestFile(t *testing.T) {
	env := map[string]string{"TEST_HELD_KEY": heldKey, "TEST_ALICE_TOKEN": tokenA, "TEST_BOB_OPENAI": tenantKey}
	f, err := ParseFile([]byte(sampleFile))
	if err != nil {
		t.Fatal(err)
	}
	if f.Log.Level != "debug" || f.Log.Format != "text" {
		t.Fatalf("log %+v", f.Log)
	}
	c, err := f.Config(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.Anthropic.APIKey != heldKey || c.Anthropic.URL != "http://127.0.0.1:8788" ||
		len(c.Upstreams) != 1 || c.Upstreams[0].API != APIOpenAI || len(c.Tokens) != 2 || c.Tokens[0].Token != tokenA ||
		c.Tokens[1].APIKeys["openai"] != tenantKey || c.MaxAdmissionWait != 5*time.Second || c.Gate.MaxQueue != 10 ||
		c.Gate.MaxConcurrency != 8 || c.Window != 6*time.Second || c.DrainTimeout != time.Minute ||
		len(c.Limits) != 1 || c.Limits[0].Limits.OutputTokens != 8000 {
		t.Fatalf("config %+v", c)
	}
	if _, err := New(c); err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Run("missing environment variable", func(t *testing.T) {
		if _, err := f.Config(func(string) string { return "" }); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "TEST_HELD_KEY") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		if _, err := ParseFile([]byte("listen: x\nmax_wait: 3s\n")); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("bad duration", func(t *testing.T) {
		if _, err := ParseFile([]byte("drain_timeout: soon\n")); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		f, err := ParseFile(nil)
		if err != nil || f.Listen != "" {
			t.Fatalf("%+v %v", f, err)
		}
	})
	t.Run("load", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "proxy.yaml")
		if err := os.WriteFile(path, []byte(sampleFile), 0o600); err != nil {
			t.Fatal(err)
		}
		g, err := LoadFile(path)
		if err != nil || g.Listen != f.Listen {
			t.Fatalf("%+v %v", g, err)
		}
		if _, err := LoadFile(path + ".missing"); err == nil {
			t.Fatal("missing file loaded")
		}
	})
}
