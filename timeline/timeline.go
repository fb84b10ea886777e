// Package timeline records what a streamgate run did over time, as JSON
// Lines, and renders it: the Transport's events (queued, admitted, retry,
// completed, failed, ...), the budget levels it believed in, and the
// progress of the work. `streamgate batch --timeline FILE` and
// `streamgate demo` write timelines; Read loads one back and WritePNG draws
// budget remaining and throughput over time.
//
// # Format
//
// Every line is one JSON object with a "type" and a time "t" (RFC 3339
// with nanoseconds) and, when several runs share a file, the run's name in
// "run":
//
//	{"type":"run","t":...,"run":"streamgate","strategy":"streamgate","window_ms":10000,"total":120}
//	{"type":"event","t":...,"run":"streamgate","event":"retry","id":7,"key":"anthropic/fp_.../claude-sonnet-4","model":"claude-sonnet-4-5","attempt":1,"status":429,"class":"rate_limited","delay_ms":1000,"err":"..."}
//	{"type":"budget","t":...,"run":"streamgate","model_class":"claude-sonnet-4","dims":[{"dim":"output_tokens","limit":8000,"level":1234.5,"held":300}]}
//	{"type":"progress","t":...,"run":"streamgate","done":40,"total":120,"output_tokens":16000,"useful_tokens":15200,"in_flight":9}
//
// Fields that do not apply are omitted. Readers must ignore unknown types
// and fields; Read skips lines it cannot parse.
package timeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

// Record types.
const (
	TypeRun      = "run"
	TypeEvent    = "event"
	TypeBudget   = "budget"
	TypeProgress = "progress"
)

// Record is one line of a timeline. Which fields are set depends on Type.
type Record struct {
	Type string    `json:"type"`
	T    time.Time `json:"t"`
	Run  string    `json:"run,omitempty"`

	// TypeRun.
	Strategy string  `json:"strategy,omitempty"`
	WindowMS float64 `json:"window_ms,omitempty"`
	Total    int     `json:"total,omitempty"`

	// TypeEvent: a streamgate.Event.
	Event        string  `json:"event,omitempty"`
	ID           uint64  `json:"id,omitempty"`
	Key          string  `json:"key,omitempty"`
	Model        string  `json:"model,omitempty"`
	Attempt      int     `json:"attempt,omitempty"`
	Status       int     `json:"status,omitempty"`
	Class        string  `json:"class,omitempty"`
	WaitMS       float64 `json:"wait_ms,omitempty"`
	DelayMS      float64 `json:"delay_ms,omitempty"`
	InputTokens  int64   `json:"input_tokens,omitempty"`
	OutputTokens int64   `json:"output_tokens,omitempty"`
	Err          string  `json:"err,omitempty"`

	// TypeBudget.
	ModelClass string  `json:"model_class,omitempty"`
	Dims       []Level `json:"dims,omitempty"`

	// TypeProgress (OutputTokens, the output received including attempts
	// that failed, is cumulative there; Total is shared).
	Done         int   `json:"done,omitempty"`
	InFlight     int   `json:"in_flight,omitempty"`
	UsefulTokens int64 `json:"useful_tokens,omitempty"`
}

// Level is one dimension of a budget sample.
type Level struct {
	Dim   string  `json:"dim"`
	Limit int64   `json:"limit"`
	Level float64 `json:"level"`
	Held  int64   `json:"held,omitempty"`
}

// RunInfo describes a run at its start.
type RunInfo struct {
	Name     string
	Strategy string
	Start    time.Time
	Window   time.Duration
	Total    int
}

// ProgressInfo is one progress sample.
type ProgressInfo struct {
	Name        string
	Done, Total int
	// OutputTokens is the output received so far, failed attempts
	// included; UsefulTokens the output of the answers completed.
	OutputTokens int64
	UsefulTokens int64
	InFlight     int
}

// Recorder writes a timeline. Its methods are safe for concurrent use and
// fast enough to call from a streamgate.Transport observer: they encode
// into a buffer under a mutex; Flush writes the buffer out. Create one
// with NewRecorder; the zero value is not usable.
type Recorder struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	enc *json.Encoder
	err error
}

// NewRecorder returns a Recorder writing to w.
func NewRecorder(w io.Writer) *Recorder {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &Recorder{bw: bw, enc: json.NewEncoder(bw)}
}

