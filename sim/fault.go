package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault names, as used in the x-sim-fault header, the "+fault=" model
// suffix and FaultRates.
const (
	// Fault429 is a 429 rate_limit_error before the stream (retry-after from
	// the "retry" parameter, default 1 s; no budget is drawn).
	Fault429 = "429"
	// Fault529 is a 529 overloaded_error before the stream (OpenAI endpoint:
	// 503 with code server_is_overloaded, as OpenAI has no 529).
	Fault529 = "529"
	// Fault529Midstream is an overloaded error event after output token "at".
	Fault529Midstream = "529-midstream"
	// Fault500, Fault502 and Fault503 are server errors before the stream.
	Fault500 = "500"
	Fault502 = "502"
	Fault503 = "503"
	// FaultReset resets the connection before any response byte (SO_LINGER 0
	// where the connection allows it).
	FaultReset = "reset"
	// FaultDropMidstream closes the connection after output token "at",
	// after writing "cut" bytes of the next event (cuts may land inside a
	// multi-byte character).
	FaultDropMidstream = "drop-midstream"
	// FaultStallMidstream stops sending after output token "at" and holds the
	// connection open until the client gives up, the Server closes, or
	// Config.MaxHold passes (then the connection is dropped).
	FaultStallMidstream = "stall-midstream"
	// FaultNoResponse reads the request and never answers (held like a stall).
	FaultNoResponse = "no-response"
	// FaultSlowFirstToken delays the first content event by "delay"
	// (default 10 s); headers and message_start are sent at once.
	FaultSlowFirstToken = "slow-first-token"
	// FaultMalformedEvent inserts one event whose data is truncated JSON after
	// output token "at"; no content is lost, the stream then goes on.
	FaultMalformedEvent = "malformed-event"
	// FaultNoTerminal sends everything except message_stop (OpenAI:
	// [DONE]), then ends the body cleanly.
	FaultNoTerminal = "no-terminal"
	// FaultContextLength is the real 400 for a prompt over the context
	// window.
	FaultContextLength = "context-length"
	// FaultContentFilter is the 400 "Output blocked by content filtering
	// policy".
	FaultContentFilter = "content-filter"
	// FaultSpendCap is the spend-cap 429: no retry-after, Anthropic
	// error.details.error_code "enforced_spend_limit_reached", OpenAI
	// insufficient_quota.
	FaultSpendCap = "spend-cap"
)

// FaultNames lists every fault name, in the order random injection
// considers them.
func FaultNames() []string {
	return []string{
		Fault429, Fault529, Fault529Midstream, Fault500, Fault502, Fault503,
		FaultReset, FaultDropMidstream, FaultStallMidstream, FaultNoResponse,
		FaultSlowFirstToken, FaultMalformedEvent, FaultNoTerminal,
		FaultContextLength, FaultContentFilter, FaultSpendCap,
	}
}

// midstream reports whether a fault acts after the response has begun.
func midstream(name string) bool {
	switch name {
	case Fault529Midstream, FaultDropMidstream, FaultStallMidstream,
		FaultSlowFirstToken, FaultMalformedEvent, FaultNoTerminal:
		return true
	}
	return false
}

func knownFault(name string) bool {
	for _, n := range FaultNames() {
		if n == name {
			return true
		}
	}
	return false
}

// FaultHeader is the request header that targets a fault at one request.
const FaultHeader = "X-Sim-Fault"

// ErrUnknownFault is returned by ParseFaultSpec and ParseFaultRates for a
// name that is not one of FaultNames.
var ErrUnknownFault = errors.New("sim: unknown fault")

// FaultSpec is a parsed fault directive: "NAME[;at=N][;cut=K][;times=K]
// [;id=X][;delay=D][;retry=S]". Parameters:
//
//   - at: the output token after which a mid-stream fault acts (0 = before
//     the first token); default half the response's tokens.
//   - cut: for drop-midstream, how many bytes of the next event are written
//     before the connection closes; default 0.
//   - times: the fault fires for the first K requests carrying the same spec
//     (keyed by id), later ones pass clean; default 1.
//   - id: the key for times; default (empty ID) the directive text itself.
//   - delay: for slow-first-token, a Go duration ("2s") or seconds; default 10s.
//   - retry: for 429, the retry-after to send (duration or seconds); default 1s.
//
// Unknown parameters and unparsable values are ignored (left unset).
type FaultSpec struct {
	Name  string
	At    int // -1 unset
	Cut   int
	Times int
	ID    string
	Delay time.Duration
	Retry time.Duration

	raw    string  // the directive as given: the default key for times
	atFrac float64 // random injection: where in the response it acts
}

// key is what times counts by: ID, else the directive text.
func (f FaultSpec) key() string {
	if f.ID != "" {
		return f.ID
	}
	return f.raw
}

