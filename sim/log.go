package sim

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"
)

// How a request ended, as Record.End reports it. Faults are recorded as
// "fault:" followed by the fault name.
const (
	// EndComplete: the whole answer was sent with stop_reason end_turn
	// (OpenAI finish_reason stop) and the terminal event.
	EndComplete = "complete"
	// EndMaxTokens: complete, but cut by max_tokens.
	EndMaxTokens = "max_tokens"
	// EndRateLimited: a 429 before any output (a budget or the
	// acceleration limit).
	EndRateLimited = "rate_limited"
	// EndRateLimitedMidstream: the output budget ran dry while streaming;
	// the stream ended with a rate-limit error event.
	EndRateLimitedMidstream = "rate_limited_midstream"
	// EndClientGone: the client went away before the response ended.
	EndClientGone = "client_gone"
	// EndServerClosed: the Server was closed while the response was open.
	EndServerClosed = "server_closed"
	// EndRejected: a 4xx validation or authentication error.
	EndRejected = "rejected"
	// EndOK: a request without generation (count_tokens) succeeded.
	EndOK = "ok"
)

// FaultEnd returns the Record.End value of a request ended by fault name.
func FaultEnd(name string) string { return "fault:" + name }

// Record is one request as the simulator saw it.
type Record struct {
	// Time is when the request arrived (Config.Clock).
	Time time.Time `json:"time"`
	// Duration is how long the simulator spent on it (real time).
	Duration time.Duration `json:"duration_ns"`
	// RequestID is the request-id (OpenAI: x-request-id) sent back.
	RequestID string `json:"request_id"`
	// Key is the API key's fingerprint (fingerprint.Of); never the key.
	Key string `json:"key"`
	// Endpoint is "messages", "count_tokens" or "chat_completions".
	Endpoint string `json:"endpoint"`
	// Model is the requested model, without a fault suffix.
	Model string `json:"model,omitempty"`
	// Stream reports a streaming request.
	Stream bool `json:"stream"`
	// Status is the HTTP status sent (0 if none was: reset, no-response).
	Status int `json:"status"`
	// InputTokens, CacheReadTokens and CacheCreationTokens are the usage
	// reported (input_tokens excludes both cache figures).
	InputTokens         int `json:"input_tokens"`
	CacheReadTokens     int `json:"cache_read_input_tokens,omitempty"`
	CacheCreationTokens int `json:"cache_creation_input_tokens,omitempty"`
	// OutputTokens is how many output tokens were actually sent.
	OutputTokens int `json:"output_tokens"`
	// PlannedTokens is how many output tokens the response would have had.
	PlannedTokens int `json:"planned_tokens,omitempty"`
	// End is how the request ended: one of the End constants or
	// FaultEnd(name).
	End string `json:"end"`
	// Fault is the fault injected, if any (even when it did not end the
	// request, e.g. malformed-event), with its parameters.
	Fault string `json:"fault,omitempty"`
	// Dimension names the bucket of a rate-limit error ("output_tokens").
	Dimension string `json:"dimension,omitempty"`
	// RetryAfter is the retry-after sent, in whole seconds.
	RetryAfter int64 `json:"retry_after,omitempty"`
}

// recordLog is a bounded ring of Records plus an optional JSONL file.
type recordLog struct {
	mu    sync.Mutex
	max   int
	recs  []Record
	head  int // index of the oldest record once the ring is full
	file  *os.File
	fileW *bufio.Writer
	err   error
}

func newRecordLog(max int, path string) *recordLog {
	l := &recordLog{max: max}
	if path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			l.err = err
		} else {
			l.file, l.fileW = f, bufio.NewWriter(f)
		}
	}
	return l
}

func (l *recordLog) add(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recs) < l.max {
		l.recs = append(l.recs, r)
	} else {
		l.recs[l.head] = r
		l.head = (l.head + 1) % l.max
	}
	if l.fileW != nil {
		b, _ := json.Marshal(r)
		b = append(b, '\n')
		if _, err := l.fileW.Write(b); err != nil && l.err == nil {
			l.err = err
		}
		if err := l.fileW.Flush(); err != nil && l.err == nil {
			l.err = err
		}
	}
}

// all returns the records oldest first.
func (l *recordLog) all() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Record, 0, len(l.recs))
	out = append(out, l.recs[l.head:]...)
	return append(out, l.recs[:l.head]...)
}

func (l *recordLog) reset() {
	l.mu.Lock()
	l.recs, l.head = nil, 0
	l.mu.Unlock()
}

func (l *recordLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		if err := l.file.Close(); err != nil && l.err == nil {
			l.err = err
		}
		l.file, l.fileW = nil, nil
	}
	return l.err
}

// writeJSONL writes recs as JSON lines.
func writeJSONL(w io.Writer, recs []Record) error {
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
