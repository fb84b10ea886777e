package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/metrics"
	"github.com/streamgate/streamgate/ratelimit"
)

// Server is the proxy. Make one with New; the zero value is not usable. It
// is safe for concurrent use: Handler may serve any number of requests,
// and Serve may run on several listeners at once. Shutdown ends it.
type Server struct {
	cfg       Config
	log       *slog.Logger
	tr        *streamgate.Transport
	metrics   *metrics.Metrics
	rp        *httputil.ReverseProxy
	handler   http.Handler
	tokens    *tokenSet
	anthropic *upstream
	openai    *upstream
	byName    map[string]*upstream
	nextID    atomic.Uint64
	idPrefix  string
	ready     atomic.Bool

	mu       sync.Mutex
	servers  map[*http.Server]struct{}
	shutdown bool
}

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// New validates cfg and returns a Server ready to serve.
func New(cfg Config) (*Server, error) {
	cfg, ups, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		metrics:  cfg.Metrics,
		tokens:   newTokenSet(cfg.Tokens),
		byName:   map[string]*upstream{},
		servers:  map[*http.Server]struct{}{},
		idPrefix: newIDPrefix(),
	}
	for _, u := range ups {
		s.byName[u.name] = u
	}
	s.anthropic, s.openai = s.byName[string(APIAnthropic)], s.byName[string(APIOpenAI)]
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	base := cfg.UpstreamTransport
	if base == nil {
		base = defaultUpstreamTransport()
	}
	opts := []streamgate.Option{
		streamgate.WithBase(base),
		streamgate.WithObserver(s.metrics.Observe),
		streamgate.WithMaxAdmissionWait(cfg.MaxAdmissionWait),
		streamgate.WithGate(cfg.Gate),
		streamgate.WithMaxRequestBytes(cfg.MaxRequestBytes),
	}
	if cfg.Window > 0 {
		opts = append(opts, streamgate.WithWindow(cfg.Window))
	}
	if cfg.Store != nil {
		opts = append(opts, streamgate.WithStore(cfg.Store))
	}
	if cfg.StreamIdleTimeout > 0 {
		opts = append(opts, streamgate.WithIdleTimeout(cfg.StreamIdleTimeout))
	}
	for _, l := range cfg.Limits {
		p := ratelimit.Anthropic
		if l.API == APIOpenAI {
			p = ratelimit.OpenAI
		}
		opts = append(opts, streamgate.WithLimits(p, l.ModelClass, l.Limits))
	}
	s.tr = streamgate.NewTransport(append(opts, cfg.TransportOptions...)...)
	s.metrics.Watch(s.tr)
	s.rp = &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      s.tr,
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.errorHandler,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.handler = http.HandlerFunc(s.serveHTTP)
	s.ready.Store(true)
	return s, nil
}

func defaultUpstreamTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2048
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.ForceAttemptHTTP2 = true
	return t
}

// Transport returns the scheduler the proxy sends requests through (for
// its budget view, or to share it with in-process callers).
func (s *Server) Transport() *streamgate.Transport { return s.tr }

// Metrics returns the proxy's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Handler returns the proxy's HTTP handler: the operational endpoints and
// the proxy itself. Serve uses it; it may also be mounted on a caller's
// own http.Server (which should set the same limits and timeouts).
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on Config.Listen and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx is done or Shutdown is
// called. When ctx is done it shuts down gracefully: it stops accepting,
// lets in-flight requests and streams finish for up to
// Config.DrainTimeout, then aborts what is left. It refuses (closing ln)
// a non-loopback listener when no tokens are configured. It returns nil
// after a shutdown that drained everything.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := checkListen(ln.Addr().String(), len(s.cfg.Tokens) > 0); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.servers[srv] = struct{}{}
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return ErrServerClosed
		}
		return fmt.Errorf("proxy: %w", err)
	case <-ctx.Done():
		dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
		defer cancel()
		err := s.Shutdown(dctx)
		<-errc
		return err
	}
}

// Shutdown stops the proxy gracefully: /readyz turns 503, listeners
// close, idle connections close, and in-flight requests and streams run
// to their end. If ctx ends first, the remaining connections are closed
// (their streams aborted) and ctx's error is returned. Requests still
// waiting for admission then fail. Shutdown is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.mu.Lock()
	s.shutdown = true
	srvs := make([]*http.Server, 0, len(s.servers))
	for srv := range s.servers {
		srvs = append(srvs, srv)
	}
	s.mu.Unlock()
	var first error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, srv := range srvs {
		wg.Go(func() {
			err := srv.Shutdown(ctx)
			if err != nil {
				srv.Close()
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.tr.Close()
	if first != nil {
		s.log.Warn("streamgate proxy: drain deadline passed, remaining streams aborted", "err", first)
	}
	return first
}

// bufferPool shares ReverseProxy copy buffers. A stream holds its buffer
// for its whole life and events are small, so buffers are 8 KiB rather
// than the ReverseProxy's 32 KiB: a thousand open streams hold 8 MB, not
// 32 MB. Larger bodies just take more reads.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
