package batch

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Status is the outcome a result line records.
type Status string

const (
	// Succeeded: the stream completed (its terminal event arrived) and the
	// line holds the whole message assembled from it.
	Succeeded Status = "succeeded"
	// Errored: the provider refused the request with an error that sending
	// it again cannot fix (invalid request, authentication, permission, not
	// found, too large, quota or spend cap). The line holds the provider's
	// error. Transient failures are never recorded: see the package
	// documentation.
	Errored Status = "errored"
)

// Result is one line of a results file.
type Result struct {
	// CustomID is the request's custom_id.
	CustomID string
	// Format is the line's format.
	Format Format
	// Status is Succeeded or Errored.
	Status Status
	// Message is, for Succeeded, the response body: an Anthropic Message
	// object or an OpenAI chat.completion object.
	Message json.RawMessage
	// Error is, for Errored, the provider's error body (Anthropic:
	// {"type":"error","error":{...},"request_id":...}; OpenAI:
	// {"error":{...}}).
	Error json.RawMessage
	// StatusCode is the HTTP status of the response (OpenAI lines carry it).
	StatusCode int
	// RequestID is the provider's request id, when known.
	RequestID string
}

// anthropicLine is the Message Batches result line.
type anthropicLine struct {
	CustomID string          `json:"custom_id"`
	Result   anthropicResult `json:"result"`
}