// ParseFaultSpec parses a fault directive. Only an empty or unknown name is
// an error (ErrUnknownFault).
func ParseFaultSpec(s string) (FaultSpec, error) {
	parts := strings.Split(s, ";")
	f := FaultSpec{Name: strings.TrimSpace(parts[0]), At: -1, Times: 1, raw: strings.TrimSpace(s)}
	if !knownFault(f.Name) {
		return FaultSpec{}, fmt.Errorf("%w %q", ErrUnknownFault, f.Name)
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(strings.ToLower(k)), strings.TrimSpace(v)
		switch k {
		case "at":
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				f.At = n
			}
		case "cut":
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				f.Cut = n
			}
		case "times":
			if n, err := strconv.Atoi(v); err == nil && n >= 1 {
				f.Times = n
			}
		case "id":
			if v != "" {
				f.ID = v
			}
		case "delay":
			if d, ok := parseDuration(v); ok {
				f.Delay = d
			}
		case "retry":
			if d, ok := parseDuration(v); ok {
				f.Retry = d
			}
		}
	}
	return f, nil
}

// String renders the spec in the directive syntax, parameters in a fixed
// order, omitting defaults.
func (f FaultSpec) String() string {
	var b strings.Builder
	b.WriteString(f.Name)
	if f.At >= 0 {
		fmt.Fprintf(&b, ";at=%d", f.At)
	}
	if f.Cut > 0 {
		fmt.Fprintf(&b, ";cut=%d", f.Cut)
	}
	if f.Times > 1 {
		fmt.Fprintf(&b, ";times=%d", f.Times)
	}
	if f.ID != "" {
		fmt.Fprintf(&b, ";id=%s", f.ID)
	}
	if f.Delay > 0 {
		fmt.Fprintf(&b, ";delay=%s", f.Delay)
	}
	if f.Retry > 0 {
		fmt.Fprintf(&b, ";retry=%s", f.Retry)
	}
	return b.String()
}

// parseDuration accepts a Go duration or a number of seconds.
func parseDuration(v string) (time.Duration, bool) {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, true
	}
	if sec, err := strconv.ParseFloat(v, 64); err == nil && sec >= 0 && sec < 1e9 {
		return time.Duration(sec * float64(time.Second)), true
	}
	return 0, false
}

// FaultRates injects faults at random: each /v1/messages or
// /v1/chat/completions request draws from a generator seeded with Seed (in
// arrival order), and gets fault name with probability Rates[name]. The
// zero value injects nothing. Mid-stream faults act after a token drawn
// from the same generator.
type FaultRates struct {
	Seed  uint64
	Rates map[string]float64
}

// ParseFaultRates parses "name=p,name=p" (as the CLI takes it).
func ParseFaultRates(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return nil, fmt.Errorf("sim: fault rate %q: want name=probability", item)
		}
		if !knownFault(k) {
			return nil, fmt.Errorf("%w %q", ErrUnknownFault, k)
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || p < 0 || p > 1 {
			return nil, fmt.Errorf("sim: fault rate %q: probability must be in [0,1]", item)
		}
		out[k] = p
	}
	return out, nil
}

// faultState holds the fired counts of targeted faults and the random
// injector. Safe for concurrent use.
type faultState struct {
	mu    sync.Mutex
	fired map[string]int
	rng   *rand.Rand
	seed  uint64
	rates []faultRate
}

type faultRate struct {
	name string
	p    float64
}

func newFaultState(fr FaultRates) *faultState {
	f := &faultState{fired: map[string]int{}, seed: fr.Seed}
	for _, n := range FaultNames() {
		if p := fr.Rates[n]; p > 0 {
			f.rates = append(f.rates, faultRate{n, p})
		}
	}
	f.rng = rand.New(rand.NewPCG(fr.Seed, 0x5eed))
	return f
}

// reset forgets fired counts and restarts the random sequence.
func (f *faultState) reset() {
	f.mu.Lock()
	f.fired = map[string]int{}
	f.rng = rand.New(rand.NewPCG(f.seed, 0x5eed))
	f.mu.Unlock()
}

// claim reports whether the targeted fault keyed by id may fire, counting
// it if so.
func (f *faultState) claim(id string, times int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired[id] >= times {
		return false
	}
	f.fired[id]++
	return true
}

// random draws the next request's random fault. atFrac in [0,1) places a
// mid-stream fault within the response. Two numbers are drawn per request
// whatever the outcome, so the sequence depends only on request order.
func (f *faultState) random() (name string, atFrac float64) {
	if len(f.rates) == 0 {
		return "", 0
	}
	f.mu.Lock()
	u, v := f.rng.Float64(), f.rng.Float64()
	f.mu.Unlock()
	acc := 0.0
	for _, r := range f.rates {
		acc += r.p
		if u < acc {
			return r.name, v
		}
	}
	return "", 0
}
