// Package proxy is streamgate's HTTP gateway: a reverse proxy (built on
// net/http/httputil.ReverseProxy) that any program, in any language, can
// point its official SDK at by setting ANTHROPIC_BASE_URL or
// OPENAI_BASE_URL. Every process on a machine then shares one scheduler
// (a streamgate.Transport) for its keys, with no code change.
//
// # Routing
//
// Anthropic /v1/messages and /v1/messages/count_tokens and OpenAI
// /v1/chat/completions go through the scheduler; every other path is
// forwarded unchanged to the matching upstream. A request is matched to an
// upstream by an explicit path prefix (/anthropic/..., /openai/..., or
// /NAME/... for an upstream configured in Config.Upstreams, such as a
// self-hosted OpenAI-compatible server), else by its path (/v1/messages*
// and /v1/complete are Anthropic's, /v1/chat/completions and the other
// OpenAI paths OpenAI's), else by its headers (anthropic-version or
// x-api-key mean Anthropic; a bearer token means OpenAI). Requests are
// only ever sent to configured upstreams: the request's Host, an absolute
// request URI or a crafted path cannot steer the proxy elsewhere.
//
// # Keys and tenants
//
// By default the client's own API key is forwarded and budgets are kept
// per key fingerprint. With Config.Tokens, every request must present a
// proxy token: either instead of its API key (the proxy then sends the key
// it holds for the upstream, Upstream.APIKey or Token.APIKeys), or in the
// X-Streamgate-Token header alongside the client's own key. A proxy that
// holds a key must have tokens, and a proxy without tokens refuses to
// listen on a non-loopback address.
//
// # Behaviour toward clients
//
// A request that cannot be admitted within Config.MaxAdmissionWait, or
// when the admission queue is full, gets the proxy's own 429 in the
// provider's error format, with a truthful retry-after (and retry-after-ms)
// and the header X-Streamgate-Error naming the reason; the message starts
// with "streamgate proxy:". Upstream errors that are not retried pass
// through with the provider's status, headers and body. A stream that is
// interrupted after its first byte was sent is aborted (the client sees a
// broken connection, never a clean end), since a proxy cannot take back
// what it has sent. A client that disconnects cancels the upstream request
// and its budget reservation.
//
// # Operations
//
// GET /healthz answers 200 while the process serves; GET /readyz answers
// 503 once shutdown has begun. GET /metrics serves Prometheus metrics
// (package metrics) and GET /streamgate/status a JSON view of every budget
// key. Both require a proxy token when tokens are configured, unless
// Config.OpenOps is set. Every request gets an id (response header
// X-Streamgate-Request-Id) and one structured log line. API keys never
// appear in logs, metrics or the status: only their fingerprints do.
package proxy