type anthropicResult struct {
	Type    string          `json:"type"`
	Message json.RawMessage `json:"message,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// openAILine is the Batch API output (and error) file line.
type openAILine struct {
	ID       string          `json:"id"`
	CustomID string          `json:"custom_id"`
	Response *openAIResponse `json:"response"`
	Error    json.RawMessage `json:"error"`
}

type openAIResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

// AppendLine appends r as one JSON line (with its newline) in its format.
func (r Result) AppendLine(dst []byte) ([]byte, error) {
	var v any
	switch r.Format {
	case Anthropic:
		l := anthropicLine{CustomID: r.CustomID, Result: anthropicResult{Type: string(r.Status)}}
		if r.Status == Succeeded {
			l.Result.Message = r.Message
		} else {
			l.Result.Error = r.Error
		}
		v = l
	case OpenAI:
		body := r.Message
		if r.Status != Succeeded {
			body = r.Error
		}
		v = openAILine{
			ID:       batchRequestID(r.CustomID),
			CustomID: r.CustomID,
			Response: &openAIResponse{StatusCode: r.StatusCode, RequestID: r.RequestID, Body: body},
			Error:    json.RawMessage("null"),
		}
	default:
		return dst, fmt.Errorf("batch: result for %q has no format", r.CustomID)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("batch: encoding result for %q: %w", r.CustomID, err)
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}

// batchRequestID derives the OpenAI line id from the custom_id, so that a
// rerun writes the same id.
func batchRequestID(customID string) string {
	sum := sha256.Sum256([]byte(customID))
	return "batch_req_" + hex.EncodeToString(sum[:12])
}

// ErrCorruptResults means a results file has an unparsable line before its
// last line: it was not written by a batch run (a run only ever leaves a
// torn last line), so the runner refuses to append to it.
var ErrCorruptResults = errors.New("batch: results file is corrupt")

// ParseResultLine parses one result line in either format.
func ParseResultLine(line []byte) (Result, error) {
	if !isObject(line) {
		return Result{}, errors.New("batch: result line is not a JSON object")
	}
	var probe struct {
		CustomID json.RawMessage `json:"custom_id"`
		Result   json.RawMessage `json:"result"`
		Response json.RawMessage `json:"response"`
		Error    json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return Result{}, fmt.Errorf("batch: result line: %w", err)
	}
	id, ok := jsonString(probe.CustomID)
	if !ok {
		return Result{}, errors.New("batch: result line has no custom_id")
	}
	switch {
	case probe.Result != nil:
		var r anthropicResult
		if err := json.Unmarshal(probe.Result, &r); err != nil {
			return Result{}, fmt.Errorf("batch: result line: %w", err)
		}
		res := Result{CustomID: id, Format: Anthropic, Status: Status(r.Type)}
		switch res.Status {
		case Succeeded:
			if !isObject(r.Message) {
				return Result{}, errors.New("batch: succeeded result without a message")
			}
			res.Message = r.Message
		case Errored:
			res.Error = r.Error
		default:
			// canceled, expired: a provider batch's outcome; any line with
			// a custom_id counts as done.
		}
		return res, nil
	case probe.Response != nil || probe.Error != nil:
		var r openAILine
		if err := json.Unmarshal(line, &r); err != nil {
			return Result{}, fmt.Errorf("batch: result line: %w", err)
		}
		res := Result{CustomID: id, Format: OpenAI, Status: Errored}
		if r.Response != nil {
			res.StatusCode, res.RequestID = r.Response.StatusCode, r.Response.RequestID
			if r.Response.StatusCode >= 200 && r.Response.StatusCode <= 299 {
				res.Status, res.Message = Succeeded, r.Response.Body
			} else {
				res.Error = r.Response.Body
			}
		} else {
			res.Error = r.Error
		}
		return res, nil
	}
	return Result{}, errors.New("batch: result line is in neither format")
}

// ResultsFile is what ReadResults found in an existing results file.
type ResultsFile struct {
	// Results are the complete lines, in file order.
	Results []Result
	// Format is the format of the first line (FormatUnknown if none).
	Format Format
	// Size is the length of the valid prefix: every complete line.
	Size int64
	// Torn is the number of bytes after Size: a last line cut short by a
	// killed run (or an unparsable last line), to be truncated before
	// appending. Zero when the file ends cleanly.
	Torn int64
	// Duplicates counts lines whose custom_id an earlier line already had
	// (only the first counts).
	Duplicates int
}

// Done returns the set of custom_ids that have a result.
func (f *ResultsFile) Done() map[string]Status {
	done := make(map[string]Status, len(f.Results))
	for _, r := range f.Results {
		if _, ok := done[r.CustomID]; !ok {
			done[r.CustomID] = r.Status
		}
	}
	return done
}

// ReadResults reads a results file written by Run. A last line without a
// newline, or an unparsable last line, is torn (ResultsFile.Torn); an
// unparsable line before it is an error wrapping ErrCorruptResults, as is
// a line in another format than the first.
func ReadResults(r io.Reader) (*ResultsFile, error) {
	f := &ResultsFile{}
	br := bufio.NewReaderSize(r, 64<<10)
	seen := map[string]bool{}
	var pendingErr error // an unparsable line; fatal unless it is the last
	var pendingLen int64
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("batch: reading results: %w", err)
		}
		if len(line) > 0 && pendingErr != nil {
			return nil, pendingErr
		}
		if len(line) == 0 {
			break
		}
		if line[len(line)-1] != '\n' {
			// A line cut short: only possible at the end.
			f.Torn = int64(len(line)) + pendingLen
			return f, nil
		}
		body := bytes.TrimSpace(line)
		if len(body) == 0 {
			f.Size += int64(len(line))
			continue
		}
		res, perr := ParseResultLine(body)
		if perr == nil && f.Format != FormatUnknown && res.Format != f.Format {
			perr = fmt.Errorf("%s line in a file of %s lines", res.Format, f.Format)
		}
		if perr != nil {
			pendingErr = fmt.Errorf("%w: line %d: %v", ErrCorruptResults, n, perr)
			pendingLen = int64(len(line))
			continue
		}
		if f.Format == FormatUnknown {
			f.Format = res.Format
		}
		f.Size += int64(len(line))
		if seen[res.CustomID] {
			f.Duplicates++
		} else {
			seen[res.CustomID] = true
		}
		f.Results = append(f.Results, res)
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if pendingErr != nil {
		f.Torn = pendingLen
	}
	return f, nil
}
