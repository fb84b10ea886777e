package proxy

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/metrics"
)

// FuzzRoute feeds arbitrary request lines and headers to the router and
// the rewrite: whatever the request says, it is sent to a configured
// upstream, under that upstream's base path, without the proxy token.
func FuzzRoute(f *testing.F) {
	for _, seed := range []string{
		"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Api-Key: k\r\n\r\n",
		"POST /v1/messages HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /local/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n",
		"GET http://evil.example/v1/models HTTP/1.1\r\nHost: evil.example\r\n\r\n",
		"GET //evil.example/x HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /local/../../evil HTTP/1.1\r\nHost: x\r\nX-Streamgate-Token: sgt-alice-0123456789abcdef\r\n\r\n",
		"GET /%2F%2Fevil/%2e%2e HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add(seed)
	}
	s, err := New(Config{
		Anthropic: Upstream{URL: "https://anthropic.test", APIKey: "held"},
		OpenAI:    Upstream{URL: "https://openai.test/prefix"},
		Upstreams: []Upstream{{Name: "local", URL: "http://127.0.0.1:8000/base"}},
		Tokens:    []Token{{Name: "alice", Token: tokenA}},
	})
	if err != nil {
		f.Fatal(err)
	}
	bases := map[string]string{"anthropic.test": "", "openai.test": "/prefix", "127.0.0.1:8000": "/base"}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		info := &reqInfo{}
		info.up, info.path, info.rawPath = s.route(r)
		info.auth = s.authenticate(r.Header, info.up)
		in := r.WithContext(context.WithValue(context.Background(), infoKey{}, info))
		pr := &httputil.ProxyRequest{In: in, Out: in.Clone(in.Context())}
		s.rewrite(pr)
		out := pr.Out
		base, ok := bases[out.URL.Host]
		if !ok {
			t.Fatalf("request sent to %q", out.URL.Host)
		}
		if out.Host != "" && out.Host != out.URL.Host {
			t.Fatalf("Host header %q for upstream %q", out.Host, out.URL.Host)
		}
		if !strings.HasPrefix(out.URL.Path, base+"/") && out.URL.Path != base {
			t.Fatalf("path %q outside the base %q", out.URL.Path, base)
		}
		if out.Header.Get(HeaderToken) != "" {
			t.Fatal("proxy token forwarded")
		}
		if out.URL.User != nil {
			t.Fatal("user info forwarded")
		}
	})
}

// FuzzParseFile checks that no configuration file makes the parser, the
// conversion or New panic.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte(sampleFile))
	f.Add([]byte("listen: 0.0.0.0:1\ntokens: [{name: a, token: 0123456789abcdef0}]\n"))
	f.Add([]byte("upstreams:\n  - {name: x, url: 'http://[::1]:80', api: anthropic}\n"))
	f.Add([]byte("limits: [{api: openai, model_class: gpt, tokens: -5}]\nmax_queue: -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile(data)
		if err != nil {
			return
		}
		c, err := file.Config(func(k string) string { return "env-" + k + "-0123456789" })
		if err != nil {
			return
		}
		c.Metrics = metrics.New(metrics.WithoutRuntimeMetrics())
		if p, err := New(c); err == nil {
			p.Transport().Close()
		}
	})
}
