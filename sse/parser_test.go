package sse

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseResult is everything a Parser reports about one stream.
type parseResult struct {
	Events   []Event
	Partial  bool
	Err      error
	Comments int
	LastID   string
}

// parseChunks feeds the chunks to a fresh parser with the given limit and
// ends it.
func parseChunks(max int, chunks ...[]byte) parseResult {
	p := Parser{MaxEventSize: max}
	var r parseResult
	emit := func(ev Event) { r.Events = append(r.Events, ev) }
	for _, c := range chunks {
		if err := p.Feed(c, emit); err != nil {
			r.Err = err
			break
		}
	}
	if r.Err == nil {
		r.Err = p.End()
	}
	r.Partial = p.Partial()
	r.Comments = p.Comments()
	r.LastID = p.LastEventID()
	return r
}

// splitAt cuts b at the given offsets (which must be ascending and within
// b).
func splitAt(b []byte, cuts ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		out = append(out, b[prev:c])
		prev = c
	}
	return append(out, b[prev:])
}

func byteByByte(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

func randomChunks(rng *rand.Rand, b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := 1 + rng.IntN(min(len(b), 17))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func ev(typ, data string) Event { return Event{Type: typ, Data: []byte(data)} }

// checkAllSplits parses input whole, byte by byte, at every single split
// point, at every pair of split points (for short inputs) and in random
// chunks, and requires the same result every time.
func checkAllSplits(t *testing.T, input []byte, want parseResult) {
	t.Helper()
	check := func(how string, got parseResult) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", how, got, want)
		}
	}
	check("whole", parseChunks(0, input))
	check("byte by byte", parseChunks(0, byteByByte(input)...))
	for i := 0; i <= len(input); i++ {
		check(fmt.Sprintf("split at %d", i), parseChunks(0, splitAt(input, i)...))
	}
	if len(input) <= 64 {
		for i := 0; i <= len(input); i++ {
			for j := i; j <= len(input); j++ {
				check(fmt.Sprintf("split at %d,%d", i, j), parseChunks(0, splitAt(input, i, j)...))
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(input))))
	for range 20 {
		check("random chunks", parseChunks(0, randomChunks(rng, input)...))
	}
}

