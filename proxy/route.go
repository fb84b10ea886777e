package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/streamgate/streamgate/fingerprint"
)

// Headers the proxy reads or sets.
const (
	// HeaderToken carries a proxy token alongside the client's own API key.
	HeaderToken = "X-Streamgate-Token"
	// HeaderRequestID is the proxy's id for a request, set on every
	// response and logged.
	HeaderRequestID = "X-Streamgate-Request-Id"
	// HeaderError is set on responses the proxy wrote itself instead of
	// forwarding, naming why: "admission", "shutting_down", "unauthorized",
	// "too_large", "no_key" or "upstream_unreachable".
	HeaderError = "X-Streamgate-Error"
)

// openAIPaths are the path prefixes (after /v1) that only the OpenAI API
// serves; an unprefixed request for one goes to the OpenAI upstream.
var openAIPaths = []string{
	"/v1/chat/", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/assistants",
	"/v1/threads", "/v1/audio/", "/v1/images/", "/v1/moderations", "/v1/fine_tuning/",
	"/v1/vector_stores", "/v1/uploads", "/v1/realtime", "/v1/conversations",
}

// route picks the upstream of a request and the path to send it with. It
// never fails: a request that matches nothing in particular goes to the
// Anthropic upstream, and only configured upstreams are ever chosen.
func (s *Server) route(r *http.Request) (up *upstream, path, rawPath string) {
	path, rawPath = r.URL.Path, r.URL.RawPath
	if first, rest, ok := cutFirstSegment(path); ok {
		if u := s.byName[first]; u != nil {
			path = rest
			if rawPath != "" {
				if _, rrest, ok := cutFirstSegment(rawPath); ok {
					rawPath = rrest
				} else {
					rawPath = ""
				}
			}
			return u, path, rawPath
		}
	}
	switch {
	case path == "/v1/messages" || strings.HasPrefix(path, "/v1/messages/") || path == "/v1/complete":
		return s.anthropic, path, rawPath
	}
	for _, p := range openAIPaths {
		if strings.HasPrefix(path, p) {
			return s.openai, path, rawPath
		}
	}
	h := r.Header
	if h.Get("Anthropic-Version") != "" || h.Get("X-Api-Key") != "" {
		return s.anthropic, path, rawPath
	}
	if _, ok := bearer(h); ok {
		return s.openai, path, rawPath
	}
	return s.anthropic, path, rawPath
}

// cutFirstSegment splits "/a/b/c" into "a" and "/b/c" ("/a" gives "a" and
// "/").
func cutFirstSegment(p string) (first, rest string, ok bool) {
	if !strings.HasPrefix(p, "/") {
		return "", "", false
	}
	first, rest, found := strings.Cut(p[1:], "/")
	if !found {
		return first, "/", first != ""
	}
	return first, "/" + rest, first != ""
}

func bearer(h http.Header) (string, bool) {
	a := h.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:]), true
	}
	return "", false
}

// credential is the API key a request carries in its upstream's header.
func credential(h http.Header, api API) string {
	if api == APIAnthropic {
		if k := h.Get("X-Api-Key"); k != "" {
			return k
		}
	}
	k, _ := bearer(h)
	if k == "" {
		k = h.Get("X-Api-Key")
	}
	return k
}

// keyFingerprint names the credential a request will be sent upstream
// with, the way the scheduler's budget keys name it.
func keyFingerprint(h http.Header) string {
	if k := h.Get("X-Api-Key"); k != "" {
		return fingerprint.Of(k)
	}
	k, _ := bearer(h)
	return fingerprint.Of(k)
}

// tokenSet checks proxy tokens in constant time.
type tokenSet struct {
	sums   [][sha256.Size]byte
	tokens []*Token
}

func newTokenSet(ts []Token) *tokenSet {
	s := &tokenSet{}
	for i := range ts {
		s.sums = append(s.sums, sha256.Sum256([]byte(ts[i].Token)))
		s.tokens = append(s.tokens, &ts[i])
	}
	return s
}

// lookup returns the token equal to secret, comparing against every token
// whatever matches, so timing tells nothing about which one.
func (s *tokenSet) lookup(secret string) *Token {
	if secret == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(secret))
	var found *Token
	for i := range s.sums {
		if subtle.ConstantTimeCompare(sum[:], s.sums[i][:]) == 1 {
			found = s.tokens[i]
		}
	}
	return found
}

// authResult is what authentication decided for one request.
type authResult struct {
	token *Token
	// inject is the provider key to send instead of the client's
	// credential ("" keeps the client's own).
	inject string
	// reject, when non-empty, is the HeaderError reason to refuse with.
	reject  string
	message string
}

// authenticate checks the request's proxy token, if tokens are configured.
func (s *Server) authenticate(h http.Header, up *upstream) authResult {
	if len(s.tokens.tokens) == 0 {
		return authResult{}
	}
	if t := s.tokens.lookup(h.Get(HeaderToken)); t != nil {
		res := authResult{token: t}
		if credential(h, up.api) == "" {
			res.inject = s.heldKey(t, up)
		}
		return res
	}
	if t := s.tokens.lookup(credential(h, up.api)); t != nil {
		key := s.heldKey(t, up)
		if key == "" {
			return authResult{token: t, reject: "no_key", message: "streamgate proxy: this proxy holds no API key for upstream " + up.name +
				": send your own key and the proxy token in the " + HeaderToken + " header"}
		}
		return authResult{token: t, inject: key}
	}
	return authResult{reject: "unauthorized", message: "streamgate proxy: missing or invalid proxy token (send it as the API key, or in the " + HeaderToken + " header)"}
}

func (s *Server) heldKey(t *Token, up *upstream) string {
	if k := t.APIKeys[up.name]; k != "" {
		return k
	}
	return up.apiKey
}

// setCredential replaces whatever credential h carries with key, in the
// header the upstream's API expects.
func setCredential(h http.Header, api API, key string) {
	h.Del("X-Api-Key")
	h.Del("Authorization")
	if api == APIAnthropic {
		h.Set("X-Api-Key", key)
		return
	}
	h.Set("Authorization", "Bearer "+key)
}
