package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/streamgate/streamgate/sim"
)

func TestProxyHelpDocumentsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"proxy", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	help := out.String()
	newProxyCmd(&env{}).Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(help, "--"+f.Name+" ") {
			t.Errorf("--help does not list --%s", f.Name)
		}
	})
	for _, s := range proxySettings {
		if !strings.Contains(help, s.env) {
			t.Errorf("--help does not name %s", s.env)
		}
	}
	for _, want := range []string{"ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", envTokens, "/healthz", "/metrics", "/streamgate/status", "SIGTERM"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

func TestProxySettingsPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	yaml := "listen: 127.0.0.1:1111\nmax_admission_wait: 1s\nwindow: 6s\ndrain_timeout: 3s\nlog: {level: warn}\n" +
		"tokens: [{name: file, token: file-token-0123456789}]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{
		"STREAMGATE_CONFIG":             path,
		"STREAMGATE_LISTEN":             "127.0.0.1:2222",
		"STREAMGATE_MAX_ADMISSION_WAIT": "2s",
		"STREAMGATE_LOG_LEVEL":          "debug",
		envTokens:                       "env=env-token-0123456789,bare-token-0123456789",
	}
	cmd := newProxyCmd(&env{})
	if err := cmd.Flags().Parse([]string{"--listen", "127.0.0.1:3333", "--open-ops"}); err != nil {
		t.Fatal(err)
	}
	f, err := proxyFile(cmd.Flags(), "", func(k string) string { return environ[k] })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"flag beats environment and file", f.Listen, "127.0.0.1:3333"},
		{"environment beats file", f.MaxAdmissionWait, 2 * time.Second},
		{"file when nothing else", f.Window, 6 * time.Second},
		{"file drain", f.DrainTimeout, 3 * time.Second},
		{"environment log level", f.Log.Level, "debug"},
		{"boolean flag", f.OpenOps, true},
		{"tokens from file and environment", len(f.Tokens), 3},
		{"named environment token", f.Tokens[1].Name + "=" + f.Tokens[1].Token, "env=env-token-0123456789"},
		{"bare environment token", f.Tokens[2].Name, "token2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	t.Run("bad environment value", func(t *testing.T) {
		_, err := proxyFile(newProxyCmd(&env{}).Flags(), "", func(k string) string {
			if k == "STREAMGATE_DRAIN_TIMEOUT" {
				return "soon"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "STREAMGATE_DRAIN_TIMEOUT") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestProxyServesUntilCancelled(t *testing.T) {
	s := sim.New(sim.Config{TokensPerSecond: -1})
	up := httptest.NewServer(s)
	defer func() { up.Close(); _ = s.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &firstLine{ch: make(chan string, 1)}
	errb := &firstLine{ch: make(chan string, 1)}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"proxy", "--listen", "127.0.0.1:0", "--anthropic-url", up.URL, "--log-format", "text"}, out, errb)
	}()
	var line string
	select {
	case line = <-out.ch:
	case code := <-done:
		t.Fatalf("exited %d before listening: %s", code, errb.String())
	}
	url := strings.TrimPrefix(line, "streamgate proxy listening on ")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(
		`{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"[sim:tokens=5] hi"}]}`))
	req.Header.Set("X-Api-Key", "sk-cli-secret-key-0123456789")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	tr.CloseIdleConnections()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	logs := errb.String()
	if !strings.Contains(logs, "outcome=ok") || strings.Contains(logs, "sk-cli-secret-key") {
		t.Fatalf("logs %q", logs)
	}
	if !strings.Contains(out.String(), "streamgate proxy stopped") {
		t.Fatalf("stdout %q", out.String())
	}
}

func TestProxyRefusesInsecureSetups(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"public address without tokens", []string{"proxy", "--listen", "0.0.0.0:0"}, nil, "non-loopback"},
		{"held key without tokens", []string{"proxy", "--listen", "127.0.0.1:0", "--anthropic-key-env", "TEST_PROXY_HELD_KEY"},
			map[string]string{"TEST_PROXY_HELD_KEY": "sk-held"}, "no client tokens"},
		{"held key variable unset", []string{"proxy", "--listen", "127.0.0.1:0", "--anthropic-key-env", "TEST_PROXY_UNSET_KEY"}, nil, "TEST_PROXY_UNSET_KEY"},
		{"bad log level", []string{"proxy", "--log-level", "loud"}, nil, "log level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			if code := Run(context.Background(), tt.args, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1 (stderr %q)", code, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("stderr %q does not say %q", errb.String(), tt.want)
			}
		})
	}
}
