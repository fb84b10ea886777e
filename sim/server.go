package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/fingerprint"
	"github.com/streamgate/streamgate/ratelimit"
)

// Server is the simulator: an http.Handler serving the Anthropic Messages
// API (/v1/messages, /v1/messages/count_tokens), the OpenAI Chat
// Completions API (/v1/chat/completions) and its own endpoints (GET
// /sim/stats, GET /sim/log, POST /sim/reset, GET /sim/health). Create one
// with New (the zero Server is not usable). A Server is safe for concurrent
// use; Close stops its background sampler and ends every open response.
type Server struct {
	cfg   Config
	clock Clock
	gen   Generator

	mu       sync.Mutex
	accounts map[accountKey]*account

	faults *faultState
	log    *recordLog
	totals *totals
	active atomic.Int64
	peak   atomic.Int64
	seq    atomic.Uint64
	busy   idleTracker

	done      chan struct{}
	closeOnce sync.Once
	bg        sync.WaitGroup
}

type accountKey struct {
	p  ratelimit.Provider
	fp string
}

// New returns a Server for cfg (zero fields take their documented
// defaults) and starts its stats sampler; call Close when done. If
// cfg.LogPath cannot be opened the Server still runs and Err reports why.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		clock:    cfg.Clock,
		gen:      Generator{Seed: cfg.Seed, MinOutputTokens: cfg.MinOutputTokens, MaxOutputTokens: cfg.MaxOutputTokens},
		accounts: map[accountKey]*account{},
		faults:   newFaultState(cfg.Faults),
		log:      newRecordLog(cfg.MaxLogRecords, cfg.LogPath),
		totals:   newTotals(),
		done:     make(chan struct{}),
	}
	s.bg.Add(1)
	go s.sampler()
	return s
}

// Generator returns the Generator whose answers this Server sends.
func (s *Server) Generator() Generator { return s.gen }

// Config returns the Server's configuration with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Err reports a problem with the JSONL log file (opening or writing it).
func (s *Server) Err() error {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return s.log.err
}

// Close ends every open response (streams end as "server_closed", held
// connections are released), stops the sampler and closes the log file. It
// returns the log file's error, if any. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.bg.Wait()
	return s.log.close()
}

// Reset forgets every key's buckets (they start full again), the prompt
// cache, the request log, the totals, the fired counts of targeted faults
// and the random fault sequence. Responses in flight keep running against
// their old buckets.
func (s *Server) Reset() {
	s.mu.Lock()
	s.accounts = map[accountKey]*account{}
	s.mu.Unlock()
	s.faults.reset()
	s.log.reset()
	s.totals.reset()
	s.peak.Store(s.active.Load())
}

// noteActive raises the peak of concurrent generating requests to n.
func (s *Server) noteActive(n int64) {
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// WaitIdle blocks until no API request is being handled (every request so
// far is in the log), or ctx is done. A client sees the end of a dropped or
// stalled response before the simulator has recorded it; tests call
// WaitIdle before reading Log.
func (s *Server) WaitIdle(ctx context.Context) error { return s.busy.wait(ctx) }

// Log returns the request log, oldest first.
func (s *Server) Log() []Record { return s.log.all() }

// WriteLogJSONL writes the request log as JSON lines, oldest first.
func (s *Server) WriteLogJSONL(w io.Writer) error { return writeJSONL(w, s.log.all()) }

// Levels are the true bucket levels of one API key at one instant, indexed
// by ratelimit.Dimension; -1 means the key has no such bucket on that
// endpoint. A key never used has full buckets.
type Levels struct {
	At        time.Time
	Anthropic [ratelimit.NumDimensions]float64
	OpenAI    [ratelimit.NumDimensions]float64
}

// Levels returns apiKey's true bucket levels now (Config.Clock).
func (s *Server) Levels(apiKey string) Levels {
	now := s.clock.Now()
	lv := Levels{At: now}
	for _, p := range []ratelimit.Provider{ratelimit.Anthropic, ratelimit.OpenAI} {
		a := s.lookup(p, apiKey)
		if a == nil {
			a = newAccount(p, fingerprint.Of(apiKey), &s.cfg, now)
		}
		v := a.view(now)
		dst := &lv.Anthropic
		if p == ratelimit.OpenAI {
			dst = &lv.OpenAI
		}
		for d := range v {
			dst[d] = -1
			if v[d].present {
				dst[d] = v[d].level
			}
		}
	}
	return lv
}

// Stats returns the totals and bucket series now.
func (s *Server) Stats() Stats {
	now := s.clock.Now()
	st := Stats{Now: now, Interval: s.cfg.StatsInterval, Totals: s.totals.snapshot()}
	st.Totals.ActiveStreams = s.active.Load()
	st.Totals.PeakActiveStreams = s.peak.Load()
	for _, a := range s.allAccounts() {
		st.Keys = append(st.Keys, a.stats(now))
	}
	sortKeyStats(st.Keys)
	return st
}

func (s *Server) allAccounts() []*account {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*account, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, a)
	}
	return out
}

