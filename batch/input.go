package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format is the batch file format of a workload: the provider whose
// asynchronous batch API the input lines (and the result lines) follow.
type Format uint8

const (
	// FormatUnknown is the zero Format: no valid line has been read.
	FormatUnknown Format = iota
	// Anthropic is the Message Batches format: input lines
	// {"custom_id", "params"}, result lines {"custom_id", "result"}.
	Anthropic
	// OpenAI is the Batch API format: input lines {"custom_id", "method",
	// "url", "body"}, result lines {"id", "custom_id", "response", "error"}.
	OpenAI
)

// String returns "anthropic", "openai" or "unknown".
func (f Format) String() string {
	switch f {
	case Anthropic:
		return "anthropic"
	case OpenAI:
		return "openai"
	}
	return "unknown"
}

// Endpoints of the OpenAI batch format that the runner can stream.
const openAIChatPath = "/v1/chat/completions"

// MaxLineBytes bounds one input or result line (a request body the
// Transport would also refuse to buffer).
const MaxLineBytes = 32 << 20

// Request is one valid line of a batch input file.
type Request struct {
	// Line is the 1-based line number in the input.
	Line int
	// CustomID is the line's custom_id, unique in the workload.
	CustomID string
	// Format is the line's format.
	Format Format
	// URL is the OpenAI line's url (the API path); empty for Anthropic.
	URL string
	// Body is the request body as written in the input: Anthropic's params,
	// OpenAI's body. The runner sends it with streaming turned on.
	Body json.RawMessage
	// Model is the body's model.
	Model string
	// MaxTokens is the body's max_tokens (OpenAI: max_completion_tokens or
	// max_tokens); 0 when absent.
	MaxTokens int64
}

// LineError is a line of a batch input file that cannot be run: malformed
// JSON, a missing or invalid field, a format different from the file's, or
// a duplicate custom_id.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// CustomID is the line's custom_id when one could be read.
	CustomID string
	// Reason says what is wrong, e.g. `duplicate custom_id "a" (first on
	// line 3)`.
	Reason string
}

// Error implements error.
func (e LineError) Error() string {
	if e.CustomID != "" {
		return fmt.Sprintf("line %d (custom_id %q): %s", e.Line, e.CustomID, e.Reason)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// ErrInvalidInput is wrapped by the *InputError Run returns when the input
// has invalid lines and Config.SkipInvalid is false. Nothing was sent.
var ErrInvalidInput = errors.New("batch: invalid input")

// InputError lists every invalid line of an input file. It matches
// ErrInvalidInput under errors.Is.
type InputError struct {
	Lines []LineError
}

// Error implements error: the first few invalid lines.
func (e *InputError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "batch: %d invalid input line(s)", len(e.Lines))
	for i, l := range e.Lines {
		if i == 5 {
			fmt.Fprintf(&sb, "; and %d more", len(e.Lines)-i)
			break
		}
		sb.WriteString("; ")
		sb.WriteString(l.Error())
	}
	return sb.String()
}

// Is reports whether target is ErrInvalidInput.
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// Workload is a parsed batch input file.
type Workload struct {
	// Format is the file's format: that of its first valid line.
	Format Format
	// Requests are the valid lines, in file order, with unique custom_ids.
	Requests []Request
	// Invalid are the lines that cannot be run, in line order. For a
	// duplicate custom_id the first occurrence is kept in Requests and the
	// later ones are listed here.
	Invalid []LineError
}

// ParseRequests reads a batch input file: JSON Lines in the Anthropic
// Message Batches or OpenAI Batch format (detected per line; the first valid
// line fixes the file's format). Blank lines are ignored. It never fails on
// content: every line that cannot be run is reported in Workload.Invalid
// with its line number; the error is only a read error of r.
func ParseRequests(r io.Reader) (Workload, error) {
	var w Workload
	br := bufio.NewReaderSize(r, 64<<10)
	seen := map[string]int{}
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br, MaxLineBytes)
		if err != nil && !errors.Is(err, io.EOF) {
			return w, fmt.Errorf("batch: reading input: %w", err)
		}
		if tooLong {
			w.Invalid = append(w.Invalid, LineError{Line: n, Reason: fmt.Sprintf("line longer than %d bytes", MaxLineBytes)})
		} else if len(bytes.TrimSpace(line)) > 0 {
			w.add(n, line, seen)
		}
		if err != nil {
			break
		}
	}
	return w, nil
}

// readLine returns the next line without its line ending, consuming it
// whole; a line longer than limit is discarded (tooLong). At the end of br
// it returns the last (possibly empty) line with io.EOF.
func readLine(br *bufio.Reader, limit int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > limit+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, tooLong, err
	}
}

