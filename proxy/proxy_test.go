package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// routingStack is a proxy in front of three recording upstreams: the
// Anthropic and OpenAI ones and a self-hosted OpenAI-compatible server
// named "local" whose base URL has a path prefix.
func routingStack(t *testing.T) (anth, oai, local *recorder, proxyURL string) {
	anth, oai, local = newRecorder(t), newRecorder(t), newRecorder(t)
	_, proxyURL, _ = startProxy(t, Config{
		Anthropic: Upstream{URL: anth.ts.URL},
		OpenAI:    Upstream{URL: oai.ts.URL},
		Upstreams: []Upstream{{Name: "local", URL: local.ts.URL + "/base/"}},
	})
	return anth, oai, local, proxyURL
}

func TestRouting(t *testing.T) {
	anth, oai, local, proxyURL := routingStack(t)
	client := testClient(t)
	tests := []struct {
		name     string
		method   string
		path     string
		header   map[string]string
		body     string
		want     *recorder
		wantPath string
	}{
		{"anthropic messages", "POST", "/v1/messages", map[string]string{"X-Api-Key": "k"},
			`{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, anth, "/v1/messages"},
		{"count tokens", "POST", "/v1/messages/count_tokens", map[string]string{"X-Api-Key": "k"}, `{}`, anth, "/v1/messages/count_tokens"},
		{"message batches", "GET", "/v1/messages/batches", nil, "", anth, "/v1/messages/batches"},
		{"openai chat", "POST", "/v1/chat/completions", map[string]string{"Authorization": "Bearer k"},
			`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, oai, "/v1/chat/completions"},
		{"openai embeddings", "POST", "/v1/embeddings", nil, `{}`, oai, "/v1/embeddings"},
		{"models with an anthropic key", "GET", "/v1/models", map[string]string{"X-Api-Key": "k"}, "", anth, "/v1/models"},
		{"models with anthropic-version", "GET", "/v1/models", map[string]string{"Anthropic-Version": "2023-06-01"}, "", anth, "/v1/models"},
		{"models with a bearer token", "GET", "/v1/models", map[string]string{"Authorization": "Bearer k"}, "", oai, "/v1/models"},
		{"explicit anthropic prefix", "GET", "/anthropic/v1/models", map[string]string{"Authorization": "Bearer k"}, "", anth, "/v1/models"},
		{"explicit openai prefix", "GET", "/openai/v1/models", map[string]string{"X-Api-Key": "k"}, "", oai, "/v1/models"},
		{"named upstream", "POST", "/local/v1/chat/completions", map[string]string{"Authorization": "Bearer k"},
			`{"model":"llama","messages":[{"role":"user","content":"hi"}]}`, local, "/base/v1/chat/completions"},
		{"named upstream other path", "GET", "/local/v1/models", nil, "", local, "/base/v1/models"},
		{"unknown prefix is a path", "GET", "/other/v1/models", nil, "", anth, "/other/v1/models"},
		{"query kept", "GET", "/v1/models?limit=2", map[string]string{"X-Api-Key": "k"}, "", anth, "/v1/models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[*recorder]int{anth: len(anth.requests()), oai: len(oai.requests()), local: len(local.requests())}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, proxyURL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for r, n := range before {
				got := r.requests()
				if r != tt.want {
					if len(got) != n {
						t.Fatalf("request reached the wrong upstream (%s)", r.ts.URL)
					}
					continue
				}
				if len(got) != n+1 {
					t.Fatalf("upstream got %d new requests, want 1", len(got)-n)
				}
				last := got[len(got)-1]
				if last.Path != tt.wantPath || last.Method != tt.method {
					t.Fatalf("upstream saw %s %s, want %s %s", last.Method, last.Path, tt.method, tt.wantPath)
				}
				if u, _ := url.Parse(r.ts.URL); last.Host != u.Host {
					t.Fatalf("upstream saw Host %q, want %q", last.Host, u.Host)
				}
			}
		})
	}
}