// lookup returns the (provider, key) account, or nil if it was never used.
func (s *Server) lookup(p ratelimit.Provider, apiKey string) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts[accountKey{p, fingerprint.Of(apiKey)}]
}

// account returns the (provider, key) account, creating it full.
func (s *Server) account(p ratelimit.Provider, apiKey string) *account {
	fp := fingerprint.Of(apiKey)
	k := accountKey{p, fp}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[k]
	if a == nil {
		a = newAccount(p, fp, &s.cfg, s.clock.Now())
		s.accounts[k] = a
	}
	return a
}

// sampler records every bucket's level each StatsInterval until Close.
func (s *Server) sampler() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			now := s.clock.Now()
			for _, a := range s.allAccounts() {
				a.sample(now, s.cfg.StatsSamples)
			}
		}
	}
}

// maxBody is the largest request body accepted (the real limit is 32 MB).
const maxBody = 32 << 20

// ServeHTTP routes a request to the simulated endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/messages":
		s.serveAPI(w, r, ratelimit.Anthropic, "messages")
	case "/v1/messages/count_tokens":
		s.serveAPI(w, r, ratelimit.Anthropic, "count_tokens")
	case "/v1/chat/completions":
		s.serveAPI(w, r, ratelimit.OpenAI, "chat_completions")
	case "/sim/stats":
		s.serveJSON(w, r, func() any { return s.Stats() })
	case "/sim/log":
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		_ = s.WriteLogJSONL(w)
	case "/sim/reset":
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case "/sim/health":
		_, _ = io.WriteString(w, "ok\n")
	default:
		p := ratelimit.Anthropic
		if strings.HasPrefix(r.URL.Path, "/v1/chat/") {
			p = ratelimit.OpenAI
		}
		e := &apiError{status: http.StatusNotFound, typ: "not_found_error", message: "Not Found"}
		if p == ratelimit.OpenAI {
			e.typ = "invalid_request_error"
			e.message = "Invalid URL (" + r.Method + " " + r.URL.Path + ")"
		}
		rid := s.newRequestID(p)
		if p == ratelimit.OpenAI {
			w.Header().Set("X-Request-Id", rid)
		} else {
			w.Header().Set("Request-Id", rid)
		}
		writeError(w, p, e, rid)
	}
}

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request, v func() any) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v())
}

