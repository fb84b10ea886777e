package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"

	streamgate "github.com/streamgate/streamgate"
)

// reqInfo follows one proxied request. Every field is written by the
// goroutine serving the request (the ReverseProxy calls its hooks
// synchronously), so it needs no lock.
type reqInfo struct {
	id            string
	start         time.Time
	up            *upstream
	path, rawPath string
	auth          authResult
	fp            string
	endpoint      streamgate.Endpoint
	sentAt        time.Time // handed to the scheduler
	respAt        time.Time // the scheduler returned the response
	upstreamID    string
	reason        string // HeaderError of a response the proxy wrote
	err           error
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(infoKey{}).(*reqInfo)
	return info
}

func newIDPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "sgp_" + hex.EncodeToString(b[:])
}

func (s *Server) newID() string {
	return s.idPrefix + "_" + strconv.FormatUint(s.nextID.Add(1), 36)
}

// Operational paths, served by the proxy itself.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
	PathStatus  = "/streamgate/status"
)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathHealthz, PathReadyz, PathMetrics, PathStatus:
		s.serveOps(w, r)
		return
	}
	if r.Method == http.MethodConnect {
		// A proxy for APIs, not a tunnel to anywhere.
		http.Error(w, "streamgate proxy: CONNECT is not supported", http.StatusMethodNotAllowed)
		return
	}
	info := &reqInfo{id: s.newID(), start: time.Now()}
	rw := &respWriter{ResponseWriter: w}
	rw.Header().Set(HeaderRequestID, info.id)
	info.up, info.path, info.rawPath = s.route(r)
	defer func() {
		p := recover()
		s.finish(rw, r, info, p)
		if p != nil {
			panic(p)
		}
	}()
	info.auth = s.authenticate(r.Header, info.up)
	if info.auth.reject != "" {
		info.reason = info.auth.reject
		pe := &proxyError{status: http.StatusUnauthorized, reason: info.auth.reject, typ: "authentication_error",
			oaiType: "invalid_request_error", oaiCode: "invalid_api_key", message: info.auth.message}
		pe.write(rw, info.up.api, info.id)
		return
	}
	if r.ContentLength > s.cfg.MaxRequestBytes {
		s.errorHandler(rw, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)), &http.MaxBytesError{Limit: s.cfg.MaxRequestBytes})
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)
	}
	s.rp.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
}

// rewrite builds the upstream request: the configured upstream's URL with
// the request's path, the proxy's own headers removed, the held key
// substituted when the client presented a proxy token as its key.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	info := infoFrom(pr.In.Context())
	out := pr.Out
	out.URL.Path, out.URL.RawPath = info.path, info.rawPath
	pr.SetURL(info.up.target)
	h := out.Header
	h.Del(HeaderToken)
	// Let the upstream transport negotiate (and undo) compression itself:
	// the scheduler must read the event stream as it passes.
	h.Del("Accept-Encoding")
	if info.auth.inject != "" {
		setCredential(h, info.up.api, info.auth.inject)
	}
	info.fp = keyFingerprint(h)
	info.endpoint = streamgate.Classify(out)
	info.sentAt = time.Now()
}

func (s *Server) modifyResponse(resp *http.Response) error {
	if resp.Request == nil {
		return nil
	}
	info := infoFrom(resp.Request.Context())
	if info == nil {
		return nil
	}
	info.respAt = time.Now()
	info.upstreamID = resp.Header.Get("Request-Id")
	if info.upstreamID == "" {
		info.upstreamID = resp.Header.Get("X-Request-Id")
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = &errRecorder{ReadCloser: resp.Body, info: info}
	}
	return nil
}

// errRecorder remembers why a response body ended early, for the log.
type errRecorder struct {
	io.ReadCloser
	info *reqInfo
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.ReadCloser.Read(p)
	if err != nil && err != io.EOF && e.info.err == nil {
		e.info.err = err
	}
	return n, err
}

func (s *Server) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	info := infoFrom(r.Context())
	info.err = err
	if r.Context().Err() != nil {
		// The client went away; nobody reads this.
		info.reason = "client_gone"
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	pe := errorFor(err)
	info.reason = pe.reason
	pe.write(w, info.up.api, info.id)
}

// finish logs a request and records its added latency. p is what the
// handler panicked with (http.ErrAbortHandler for an aborted stream).
func (s *Server) finish(rw *respWriter, r *http.Request, info *reqInfo, p any) {
	now := time.Now()
	outcome := "ok"
	level := slog.LevelInfo
	switch {
	case p != nil && r.Context().Err() != nil:
		outcome = "client_gone"
	case p != nil:
		outcome, level = "aborted", slog.LevelWarn
	case info.reason != "":
		outcome = info.reason
		if info.reason == "upstream_unreachable" {
			level = slog.LevelWarn
		}
	}
	if !info.respAt.IsZero() && !rw.headerAt.IsZero() {
		s.metrics.ObserveAddedLatency(info.sentAt.Sub(info.start) + rw.headerAt.Sub(info.respAt))
	}
	status := rw.status
	if status == 0 && p == nil {
		status = http.StatusOK
	}
	attrs := []slog.Attr{
		slog.String("id", info.id),
		slog.String("method", r.Method),
		slog.String("path", info.path),
		slog.String("upstream", info.up.name),
		slog.String("endpoint", info.endpoint.String()),
		slog.Int("status", status),
		slog.String("outcome", outcome),
		slog.Int64("bytes", rw.bytes),
		slog.Float64("duration_ms", msec(now.Sub(info.start))),
	}
	if info.fp != "" {
		attrs = append(attrs, slog.String("key", info.fp))
	}
	if info.auth.token != nil {
		attrs = append(attrs, slog.String("client", info.auth.token.Name))
	}
	if !rw.firstWriteAt.IsZero() {
		attrs = append(attrs, slog.Float64("ttfb_ms", msec(rw.firstWriteAt.Sub(info.start))))
	}
	if info.upstreamID != "" {
		attrs = append(attrs, slog.String("upstream_request_id", info.upstreamID))
	}
	if info.err != nil && !errors.Is(info.err, context.Canceled) {
		attrs = append(attrs, slog.String("error", info.err.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "streamgate proxy request", attrs...)
}

func msec(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// respWriter records what was written, for the log and the added-latency
// metric. It passes flushes through (Unwrap), so events reach the client
// as soon as the ReverseProxy flushes them.
type respWriter struct {
	http.ResponseWriter
	status       int
	bytes        int64
	headerAt     time.Time
	firstWriteAt time.Time
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		w.headerAt = time.Now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.firstWriteAt.IsZero() && len(p) > 0 {
		w.firstWriteAt = time.Now()
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client.
func (w *respWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
