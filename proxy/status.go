package proxy

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/streamgate/streamgate/gate"
	"github.com/streamgate/streamgate/ratelimit"
)

// Status is the JSON document served on /streamgate/status: the same
// budget view as /metrics, per budget key.
type Status struct {
	// Ready is false once shutdown has begun.
	Ready bool `json:"ready"`
	// Time is when the view was taken.
	Time time.Time `json:"time"`
	// Keys holds one entry per budget key, sorted.
	Keys []KeyStatus `json:"keys"`
}

// KeyStatus is one budget key's scheduling state. Fingerprint names the
// API key; the key itself is never shown.
type KeyStatus struct {
	Provider    string `json:"provider"`
	Fingerprint string `json:"fingerprint"`
	ModelClass  string `json:"model_class"`
	// Queued is the number of waiting requests per priority.
	Queued map[string]int `json:"queued"`
	// InFlight is the number of admitted requests not yet finished.
	InFlight int `json:"in_flight"`
	// ConcurrencyLimit is the gate's current limit on InFlight.
	ConcurrencyLimit int `json:"concurrency_limit"`
	// OpenRate is the gate's rate of opening streams per second; absent
	// when unlimited.
	OpenRate *float64 `json:"open_rate,omitempty"`
	// CooldownUntil and BackoffUntil are set while a rate-limit cooldown
	// or an overload backoff is in effect.
	CooldownUntil *time.Time `json:"cooldown_until,omitempty"`
	BackoffUntil  *time.Time `json:"backoff_until,omitempty"`
	// OpenReservations is the number of open budget reservations.
	OpenReservations int `json:"open_reservations"`
	// Dimensions holds the dimensions whose limit is known, by name
	// ("requests", "input_tokens", ...).
	Dimensions map[string]DimensionStatus `json:"dimensions"`
}

// DimensionStatus is one budget dimension.
type DimensionStatus struct {
	// Limit is the limit per window.
	Limit int64 `json:"limit"`
	// Remaining is the predicted remaining level, refilled to now.
	Remaining float64 `json:"remaining"`
	// Held is output reserved for streams in flight, not yet produced.
	Held int64 `json:"held"`
	// Available is what a new request could take now: Remaining - Held.
	Available float64 `json:"available"`
}

// Status returns the current view of every budget key.
func (s *Server) Status(ctx context.Context) Status {
	now := time.Now()
	st := Status{Ready: s.ready.Load(), Time: now, Keys: []KeyStatus{}}
	for k, gs := range s.tr.Keys() {
		ks := KeyStatus{
			Provider:         k.Provider.String(),
			Fingerprint:      k.Fingerprint,
			ModelClass:       k.ModelClass,
			Queued:           map[string]int{},
			InFlight:         gs.InFlight,
			ConcurrencyLimit: gs.Limit,
			Dimensions:       map[string]DimensionStatus{},
		}
		for p := range gate.NumPriorities {
			ks.Queued[gate.Priority(p).String()] = gs.Queued[p]
		}
		if r := gs.OpenRate; !math.IsInf(r, 0) && !math.IsNaN(r) {
			ks.OpenRate = &r
		}
		if t := gs.CooldownUntil; t.After(now) {
			ks.CooldownUntil = &t
		}
		if t := gs.BackoffUntil; t.After(now) {
			ks.BackoffUntil = &t
		}
		if v, err := s.tr.Budget().View(ctx, k); err == nil {
			ks.OpenReservations = v.Open
			for d, dv := range v.Dimensions {
				if !dv.Known {
					continue
				}
				ks.Dimensions[ratelimit.Dimension(d).String()] = DimensionStatus{
					Limit: dv.Limit, Remaining: dv.Level, Held: dv.Held, Available: dv.Available(),
				}
			}
		}
		st.Keys = append(st.Keys, ks)
	}
	slices.SortFunc(st.Keys, func(a, b KeyStatus) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Fingerprint, b.Fingerprint), cmp.Compare(a.ModelClass, b.ModelClass))
	})
	return st
}

// serveOps serves the operational endpoints.
func (s *Server) serveOps(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case PathHealthz:
		_, _ = w.Write([]byte("ok\n"))
		return
	case PathReadyz:
		if !s.ready.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
		return
	}
	if !s.cfg.OpenOps && len(s.tokens.tokens) > 0 {
		secret := r.Header.Get(HeaderToken)
		if secret == "" {
			secret, _ = bearer(r.Header)
		}
		if s.tokens.lookup(secret) == nil {
			w.Header().Set(HeaderError, "unauthorized")
			http.Error(w, "streamgate proxy: a proxy token is required (Authorization: Bearer or "+HeaderToken+")", http.StatusUnauthorized)
			return
		}
	}
	if r.URL.Path == PathMetrics {
		s.metrics.Handler().ServeHTTP(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Status(ctx))
}