// TestCannotSteerToAnotherHost sends requests crafted to reach a host that
// is not a configured upstream: an absolute request URI, a forged Host, a
// path that looks like a URL, CONNECT. None reaches it.
func TestCannotSteerToAnotherHost(t *testing.T) {
	anth, oai, local, proxyURL := routingStack(t)
	evil := newRecorder(t)
	evilHost := strings.TrimPrefix(evil.ts.URL, "http://")
	proxyHost := strings.TrimPrefix(proxyURL, "http://")
	raw := []string{
		"GET " + evil.ts.URL + "/v1/models HTTP/1.1\r\nHost: " + evilHost + "\r\nX-Api-Key: k\r\n\r\n",
		"GET /v1/models HTTP/1.1\r\nHost: " + evilHost + "\r\nX-Api-Key: k\r\n\r\n",
		"GET //" + evilHost + "/v1/models HTTP/1.1\r\nHost: " + proxyHost + "\r\n\r\n",
		"GET /local/../../" + evilHost + "/v1 HTTP/1.1\r\nHost: " + proxyHost + "\r\n\r\n",
		"GET /local@" + evilHost + "/v1 HTTP/1.1\r\nHost: " + proxyHost + "\r\n\r\n",
		"GET /%2F%2F" + evilHost + "/v1 HTTP/1.1\r\nHost: " + proxyHost + "\r\n\r\n",
		"POST http://" + evilHost + "/v1/messages HTTP/1.1\r\nHost: " + evilHost + "\r\nX-Api-Key: k\r\nContent-Length: 2\r\n\r\n{}",
		"CONNECT " + evilHost + " HTTP/1.1\r\nHost: " + evilHost + "\r\n\r\n",
		"GET /v1/models HTTP/1.1\r\nHost: " + proxyHost + "\r\nX-Forwarded-Host: " + evilHost + "\r\nForwarded: host=" + evilHost + "\r\n\r\n",
	}
	for i, req := range raw {
		t.Run(strings.SplitN(req, "\r\n", 2)[0], func(t *testing.T) {
			c, err := net.Dial("tcp", proxyHost)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n := len(evil.requests()); n != 0 {
				t.Fatalf("the other host received %d requests", n)
			}
		})
	}
	for _, r := range []*recorder{anth, oai, local} {
		for _, req := range r.requests() {
			if u, _ := url.Parse(r.ts.URL); req.Host != u.Host {
				t.Errorf("upstream %s received Host %q", r.ts.URL, req.Host)
			}
		}
	}
}

func TestHopByHopAndProxyHeadersAreNotForwarded(t *testing.T) {
	anth := newRecorder(t)
	_, proxyURL, _ := startProxy(t, Config{Anthropic: Upstream{URL: anth.ts.URL}})
	req, _ := http.NewRequest("GET", proxyURL+"/v1/models", nil)
	req.Header.Set("X-Api-Key", "k")
	req.Header.Set("Connection", "X-Private-Hop")
	req.Header.Set("X-Private-Hop", "secret")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set(HeaderToken, "not-a-configured-token")
	req.Header.Set("X-End-To-End", "kept")
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := anth.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests upstream", len(got))
	}
	h := got[0].Header
	for _, name := range []string{"X-Private-Hop", "Proxy-Authorization", HeaderToken, "X-Forwarded-For"} {
		if v := h.Get(name); v != "" {
			t.Errorf("upstream received %s: %q", name, v)
		}
	}
	if h.Get("X-End-To-End") != "kept" || h.Get("X-Api-Key") != "k" {
		t.Errorf("end-to-end headers lost: %v", h)
	}
	if resp.Header.Get(HeaderRequestID) == "" {
		t.Error("response has no request id")
	}
}

// TestEventsAreFlushedOneByOne holds the upstream stream after its first
// events until the client has received them through the proxy: a proxy
// that buffered would never deliver them and the request would time out.
func TestEventsAreFlushedOneByOne(t *testing.T) {
	up := newHeldStream(t)
	_, proxyURL, _ := startProxy(t, Config{Anthropic: Upstream{URL: up.url}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := testClient(t).Do(messagesRequest(t, ctx, proxyURL, "sk-flush", true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	var first string
	for _, want := range []string{evMessageStart, evBlockStart, evDelta} {
		ev, err := readEvent(br)
		if err != nil {
			t.Fatalf("reading the first events: %v", err)
		}
		if ev != want {
			t.Fatalf("event %q, want %q", ev, want)
		}
		first += ev
	}
	close(up.release)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("complete stream ended with %v", err)
	}
	if first+string(rest) != evMessageStart+evBlockStart+evDelta+evDelta+evEnd {
		t.Fatalf("bytes changed in transit: %q", first+string(rest))
	}
}
