package batch

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func FuzzParseRequests(f *testing.F) {
	f.Add([]byte(anthropicInput("a", "hi", 5)+"\n"+anthropicInput("a", "x", 1)+"\nnope\n"), uint16(3))
	f.Add([]byte(openAIInput("o", "hi", 5)+"\r\n"+anthropicInput("b", "x", 1)), uint16(1))
	f.Add([]byte(`{"custom_id":"q","params":{"model":"m","max_tokens":1e3,"messages":[]}}`), uint16(7))
	f.Add([]byte("\n\n{\"custom_id\":\"\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole, err := ParseRequests(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		chunked, err := ParseRequests(chunkReader{bytes.NewReader(data), int(split%61) + 1})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(whole, chunked) {
			t.Fatalf("parsing in chunks differs:\n whole %+v\nchunks %+v", whole, chunked)
		}
		ids := map[string]bool{}
		last := 0
		for _, r := range whole.Requests {
			if ids[r.CustomID] || r.Format != whole.Format || r.Line <= last || !json.Valid(r.Body) {
				t.Fatalf("bad request %+v in %+v", r, whole)
			}
			ids[r.CustomID], last = true, r.Line
		}
		for i := 1; i < len(whole.Invalid); i++ {
			if whole.Invalid[i].Line <= whole.Invalid[i-1].Line {
				t.Fatalf("invalid lines out of order: %+v", whole.Invalid)
			}
		}
	})
}

func FuzzReadResults(f *testing.F) {
	l1, _ := Result{CustomID: "a", Format: Anthropic, Status: Succeeded, Message: json.RawMessage(`{"x":1}`)}.AppendLine(nil)
	l2, _ := Result{CustomID: "b", Format: Anthropic, Status: Errored, Error: json.RawMessage(`{"type":"error"}`)}.AppendLine(nil)
	l3, _ := Result{CustomID: "c", Format: OpenAI, Status: Succeeded, Message: json.RawMessage(`{}`), StatusCode: 200}.AppendLine(nil)
	f.Add(append(append([]byte{}, l1...), l2[:9]...), uint16(4))
	f.Add(append(append([]byte{}, l3...), l3...), uint16(1))
	f.Add([]byte("x\n"+string(l1)), uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole, werr := ReadResults(bytes.NewReader(data))
		chunked, cerr := ReadResults(chunkReader{bytes.NewReader(data), int(split%61) + 1})
		if (werr == nil) != (cerr == nil) || werr != nil && werr.Error() != cerr.Error() {
			t.Fatalf("errors differ: %v / %v", werr, cerr)
		}
		if werr != nil {
			return
		}
		if !reflect.DeepEqual(whole, chunked) {
			t.Fatalf("reading in chunks differs:\n whole %+v\nchunks %+v", whole, chunked)
		}
		if whole.Size+whole.Torn != int64(len(data)) {
			t.Fatalf("size %d + torn %d != %d", whole.Size, whole.Torn, len(data))
		}
		// The valid prefix reads back the same, with nothing torn.
		again, err := ReadResults(bytes.NewReader(data[:whole.Size]))
		if err != nil || again.Torn != 0 || len(again.Results) != len(whole.Results) {
			t.Fatalf("prefix: %v %+v", err, again)
		}
	})
}

func FuzzMessageAssembler(f *testing.F) {
	f.Add([]byte(richMessageStream), false)
	f.Add([]byte(richMessageStream[:len(richMessageStream)/2]), false)
	f.Add([]byte("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"), true)
	f.Fuzz(func(t *testing.T, body []byte, openAI bool) {
		format := Anthropic
		if openAI {
			format = OpenAI
		}
		a, v := assemble(t, format, string(body))
		if v.Status.String() == "complete" {
			msg, err := a.message()
			if err != nil || !json.Valid(msg) || !strings.HasPrefix(string(msg), "{") {
				t.Fatalf("complete stream, bad message %q: %v", msg, err)
			}
		}
		a.usage()
		a.streamed()
	})
}