func TestParser(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		events   []Event
		partial  bool
		comments int
		lastID   string
	}{
		{name: "LF", in: "data: a\n\n", events: []Event{ev("", "a")}},
		{name: "CRLF", in: "data: a\r\n\r\n", events: []Event{ev("", "a")}},
		{name: "CR", in: "data: a\r\r", events: []Event{ev("", "a")}},
		{name: "mixed endings", in: "event: x\rdata: 1\r\ndata: 2\n\r\n", events: []Event{ev("x", "1\n2")}},
		{name: "LF then CR is two line endings", in: "data: a\n\rdata: b\n\n", events: []Event{ev("", "a"), ev("", "b")}},
		{name: "CR CR LF is a blank line", in: "data: a\r\r\n", events: []Event{ev("", "a")}},
		{name: "event type", in: "event: message_start\ndata: {}\n\n", events: []Event{ev("message_start", "{}")}},
		{name: "uncommon event type", in: "event: custom.thing\ndata: 1\n\nevent: custom.thing\ndata: 2\n\n",
			events: []Event{ev("custom.thing", "1"), ev("custom.thing", "2")}},
		{name: "type does not leak into the next event", in: "event: a\ndata: 1\n\ndata: 2\n\n", events: []Event{ev("a", "1"), ev("", "2")}},
		{name: "event without data is not dispatched", in: "event: ping\n\ndata: x\n\n", events: []Event{ev("", "x")}},
		{name: "comments", in: ": hi\ndata: a\n: there\n\n:\n\n", events: []Event{ev("", "a")}, comments: 3},
		{name: "multi-line data", in: "data: a\ndata:\ndata:  b\n\n", events: []Event{ev("", "a\n\n b")}},
		{name: "empty data dispatches", in: "data:\n\n", events: []Event{ev("", "")}},
		{name: "field without colon", in: "data\n\nevent\ndata: x\n\n", events: []Event{ev("", ""), ev("", "x")}},
		{name: "no space after colon", in: "data:v\n\n", events: []Event{ev("", "v")}},
		{name: "only one space stripped", in: "data:  v \n\n", events: []Event{ev("", " v ")}},
		{name: "colon in value", in: "data: a:b: c\n\n", events: []Event{ev("", "a:b: c")}},
		{name: "unknown field ignored", in: "foo: bar\ndata: x\n\n", events: []Event{ev("", "x")}},
		{name: "field names are case sensitive", in: "Data: x\nDATA: y\n\n", partial: false},
		{name: "blank lines between events", in: "\n\n\ndata: a\n\n\n\ndata: b\n\n", events: []Event{ev("", "a"), ev("", "b")}},
		{name: "raw bytes kept", in: "data: \xff\x00\xfe\n\n", events: []Event{ev("", "\xff\x00\xfe")}},
		{name: "multi-byte UTF-8", in: "data: Café ☕ 𝄞\n\n", events: []Event{ev("", "Café ☕ 𝄞")}},
		{
			name:   "id persists and HasID marks its own event",
			in:     "id: 7\ndata: x\n\ndata: y\n\n",
			events: []Event{{Data: []byte("x"), ID: "7", HasID: true}, {Data: []byte("y"), ID: "7"}},
			lastID: "7",
		},
		{name: "id with NUL ignored", in: "id: a\x00b\ndata: x\n\n", events: []Event{ev("", "x")}},
		{
			name:   "empty id resets",
			in:     "id: 5\ndata: a\n\nid\ndata: b\n\n",
			events: []Event{{Data: []byte("a"), ID: "5", HasID: true}, {Data: []byte("b"), HasID: true}},
		},
		{name: "id without data still sets the last id", in: "id: 9\n\n", lastID: "9"},
		{name: "retry", in: "retry: 1500\ndata: x\n\n", events: []Event{{Data: []byte("x"), Retry: 1500 * time.Millisecond, HasRetry: true}}},
		{name: "retry not digits", in: "retry: 1.5\nretry: -1\nretry: \nretry: 1s\nretry:  5\ndata: x\n\n", events: []Event{ev("", "x")}},
		{name: "retry overflow ignored", in: "retry: 99999999999999999999999\ndata: x\n\n", events: []Event{ev("", "x")}},
		{name: "BOM stripped", in: "\xEF\xBB\xBFdata: x\n\n", events: []Event{ev("", "x")}},
		{name: "only one BOM stripped", in: "\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n", events: []Event{ev("", "y")}},
		{name: "BOM later is content", in: "data: x\n\n\xEF\xBB\xBFdata: y\n\n", events: []Event{ev("", "x")}},
		{name: "BOM prefix that is not a BOM", in: "\xEF\xBBdata: x\n\ndata: y\n\n", events: []Event{ev("", "y")}},
		{name: "partial line at end", in: "data: x\n\ndata: y", events: []Event{ev("", "x")}, partial: true},
		{name: "partial event at end", in: "data: x\n\ndata: y\n", events: []Event{ev("", "x")}, partial: true},
		{name: "pending type at end", in: "event: a\n", partial: true},
		{name: "trailing comment is not partial", in: "data: x\n\n: keep-alive\n", events: []Event{ev("", "x")}, comments: 1},
		{name: "unterminated comment is partial", in: "data: x\n\n: keep", events: []Event{ev("", "x")}, partial: true},
		{name: "lone BOM prefix is partial", in: "\xEF\xBB", partial: true},
		{name: "empty stream", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := parseResult{Events: tt.events, Partial: tt.partial, Comments: tt.comments, LastID: tt.lastID}
			for i := range want.Events {
				if want.Events[i].Data == nil {
					want.Events[i].Data = []byte{}
				}
			}
			checkAllSplits(t, []byte(tt.in), want)
		})
	}
}

