package sse

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// chunksFrom splits data into pieces whose sizes are read from cuts (one
// byte each, 0 to 63, so empty chunks happen too); the rest of data, once
// cuts run out, is the last piece.
func chunksFrom(data, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		n := min(int(c)%64, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return append(out, data)
}

// addSeeds adds the golden inputs whose names start with prefix, and a few
// hand-written streams, to the corpus.
func addSeeds(f *testing.F, prefix string) {
	files, _ := filepath.Glob(filepath.Join("testdata", prefix+"*.sse"))
	for i, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte{byte(i), 3, 50, 1, 0, 17})
	}
	for _, s := range []string{
		"data: a\r\n\r\ndata: b\r\rdata: c\n\n",
		"\xEF\xBB\xBFid: 1\nretry: 10\nevent: x\ndata\n\n: c\n",
		"data: x\r",
	} {
		f.Add([]byte(s), []byte{1, 1, 2, 3, 5, 8})
	}
}

func FuzzParser(f *testing.F) {
	addSeeds(f, "")
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		for _, limit := range []int{0, 48} {
			whole := parseChunks(limit, data)
			split := parseChunks(limit, chunksFrom(data, cuts)...)
			if !reflect.DeepEqual(whole, split) {
				t.Fatalf("limit %d: whole %+v\nsplit %+v", limit, whole, split)
			}
			for _, e := range whole.Events {
				if e.Data == nil {
					t.Fatal("dispatched event with nil Data")
				}
				if limit > 0 && len(e.Data) > limit {
					t.Fatalf("event of %d bytes passed a limit of %d", len(e.Data), limit)
				}
			}
		}
	})
}

// messageOutcome is what FuzzMessageStream compares.
type messageOutcome struct {
	Verdict Verdict
	Text    string
	Usage   Usage
	Blocks  []Block
	Stop    string
	Deltas  int
	Partial bool
}

func messageOutcomeOf(chunks [][]byte) messageOutcome {
	var p Parser
	var s MessageStream
	for _, c := range chunks {
		if p.Feed(c, s.Observe) != nil {
			break
		}
	}
	var v Verdict
	if p.End() != nil || p.Partial() {
		v = s.Interrupt("partial")
	} else {
		v = s.End()
	}
	_, _ = s.LastBlock()
	_ = s.TextOnly()
	return messageOutcome{v, s.Text(), s.Usage(), s.Blocks(), s.StopReason(), s.DeltaCount(), p.Partial()}
}

func FuzzMessageStream(f *testing.F) {
	addSeeds(f, "anthropic_")
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		whole := messageOutcomeOf([][]byte{data})
		split := messageOutcomeOf(chunksFrom(data, cuts))
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("whole %+v\nsplit %+v", whole, split)
		}
		if whole.Verdict.Status == InProgress {
			t.Fatal("verdict still in progress after End")
		}
		if (whole.Verdict.Status == Errored) != (whole.Verdict.Error != nil) {
			t.Fatalf("verdict %v with error %v", whole.Verdict.Status, whole.Verdict.Error)
		}
		if whole.Verdict.Status == Complete && !bytes.Contains(data, []byte("message_stop")) {
			t.Fatal("complete without message_stop")
		}
	})
}

// chatOutcome is what FuzzChatStream compares.
type chatOutcome struct {
	Verdict Verdict
	Text    string
	Usage   ChatUsage
	Choices []Choice
	Done    bool
	Deltas  int
}

func chatOutcomeOf(chunks [][]byte) chatOutcome {
	var p Parser
	var s ChatStream
	for _, c := range chunks {
		if p.Feed(c, s.Observe) != nil {
			break
		}
	}
	var v Verdict
	if p.End() != nil || p.Partial() {
		v = s.Interrupt("partial")
	} else {
		v = s.End()
	}
	_ = s.Finished()
	return chatOutcome{v, s.Text(), s.Usage(), s.Choices(), s.SawDone(), s.DeltaCount()}
}

func FuzzChatStream(f *testing.F) {
	addSeeds(f, "openai_")
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		whole := chatOutcomeOf([][]byte{data})
		split := chatOutcomeOf(chunksFrom(data, cuts))
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("whole %+v\nsplit %+v", whole, split)
		}
		if whole.Verdict.Status == InProgress {
			t.Fatal("verdict still in progress after End")
		}
		if whole.Verdict.Status == Complete {
			for _, c := range whole.Choices {
				if c.FinishReason == "" {
					t.Fatalf("complete with unfinished choice %d", c.Index)
				}
			}
		}
	})
}

func FuzzObserver(f *testing.F) {
	addSeeds(f, "")
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		want := parseChunks(0, data)
		src := &chunkReader{}
		for _, c := range chunksFrom(data, cuts) {
			if len(c) > 0 {
				src.chunks = append(src.chunks, c)
			}
		}
		var events []Event
		o := NewObserver(src, func(e Event) { events = append(events, e) })
		out, err := io.ReadAll(o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("bytes out %q != bytes in %q", out, data)
		}
		if !reflect.DeepEqual(events, want.Events) || o.Partial() != want.Partial || o.Err() != want.Err || !o.Ended() {
			t.Fatalf("observer saw %+v partial %v err %v; parser %+v", events, o.Partial(), o.Err(), want)
		}
	})
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("message_start", []byte(`{"type":"message_start"}`))
	f.Add("", []byte("line1\nline2\r\nline3\r"))
	f.Add("a\rb", []byte(""))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		r := parseChunks(-1, AppendEvent(nil, typ, data))
		wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
		wantType := strings.NewReplacer("\r", "", "\n", "").Replace(typ)
		if r.Err != nil || r.Partial || len(r.Events) != 1 {
			t.Fatalf("parsed %+v", r)
		}
		if e := r.Events[0]; string(e.Data) != wantData || e.Type != wantType {
			t.Fatalf("round trip gave type %q data %q, want %q %q", e.Type, e.Data, wantType, wantData)
		}
	})
}

// FuzzJSONString checks the fast path of the lenient string decoder against
// encoding/json itself.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`"plain"`, `"esc\"aped \u00e9 \ud83d\ude00"`, "\"\xff\xfe\"", `""`, ` "padded" `, `"\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want string
		if json.Unmarshal(b, &want) != nil || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			return
		}
		var got jsonString
		if err := json.Unmarshal(b, &got); err != nil || !got.OK || got.V != want {
			t.Fatalf("decoded %q (ok %v, err %v), encoding/json gives %q", got.V, got.OK, err, want)
		}
		var ref jsonRef
		if err := json.Unmarshal(b, &ref); err != nil || ref.String() != want {
			t.Fatalf("jsonRef gives %q, want %q", ref.String(), want)
		}
	})
}
