package proxy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/streamgate/streamgate/metrics"
	"github.com/streamgate/streamgate/proxy"
	"github.com/streamgate/streamgate/sim"
)

// A proxy in front of an upstream (here the simulator): clients set their
// SDK's base URL to the proxy and keep their own API key.
func Example() {
	upstream := sim.New(sim.Config{TokensPerSecond: -1})
	defer upstream.Close()
	up := httptest.NewServer(upstream)
	defer up.Close()

	p, err := proxy.New(proxy.Config{
		Anthropic: proxy.Upstream{URL: up.URL},
		OpenAI:    proxy.Upstream{URL: up.URL},
		Logger:    slog.New(slog.DiscardHandler),
		Metrics:   metrics.New(metrics.WithoutRuntimeMetrics()),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	front := httptest.NewServer(p.Handler()) // or p.ListenAndServe(ctx)
	defer front.Close()

	// What ANTHROPIC_BASE_URL=front.URL makes an SDK send:
	req, _ := http.NewRequest("POST", front.URL+"/v1/messages", strings.NewReader(
		`{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"[sim:tokens=5] Hello"}]}`))
	req.Header.Set("X-Api-Key", "sk-ant-your-own-key")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	fmt.Println(strings.HasPrefix(resp.Header.Get(proxy.HeaderRequestID), "sgp_"))
	// Output:
	// 200 application/json
	// true
}

// Proxy tokens let a proxy hold the provider key: a client presents its
// token where the SDK puts the API key (ANTHROPIC_API_KEY=sgt-...).
func ExampleConfig_tokens() {
	_, err := proxy.New(proxy.Config{
		Listen:    "0.0.0.0:8787", // non-loopback: refused without tokens
		Anthropic: proxy.Upstream{APIKey: "sk-ant-held-by-the-proxy"},
	})
	fmt.Println(err)
	_, err = proxy.New(proxy.Config{
		Listen:    "0.0.0.0:8787",
		Anthropic: proxy.Upstream{APIKey: "sk-ant-held-by-the-proxy"},
		Tokens:    []proxy.Token{{Name: "alice", Token: "sgt-alice-0123456789abcdef"}},
	})
	fmt.Println(err)
	// Output:
	// proxy: an upstream holds an API key but no client tokens are configured
	// <nil>
}