func (r *Recorder) write(rec *Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if err := r.enc.Encode(rec); err != nil {
		r.err = fmt.Errorf("timeline: %w", err)
	}
}

// Run records the start of a run.
func (r *Recorder) Run(info RunInfo) {
	r.write(&Record{Type: TypeRun, T: info.Start, Run: info.Name, Strategy: info.Strategy,
		WindowMS: ms(info.Window), Total: info.Total})
}

// Event records one streamgate Event of run.
func (r *Recorder) Event(run string, e streamgate.Event) {
	rec := &Record{
		Type: TypeEvent, T: e.Time, Run: run, Event: e.Kind.String(), ID: e.ID,
		Model: e.Model, Attempt: e.Attempt, Status: e.Status,
		WaitMS: ms(e.Wait), DelayMS: ms(e.Delay),
		InputTokens: max(e.InputTokens, 0), OutputTokens: max(e.OutputTokens, 0),
	}
	if e.Key != (budget.Key{}) {
		rec.Key = e.Key.String()
	}
	if e.Class != 0 || e.Kind == streamgate.EventFailed || e.Kind == streamgate.EventRetry {
		rec.Class = e.Class.String()
	}
	if e.Err != nil {
		rec.Err = e.Err.Error()
	}
	r.write(rec)
}

// Budget records a budget's levels as the Transport saw them at t.
func (r *Recorder) Budget(t time.Time, run, modelClass string, v budget.View) {
	rec := &Record{Type: TypeBudget, T: t, Run: run, ModelClass: modelClass}
	for d, dv := range v.Dimensions {
		if !dv.Known || dv.Limit <= 0 {
			continue
		}
		rec.Dims = append(rec.Dims, Level{Dim: ratelimit.Dimension(d).String(), Limit: dv.Limit, Level: dv.Level, Held: dv.Held})
	}
	if len(rec.Dims) > 0 {
		r.write(rec)
	}
}

// Progress records a progress sample at t.
func (r *Recorder) Progress(t time.Time, p ProgressInfo) {
	r.write(&Record{Type: TypeProgress, T: t, Run: p.Name, Done: p.Done, Total: p.Total,
		OutputTokens: p.OutputTokens, UsefulTokens: p.UsefulTokens, InFlight: p.InFlight})
}

// Flush writes buffered records out and returns the first error met.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if err := r.bw.Flush(); err != nil {
		r.err = fmt.Errorf("timeline: %w", err)
	}
	return r.err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Timeline is a timeline read back.
type Timeline struct {
	// Records are the parsed lines, in file order.
	Records []Record
	// Skipped counts lines that were not a JSON object with a known shape
	// (a torn last line, foreign text).
	Skipped int
}

// MaxLine bounds one timeline line; longer lines are skipped.
const MaxLine = 1 << 20

// Read reads a timeline leniently: unparsable lines are counted in
// Skipped, never an error; the error is only a read error of r.
func Read(r io.Reader) (*Timeline, error) {
	tl := &Timeline{}
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > MaxLine {
				tooLong, line = true, line[:0]
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return tl, fmt.Errorf("timeline: %w", err)
		}
		if tooLong {
			tl.Skipped++
		} else {
			tl.parse(line)
		}
		line, tooLong = line[:0], false
		if err != nil {
			return tl, nil
		}
	}
}

func (tl *Timeline) parse(line []byte) {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n') {
		i++
	}
	if i == len(line) {
		return // blank
	}
	var rec Record
	if line[i] != '{' || json.Unmarshal(line, &rec) != nil || rec.Type == "" {
		tl.Skipped++
		return
	}
	tl.Records = append(tl.Records, rec)
}

// Runs returns the names of the runs in order of first appearance.
func (tl *Timeline) Runs() []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range tl.Records {
		if !seen[r.Run] {
			seen[r.Run] = true
			names = append(names, r.Run)
		}
	}
	return names
}

// Start returns the earliest record time (zero if there is none).
func (tl *Timeline) Start() time.Time {
	var t time.Time
	for _, r := range tl.Records {
		if !r.T.IsZero() && (t.IsZero() || r.T.Before(t)) {
			t = r.T
		}
	}
	return t
}
