package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/fingerprint"
	"github.com/streamgate/streamgate/sim"
)

const (
	clientKey = "sk-ant-api03-CLIENT-SECRET-never-in-logs-0123456789"
	heldKey   = "sk-ant-api03-HELD-SECRET-never-in-logs-9876543210"
	tenantKey = "sk-proj-TENANT-SECRET-never-in-logs-5555555555"
	tokenA    = "sgt-alice-0123456789abcdef"
	tokenB    = "sgt-bob-fedcba9876543210"
)

func get(t *testing.T, url string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, b := do(t, req)
	return resp.StatusCode, string(b)
}

// TestKeysNeverLeak drives successes, upstream errors, proxy rejections
// and aborted streams with secret keys, then searches the logs, the
// metrics and the status for them: only fingerprints may appear.
func TestKeysNeverLeak(t *testing.T) {
	sc := fastSim()
	sc.Anthropic.RPM = 3
	sc.ValidKeys = []string{clientKey, heldKey, tenantKey}
	st := startStack(t, sc, Config{
		Anthropic:        Upstream{APIKey: heldKey},
		OpenAI:           Upstream{},
		Tokens:           []Token{{Name: "alice", Token: tokenA}, {Name: "bob", Token: tokenB, APIKeys: map[string]string{"openai": tenantKey}}},
		MaxAdmissionWait: 10 * time.Millisecond,
		Limits:           []Limit{{API: APIAnthropic, ModelClass: "claude-sonnet-4", Limits: streamgate.Limits{Requests: 3}}},
	})
	ctx := context.Background()
	// The client's own key with a token in the side header.
	own := func(r *http.Request) *http.Request { return withHeader(r, HeaderToken, tokenA) }
	statuses := map[int]int{}
	for _, req := range []*http.Request{
		own(messagesRequest(t, ctx, st.url, clientKey, true)),
		own(messagesRequest(t, ctx, st.url, clientKey, false)),
		own(withHeader(withHeader(messagesRequest(t, ctx, st.url, clientKey, true), sim.FaultHeader, "drop-midstream;at=5"), streamgate.HeaderResume, "off")),
		messagesRequest(t, ctx, st.url, tokenA, true), // the held key
		messagesRequest(t, ctx, st.url, tokenA, true),
		messagesRequest(t, ctx, st.url, tokenA, true),
		messagesRequest(t, ctx, st.url, tokenA, true), // over the limit: the proxy's 429
		own(messagesRequest(t, ctx, st.url, "sk-ant-wrong-key", false)),
		chatRequest(t, ctx, st.url, tokenB, true), // bob's own OpenAI key
		messagesRequest(t, ctx, st.url, "not-a-token", false),
	} {
		resp, err := testClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	if statuses[200] < 4 || statuses[429] < 1 || statuses[401] < 2 {
		t.Fatalf("statuses %v: the test did not exercise every path", statuses)
	}
	auth := map[string]string{"Authorization": "Bearer " + tokenA}
	code, metricsText := get(t, st.url+PathMetrics, auth)
	if code != 200 {
		t.Fatalf("metrics %d", code)
	}
	code, status := get(t, st.url+PathStatus, auth)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if err := st.sim.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	logs := st.logs.String()
	for name, text := range map[string]string{"logs": logs, "metrics": metricsText, "status": status} {
		for _, secret := range []string{clientKey, heldKey, tenantKey, tokenA, tokenB} {
			if strings.Contains(text, secret) || strings.Contains(text, secret[len(secret)-12:]) {
				t.Errorf("%s contain a secret (%s...)", name, secret[:12])
			}
		}
		for _, key := range []string{clientKey, heldKey, tenantKey} {
			if !strings.Contains(text, fingerprint.Of(key)) {
				t.Errorf("%s do not name the key %s... by its fingerprint", name, key[:12])
			}
		}
	}
	if !strings.Contains(logs, `"client":"alice"`) || !strings.Contains(logs, `"outcome":"aborted"`) || !strings.Contains(logs, `"outcome":"admission"`) {
		t.Errorf("logs lack the expected request lines:\n%s", logs)
	}
}

func TestTokens(t *testing.T) {
	sc := fastSim()
	sc.ValidKeys = []string{clientKey, heldKey}
	st := startStack(t, sc, Config{
		Anthropic: Upstream{APIKey: heldKey},
		Tokens:    []Token{{Name: "alice", Token: tokenA}, {Name: "bob", Token: tokenB}},
	})
	ctx := context.Background()
	sdk := func(key string, opts ...aoption.RequestOption) error {
		c := anthropic.NewClient(append([]aoption.RequestOption{aoption.WithBaseURL(st.url), aoption.WithAPIKey(key),
			aoption.WithHTTPClient(testClient(t)), aoption.WithMaxRetries(0)}, opts...)...)
		_, err := c.Messages.New(ctx, messageParams("[sim:tokens=10] token test"))
		return err
	}
	t.Run("token as the API key uses the held key", func(t *testing.T) {
		if err := sdk(tokenA); err != nil {
			t.Fatal(err)
		}
		if err := st.sim.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		log := st.sim.Log()
		if got := log[len(log)-1].Key; got != fingerprint.Of(heldKey) {
			t.Fatalf("upstream saw key %s, want the held key's %s", got, fingerprint.Of(heldKey))
		}
	})
	t.Run("token in the side header keeps the client's key", func(t *testing.T) {
		if err := sdk(clientKey, aoption.WithHeader(HeaderToken, tokenB)); err != nil {
			t.Fatal(err)
		}
		if err := st.sim.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		log := st.sim.Log()
		if got := log[len(log)-1].Key; got != fingerprint.Of(clientKey) {
			t.Fatalf("upstream saw key %s, want the client's %s", got, fingerprint.Of(clientKey))
		}
	})
	t.Run("bad tokens are refused before the upstream", func(t *testing.T) {
		before := len(st.sim.Log())
		for _, tc := range []struct {
			key  string
			opts []aoption.RequestOption
		}{
			{"wrong-token-0123456789", nil},
			{clientKey, nil}, // a real key but no token
			{clientKey, []aoption.RequestOption{aoption.WithHeader(HeaderToken, tokenA+"x")}},
			{tokenA[:len(tokenA)-1], nil},
		} {
			err := sdk(tc.key, tc.opts...)
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Response.Header.Get(HeaderError) != "unauthorized" {
				t.Fatalf("key %q...: %v", tc.key[:8], err)
			}
		}
		if err := st.sim.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if after := len(st.sim.Log()); after != before {
			t.Fatalf("%d refused requests reached the upstream", after-before)
		}
	})
	t.Run("no held key for the upstream", func(t *testing.T) {
		resp, b := do(t, chatRequest(t, ctx, st.url, tokenA, false))
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(HeaderError) != "no_key" {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("operational endpoints", func(t *testing.T) {
		for _, path := range []string{PathMetrics, PathStatus} {
			if code, _ := get(t, st.url+path, nil); code != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d", path, code)
			}
			if code, _ := get(t, st.url+path, map[string]string{HeaderToken: tokenB}); code != 200 {
				t.Errorf("%s with a token: %d", path, code)
			}
		}
		for _, path := range []string{PathHealthz, PathReadyz} {
			if code, _ := get(t, st.url+path, nil); code != 200 {
				t.Errorf("%s: %d", path, code)
			}
		}
	})
}

// fakeListener reports an address of the caller's choosing without
// listening on it.
type fakeListener struct {
	addr   net.Addr
	closed chan struct{}
}

func (l *fakeListener) Accept() (net.Conn, error) { <-l.closed; return nil, net.ErrClosed }
func (l *fakeListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}
func (l *fakeListener) Addr() net.Addr { return l.addr }

func TestNonLoopbackRequiresTokens(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8787", ":8787", "[::]:8787", "192.0.2.10:8787", "proxy.example:8787"} {
		t.Run("New "+addr, func(t *testing.T) {
			if _, err := New(Config{Listen: addr}); !errors.Is(err, ErrInsecureListen) {
				t.Fatalf("New: %v, want ErrInsecureListen", err)
			}
			if _, err := New(Config{Listen: addr, Tokens: []Token{{Name: "a", Token: tokenA}}}); err != nil {
				t.Fatalf("New with tokens: %v", err)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:8787", "localhost:8787", "[::1]:8787", "127.1.2.3:0"} {
		t.Run("New "+addr, func(t *testing.T) {
			if _, err := New(Config{Listen: addr}); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
	t.Run("Serve checks the listener", func(t *testing.T) {
		p, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		ln := &fakeListener{addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 8787}, closed: make(chan struct{})}
		if err := p.Serve(context.Background(), ln); !errors.Is(err, ErrInsecureListen) {
			t.Fatalf("Serve: %v, want ErrInsecureListen", err)
		}
		select {
		case <-ln.closed:
		default:
			t.Fatal("refused listener left open")
		}
	})
}