// newRequestID returns the next request id in the provider's shape.
func (s *Server) newRequestID(p ratelimit.Provider) string {
	n := s.seq.Add(1)
	return requestID(p, splitmix(n^s.cfg.Seed), splitmix(n+0x1234567))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// serveAPI authenticates and validates an API request, then hands it to
// the endpoint's handler, logging the outcome.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, p ratelimit.Provider, endpoint string) {
	s.busy.enter()
	defer s.busy.leave()
	start := time.Now()
	rid := s.newRequestID(p)
	if p == ratelimit.OpenAI {
		w.Header().Set("X-Request-Id", rid)
	} else {
		w.Header().Set("Request-Id", rid)
	}
	rec := &Record{Time: s.clock.Now(), RequestID: rid, Endpoint: endpoint, Key: fingerprint.Of("")}
	defer func() {
		rec.Duration = time.Since(start)
		s.log.add(*rec)
		s.totals.add(rec)
	}()
	var acct *account
	fail := func(e *apiError) {
		if acct != nil {
			x := &exchange{s: s, w: w, req: &request{provider: p}, acct: acct}
			x.setRateHeaders()
		}
		rec.Status, rec.End = e.status, e.end
		writeError(w, p, e, rid)
	}
	if r.Method != http.MethodPost {
		fail(&apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error", message: "Method Not Allowed", end: EndRejected})
		return
	}
	key, e := s.authenticate(r, p)
	if e != nil {
		fail(e)
		return
	}
	rec.Key = fingerprint.Of(key)
	acct = s.account(p, key)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(&apiError{status: http.StatusRequestEntityTooLarge, typ: "request_too_large", message: "Request exceeds the maximum allowed number of bytes.", end: EndRejected})
			return
		}
		rec.End = EndClientGone
		return
	}
	var req *request
	switch endpoint {
	case "chat_completions":
		req, e = parseOpenAI(body, &s.cfg)
	default:
		req, e = parseAnthropic(body, endpoint == "count_tokens", &s.cfg)
	}
	if e != nil {
		fail(e)
		return
	}
	req.endpoint = endpoint
	rec.Model, rec.Stream = req.model, req.stream
	x := &exchange{s: s, w: w, r: r, req: req, rec: rec, key: key, rid: rid}
	x.acct = acct
	if endpoint == "count_tokens" {
		x.countTokens()
		return
	}
	x.generate()
}

// authenticate returns the request's API key or the real 401 (and, for
// Anthropic, the real 400 for a missing anthropic-version).
func (s *Server) authenticate(r *http.Request, p ratelimit.Provider) (string, *apiError) {
	bearer := ""
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		bearer = strings.TrimSpace(a[7:])
	}
	unauthorized := func(msg, code string) *apiError {
		typ := "authentication_error"
		if p == ratelimit.OpenAI {
			typ = "invalid_request_error"
		}
		return &apiError{status: http.StatusUnauthorized, typ: typ, message: msg, code: code, end: EndRejected}
	}
	if p == ratelimit.OpenAI {
		if bearer == "" {
			return "", unauthorized("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.", "")
		}
		if !s.validKey(bearer) {
			return "", unauthorized("Incorrect API key provided: "+maskKey(bearer)+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_api_key")
		}
		return bearer, nil
	}
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		key = bearer
	}
	if key == "" {
		return "", unauthorized("x-api-key header is required", "")
	}
	if !s.validKey(key) {
		return "", unauthorized("invalid x-api-key", "")
	}
	if r.Header.Get("Anthropic-Version") == "" {
		return "", invalid("anthropic-version: header is required")
	}
	return key, nil
}

func (s *Server) validKey(k string) bool {
	if len(s.cfg.ValidKeys) == 0 {
		return true
	}
	for _, v := range s.cfg.ValidKeys {
		if v == k {
			return true
		}
	}
	return false
}

// maskKey shows a key the way OpenAI's 401 does: its start and its end.
func maskKey(k string) string {
	if len(k) <= 8 {
		return "***"
	}
	return k[:3] + "***" + k[len(k)-4:]
}

// idleTracker counts requests in progress and wakes waiters when none are.
type idleTracker struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{}
}

func (t *idleTracker) enter() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *idleTracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		for _, w := range t.waiters {
			close(w)
		}
		t.waiters = nil
	}
}

func (t *idleTracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	t.waiters = append(t.waiters, ch)
	t.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
