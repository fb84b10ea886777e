package cost

import (
	"math"
	"slices"
	"sync"
)

// OutputPolicy chooses how much output budget a request reserves up front.
type OutputPolicy uint8

const (
	// ReserveMaxTokens reserves the request's max_tokens: the model cannot
	// produce more, so in-flight streams can never drain the output budget
	// below zero. Safe, and the default.
	ReserveMaxTokens OutputPolicy = iota
	// ReserveQuantile reserves a high quantile of the output lengths recently
	// seen for the model (times the safety factor, capped at max_tokens),
	// falling back to max_tokens until enough samples exist. More streams
	// run at once; the live output charge covers a stream that outgrows its
	// reservation.
	ReserveQuantile
)

// Estimate is the predicted cost of one request.
type Estimate struct {
	// Input is the calibrated input-token estimate, safety factor applied.
	Input int64
	// Output is the output-token reservation.
	Output int64
	// RawInput is the uncalibrated local estimate (for calibration later).
	RawInput int64
}

// Estimator predicts request costs and learns from actual usage. The zero
// value is not usable; use NewEstimator. Safe for concurrent use.
type Estimator struct {
	safety           float64
	policy           OutputPolicy
	quantile         float64
	minSamples       int
	defaultMaxTokens int64

	mu     sync.Mutex
	models map[string]*modelStats
}

const outputWindow = 256 // recent output lengths kept per model

type modelStats struct {
	ratio   float64 // EWMA of actual/estimated input tokens
	samples int
	outputs []int64 // ring of recent output lengths
	next    int
}

// Option configures an Estimator.
type Option interface{ apply(*Estimator) }

type optionFunc func(*Estimator)

func (f optionFunc) apply(e *Estimator) { f(e) }

// WithSafetyFactor multiplies estimates by f (default 1.2; values below 1
// are raised to 1).
func WithSafetyFactor(f float64) Option {
	return optionFunc(func(e *Estimator) { e.safety = max(f, 1) })
}

// WithOutputPolicy sets the output reservation policy (default
// ReserveMaxTokens). For ReserveQuantile, q is the quantile (e.g. 0.95) and
// minSamples the number of observed outputs needed before it applies.
func WithOutputPolicy(p OutputPolicy, q float64, minSamples int) Option {
	return optionFunc(func(e *Estimator) {
		e.policy = p
		if q > 0 && q <= 1 {
			e.quantile = q
		}
		if minSamples > 0 {
			e.minSamples = minSamples
		}
	})
}

// WithDefaultMaxTokens sets the output bound assumed for requests without
// max_tokens (OpenAI allows omitting it). Default 4096.
func WithDefaultMaxTokens(n int64) Option {
	return optionFunc(func(e *Estimator) {
		if n > 0 {
			e.defaultMaxTokens = n
		}
	})
}

// NewEstimator returns an Estimator with the given options.
func NewEstimator(opts ...Option) *Estimator {
	e := &Estimator{
		safety:           1.2,
		quantile:         0.95,
		minSamples:       20,
		defaultMaxTokens: 4096,
		models:           make(map[string]*modelStats),
	}
	for _, o := range opts {
		o.apply(e)
	}
	return e
}

// Heuristic constants of the local input estimate: about four characters a
// token of English text, a few tokens of framing per message, and a typical
// image's cost.
const (
	charsPerToken    = 4
	tokensPerMessage = 4
	tokensPerImage   = 1600
)

// RawInput is the uncalibrated local estimate of r's input tokens.
func RawInput(r Request) int64 {
	return (r.InputChars+charsPerToken-1)/charsPerToken +
		int64(r.Messages)*tokensPerMessage + int64(r.Images)*tokensPerImage
}

// Estimate predicts r's cost.
func (e *Estimator) Estimate(r Request) Estimate {
	raw := RawInput(r)
	maxOut := r.MaxTokens
	if maxOut <= 0 {
		maxOut = e.defaultMaxTokens
	}
	e.mu.Lock()
	ratio := 1.0
	var out int64 = maxOut
	if st := e.models[r.Model]; st != nil {
		if st.samples > 0 {
			ratio = st.ratio
		}
		if e.policy == ReserveQuantile && len(st.outputs) >= e.minSamples {
			q := quantile(st.outputs, e.quantile)
			out = min(maxOut, int64(math.Ceil(float64(q)*e.safety)))
		}
	}
	e.mu.Unlock()
	return Estimate{
		Input:    int64(math.Ceil(float64(raw) * ratio * e.safety)),
		Output:   max(out, 1),
		RawInput: raw,
	}
}

// ObserveInput teaches the estimator the actual input tokens the provider
// reported for a request whose raw estimate was rawInput.
func (e *Estimator) ObserveInput(model string, rawInput, actual int64) {
	if rawInput <= 0 || actual <= 0 {
		return
	}
	r := float64(actual) / float64(rawInput)
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stats(model)
	const alpha = 0.2
	if st.samples == 0 {
		st.ratio = r
	} else {
		st.ratio = alpha*r + (1-alpha)*st.ratio
	}
	st.samples++
}

// ObserveOutput records the output length of a completed request.
func (e *Estimator) ObserveOutput(model string, outputTokens int64) {
	if outputTokens <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stats(model)
	if len(st.outputs) < outputWindow {
		st.outputs = append(st.outputs, outputTokens)
		return
	}
	st.outputs[st.next] = outputTokens
	st.next = (st.next + 1) % outputWindow
}

// InputRatio reports the calibration ratio learned for model (1 if none).
func (e *Estimator) InputRatio(model string) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.models[model]; st != nil && st.samples > 0 {
		return st.ratio
	}
	return 1
}

// stats requires e.mu held.
func (e *Estimator) stats(model string) *modelStats {
	st := e.models[model]
	if st == nil {
		st = &modelStats{}
		e.models[model] = st
	}
	return st
}

// quantile returns the q-quantile (nearest rank) of xs without modifying it.
func quantile(xs []int64, q float64) int64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}