// inputLine is the union of both input formats.
type inputLine struct {
	CustomID json.RawMessage `json:"custom_id"`
	Params   json.RawMessage `json:"params"`
	Method   json.RawMessage `json:"method"`
	URL      json.RawMessage `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// bodyFields are the request-body fields the runner reads.
type bodyFields struct {
	Model               json.RawMessage `json:"model"`
	MaxTokens           json.RawMessage `json:"max_tokens"`
	MaxCompletionTokens json.RawMessage `json:"max_completion_tokens"`
	Messages            json.RawMessage `json:"messages"`
}

func (w *Workload) add(n int, line []byte, seen map[string]int) {
	req, lerr := parseLine(n, line)
	if lerr != nil {
		w.Invalid = append(w.Invalid, *lerr)
		return
	}
	if w.Format == FormatUnknown {
		w.Format = req.Format
	} else if req.Format != w.Format {
		w.Invalid = append(w.Invalid, LineError{Line: n, CustomID: req.CustomID,
			Reason: fmt.Sprintf("%s format in a file of %s lines", req.Format, w.Format)})
		return
	}
	if first, dup := seen[req.CustomID]; dup {
		w.Invalid = append(w.Invalid, LineError{Line: n, CustomID: req.CustomID,
			Reason: fmt.Sprintf("duplicate custom_id %q (first on line %d)", req.CustomID, first)})
		return
	}
	seen[req.CustomID] = n
	w.Requests = append(w.Requests, req)
}

// parseLine validates one non-blank input line.
func parseLine(n int, line []byte) (Request, *LineError) {
	bad := func(id, format string, a ...any) (Request, *LineError) {
		return Request{}, &LineError{Line: n, CustomID: id, Reason: fmt.Sprintf(format, a...)}
	}
	var in inputLine
	if !isObject(line) {
		return bad("", "not a JSON object")
	}
	if err := json.Unmarshal(line, &in); err != nil {
		return bad("", "invalid JSON: %v", err)
	}
	id, ok := jsonString(in.CustomID)
	if !ok {
		return bad("", "custom_id missing or not a string")
	}
	req := Request{Line: n, CustomID: id}
	switch {
	case in.Params != nil:
		req.Format = Anthropic
		if !validAnthropicID(id) {
			return bad(id, "custom_id must be 1 to 64 letters, digits, '-' or '_'")
		}
		if in.Body != nil || in.URL != nil || in.Method != nil {
			return bad(id, "has both params (Anthropic) and body/url/method (OpenAI)")
		}
		req.Body = in.Params
	case in.Body != nil || in.URL != nil || in.Method != nil:
		req.Format = OpenAI
		if id == "" {
			return bad(id, "custom_id is empty")
		}
		if m, ok := jsonString(in.Method); !ok || m != "POST" {
			return bad(id, `method must be "POST"`)
		}
		u, ok := jsonString(in.URL)
		if !ok {
			return bad(id, "url missing or not a string")
		}
		if u != openAIChatPath {
			return bad(id, "url %q is not supported (only %s can be streamed)", u, openAIChatPath)
		}
		req.URL = u
		req.Body = in.Body
	default:
		return bad(id, "neither params (Anthropic Message Batches) nor body (OpenAI Batch)")
	}
	if !isObject(req.Body) {
		return bad(id, "%s is not a JSON object", bodyName(req.Format))
	}
	var f bodyFields
	if err := json.Unmarshal(req.Body, &f); err != nil {
		return bad(id, "%s: %v", bodyName(req.Format), err)
	}
	model, ok := jsonString(f.Model)
	if !ok || model == "" {
		return bad(id, "%s.model missing or not a string", bodyName(req.Format))
	}
	req.Model = model
	if !isArray(f.Messages) {
		return bad(id, "%s.messages missing or not an array", bodyName(req.Format))
	}
	mt := f.MaxTokens
	if req.Format == OpenAI && f.MaxCompletionTokens != nil && string(f.MaxCompletionTokens) != "null" {
		mt = f.MaxCompletionTokens
	}
	if mt != nil && string(mt) != "null" {
		var v int64
		if err := json.Unmarshal(mt, &v); err != nil || v < 1 {
			return bad(id, "%s: max_tokens must be a positive integer", bodyName(req.Format))
		}
		req.MaxTokens = v
	} else if req.Format == Anthropic {
		return bad(id, "params.max_tokens missing")
	}
	return req, nil
}

func bodyName(f Format) string {
	if f == Anthropic {
		return "params"
	}
	return "body"
}

// validAnthropicID reports whether id matches ^[a-zA-Z0-9_-]{1,64}$, the
// Message Batches rule for custom_id.
func validAnthropicID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

func isArray(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '['
}