func TestParserLongLine(t *testing.T) {
	const size = 4 << 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	in := append(append([]byte("event: big\ndata: "), payload...), "\n\ndata: after\n\n"...)
	want := parseResult{Events: []Event{{Type: "big", Data: payload}, ev("", "after")}}
	for _, chunk := range []int{len(in), 1000, 65536, 7} {
		t.Run(fmt.Sprintf("chunk %d", chunk), func(t *testing.T) {
			var chunks [][]byte
			for b := in; len(b) > 0; {
				n := min(chunk, len(b))
				chunks = append(chunks, b[:n])
				b = b[n:]
			}
			got := parseChunks(0, chunks...)
			if got.Err != nil || got.Partial || len(got.Events) != 2 {
				t.Fatalf("got err=%v partial=%v events=%d", got.Err, got.Partial, len(got.Events))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("events differ: first len %d", len(got.Events[0].Data))
			}
		})
	}
}

func TestParserMaxEventSize(t *testing.T) {
	tests := []struct {
		name  string
		max   int
		in    string
		err   error
		nbEvs int
	}{
		{name: "within", max: 16, in: "data: 0123456789\n\n", nbEvs: 1},
		{name: "line too long", max: 16, in: "data: x\n\ndata: 0123456789abcdef\n\n", err: ErrEventTooLarge, nbEvs: 1},
		{name: "unterminated line too long", max: 16, in: "data: 0123456789abcdef", err: ErrEventTooLarge},
		{name: "comment too long", max: 16, in: ": 0123456789abcdefgh\n\n", err: ErrEventTooLarge},
		{name: "data lines add up", max: 16, in: "data: 012345\ndata: 012345\ndata: 012345\n\n", err: ErrEventTooLarge},
		{name: "negative means unbounded", max: -1, in: "data: " + strings.Repeat("x", 100) + "\n\n", nbEvs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			for _, chunks := range [][][]byte{{in}, byteByByte(in)} {
				got := parseChunks(tt.max, chunks...)
				if !errors.Is(got.Err, tt.err) || len(got.Events) != tt.nbEvs {
					t.Fatalf("got err %v, %d events; want err %v, %d events", got.Err, len(got.Events), tt.err, tt.nbEvs)
				}
			}
		})
	}
}

func TestParserErrorIsSticky(t *testing.T) {
	p := Parser{MaxEventSize: 4}
	emitted := 0
	emit := func(Event) { emitted++ }
	if err := p.Feed([]byte("data: toolong\n\n"), emit); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("Feed = %v, want ErrEventTooLarge", err)
	}
	if err := p.Feed([]byte("\n\ndata:\n\n"), emit); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("second Feed = %v, want ErrEventTooLarge", err)
	}
	if err := p.End(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("End = %v, want ErrEventTooLarge", err)
	}
	if emitted != 0 || !errors.Is(p.Err(), ErrEventTooLarge) {
		t.Fatalf("emitted %d events, Err %v", emitted, p.Err())
	}
}

func TestParserFeedAfterEnd(t *testing.T) {
	var p Parser
	var got []Event
	emit := func(e Event) { got = append(got, e) }
	if err := p.Feed([]byte("id: 3\nretry: 10\ndata: a\n\ndata: cut"), emit); err != nil {
		t.Fatal(err)
	}
	if err := p.End(); err != nil || !p.Partial() {
		t.Fatalf("End = %v, Partial = %v; want nil, true", err, p.Partial())
	}
	if err := p.End(); err != nil || !p.Partial() {
		t.Fatalf("second End = %v, Partial = %v; want nil, true", err, p.Partial())
	}
	// A new stream: the BOM is stripped again, the cut line is gone, and
	// the last event ID and retry time carry over.
	if err := p.Feed([]byte("\xEF\xBB\xBFdata: b\n\n"), emit); err != nil {
		t.Fatal(err)
	}
	if p.Partial() {
		t.Fatal("Partial still true after a new Feed")
	}
	if len(got) != 2 || string(got[1].Data) != "b" || got[1].ID != "3" || got[1].HasID {
		t.Fatalf("events after restart: %+v", got)
	}
	if d, ok := p.Retry(); !ok || d != 10*time.Millisecond {
		t.Fatalf("Retry() = %v, %v", d, ok)
	}
	if p.Events() != 2 {
		t.Fatalf("Events() = %d, want 2", p.Events())
	}
}

func TestParserBuffered(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"data: x\n\n", false},
		{"data: x", true},
		{"data: x\n", true},
		{": c\n", false},
		{"\xEF", true},
		{"\xEF\xBB\xBF", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			var p Parser
			if err := p.Feed([]byte(tt.in), func(Event) {}); err != nil {
				t.Fatal(err)
			}
			if p.Buffered() != tt.want {
				t.Fatalf("Buffered() = %v, want %v", p.Buffered(), tt.want)
			}
		})
	}
}

func TestEventsAreSafeToKeep(t *testing.T) {
	var p Parser
	var got []Event
	buf := []byte("data: first\n\n")
	if err := p.Feed(buf, func(e Event) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	copy(buf, "data: XXXXX\n\n")
	if err := p.Feed([]byte("data: second\n\n"), func(e Event) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	if string(got[0].Data) != "first" || string(got[1].Data) != "second" {
		t.Fatalf("events changed after later input: %q %q", got[0].Data, got[1].Data)
	}
}

func TestParserNilEmit(t *testing.T) {
	var p Parser
	if err := p.Feed([]byte("data: a\n\ndata: b\n\n"), nil); err != nil {
		t.Fatal(err)
	}
	if p.Events() != 2 {
		t.Fatalf("Events() = %d, want 2", p.Events())
	}
}

func TestParserBoundary(t *testing.T) {
	stream := "event: a\ndata: 1\n\n: comment\nevent: b\r\ndata: 2\r\n\r\nevent: c\rdata: 3\r\rdata: partial"
	// Every split: the bytes up to the reported boundaries are exactly the
	// whole events, and the rest is the unfinished one.
	for split := 0; split <= len(stream); split++ {
		var p Parser
		last := 0 // absolute offset past the last completed event
		off := 0
		for _, chunk := range []string{stream[:split], stream[split:]} {
			if err := p.Feed([]byte(chunk), nil); err != nil {
				t.Fatal(err)
			}
			if b := p.Boundary(); b >= 0 {
				if b > len(chunk) {
					t.Fatalf("split %d: boundary %d beyond chunk of %d", split, b, len(chunk))
				}
				last = off + b
			}
			off += len(chunk)
		}
		var whole Parser
		var n int
		if err := whole.Feed([]byte(stream[:last]), func(Event) { n++ }); err != nil {
			t.Fatal(err)
		}
		// A CR terminator may be followed by an LF in the next byte; the
		// prefix must already dispatch all three events.
		if n != 3 {
			t.Fatalf("split %d: prefix up to boundary %d has %d events, want 3", split, last, n)
		}
		if got := stream[last:]; got != "data: partial" && got != "\rdata: partial" {
			t.Fatalf("split %d: rest after boundary = %q", split, got)
		}
	}
}

func TestParserEventEnd(t *testing.T) {
	stream := "event: a\ndata: 1\n\n: c\nevent: b\r\ndata: 2\r\n\r\n"
	for split := 0; split <= len(stream); split++ {
		var p Parser
		var ends []int
		off := 0
		for _, chunk := range []string{stream[:split], stream[split:]} {
			if err := p.Feed([]byte(chunk), func(Event) { ends = append(ends, off+p.EventEnd()) }); err != nil {
				t.Fatal(err)
			}
			off += len(chunk)
		}
		want := []int{len("event: a\ndata: 1\n\n"), len(stream)}
		if split == len(stream)-1 {
			// The chunk ends between the CR and LF of the last line
			// ending: the event is complete at the CR, and the LF that
			// follows is a continuation of that line ending.
			want[1]--
		}
		if len(ends) != 2 || ends[0] != want[0] || ends[1] != want[1] {
			t.Fatalf("split %d: event ends %v, want %v", split, ends, want)
		}
	}
}
