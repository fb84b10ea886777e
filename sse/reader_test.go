package sse

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll drains a Reader, returning its events and the final error.
func readAll(rd *Reader) ([]Event, error) {
	var evs []Event
	for {
		e, err := rd.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, e)
	}
}

func TestReader(t *testing.T) {
	errBoom := errors.New("boom")
	const stream = "event: a\ndata: 1\n\nid: x\ndata: 2\n\n"
	wantEvents := []Event{ev("a", "1"), {Data: []byte("2"), ID: "x", HasID: true}}
	tests := []struct {
		name    string
		r       io.Reader
		opts    []Option
		events  []Event
		wantErr error
	}{
		{name: "clean end", r: strings.NewReader(stream), events: wantEvents, wantErr: io.EOF},
		{name: "one byte at a time", r: iotest.OneByteReader(strings.NewReader(stream)), events: wantEvents, wantErr: io.EOF},
		{name: "EOF with the last data", r: iotest.DataErrReader(strings.NewReader(stream)), events: wantEvents, wantErr: io.EOF},
		{name: "truncated", r: strings.NewReader(stream + "data: 3"), events: wantEvents, wantErr: ErrTruncated},
		{name: "truncated wraps ErrUnexpectedEOF", r: strings.NewReader(stream + "data: 3\n"), events: wantEvents, wantErr: io.ErrUnexpectedEOF},
		{name: "read error after events", r: io.MultiReader(strings.NewReader(stream), iotest.ErrReader(errBoom)), events: wantEvents, wantErr: errBoom},
		{name: "too large", r: strings.NewReader(stream + "data: 0123456789\n\n"), opts: []Option{WithMaxEventSize(8)}, events: wantEvents, wantErr: ErrEventTooLarge},
		{name: "empty", r: strings.NewReader(""), wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := NewReader(tt.r, tt.opts...)
			got, err := readAll(rd)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.events) {
				t.Fatalf("events = %+v, want %+v", got, tt.events)
			}
			if _, again := rd.Next(); again != err {
				t.Fatalf("Next after the end = %v, want the same %v", again, err)
			}
		})
	}
}

func TestReaderManyEventsPerRead(t *testing.T) {
	var b []byte
	for i := range 5000 {
		b = AppendEvent(b, "n", []byte(strings.Repeat("x", i%50)))
	}
	rd := NewReader(bytes.NewReader(b))
	got, err := readAll(rd)
	if err != io.EOF || len(got) != 5000 {
		t.Fatalf("got %d events, err %v", len(got), err)
	}
	for i, e := range got {
		if len(e.Data) != i%50 {
			t.Fatalf("event %d has %d bytes, want %d", i, len(e.Data), i%50)
		}
	}
}

// chunkReader returns its chunks one per Read, then io.EOF, recording what
// it returned.
type chunkReader struct {
	chunks [][]byte
	reads  int
	closed bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	c.reads++
	return n, nil
}

func (c *chunkReader) Close() error {
	c.closed = true
	return nil
}

func TestObserverPassesBytesThrough(t *testing.T) {
	in := []byte("event: a\r\ndata: 1\r\n\r\n: c\n\ndata: 2\n\ndata: cut")
	chunks := [][]byte{in[:5], in[5:19], in[19:20], in[20:33], in[33:]}
	src := &chunkReader{chunks: append([][]byte(nil), chunks...)}
	var events []Event
	o := NewObserver(src, func(e Event) { events = append(events, e) })
	buf := make([]byte, 64)
	var out []byte
	for i := 0; ; i++ {
		n, err := o.Read(buf)
		if err == io.EOF {
			if n != 0 {
				t.Fatalf("final read returned %d bytes", n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], chunks[i]) {
			t.Fatalf("read %d returned %q, the source gave %q", i, buf[:n], chunks[i])
		}
		out = append(out, buf[:n]...)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("bytes out %q != bytes in %q", out, in)
	}
	want := []Event{ev("a", "1"), ev("", "2")}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events %+v, want %+v", events, want)
	}
	if !o.Ended() || !o.Partial() || o.Err() != nil || o.Events() != 2 || o.Comments() != 1 {
		t.Fatalf("Ended %v Partial %v Err %v Events %d Comments %d", o.Ended(), o.Partial(), o.Err(), o.Events(), o.Comments())
	}
	if err := o.Close(); err != nil || !src.closed {
		t.Fatalf("Close = %v, source closed %v", err, src.closed)
	}
}

func TestObserverReportsEventDuringItsLastRead(t *testing.T) {
	in := "data: one\n\ndata: two\n\n"
	// The first event's final newline is in read 2, the second's in read 4.
	src := &chunkReader{chunks: [][]byte{[]byte(in[:10]), []byte(in[10:15]), []byte(in[15:21]), []byte(in[21:])}}
	var seenAt []int
	o := NewObserver(src, func(Event) { seenAt = append(seenAt, src.reads) })
	if _, err := io.ReadAll(o); err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 4}; !reflect.DeepEqual(seenAt, want) {
		t.Fatalf("events reported during reads %v, want %v", seenAt, want)
	}
	if o.Partial() || o.Buffered() {
		t.Fatal("clean stream reported partial")
	}
}

func TestObserverParseErrorKeepsBytes(t *testing.T) {
	in := "data: ok\n\ndata: far too long for the limit\n\ndata: later\n\n"
	var events []Event
	o := NewObserver(iotest.HalfReader(strings.NewReader(in)), func(e Event) { events = append(events, e) }, WithMaxEventSize(12))
	out, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("bytes altered: %q", out)
	}
	if !errors.Is(o.Err(), ErrEventTooLarge) {
		t.Fatalf("Err() = %v, want ErrEventTooLarge", o.Err())
	}
	if len(events) != 1 || string(events[0].Data) != "ok" {
		t.Fatalf("events %+v, want only the first", events)
	}
}

func TestObserverReadErrorIsNotAnEnd(t *testing.T) {
	errReset := errors.New("connection reset")
	o := NewObserver(io.MultiReader(strings.NewReader("data: x\n"), iotest.ErrReader(errReset)), nil)
	_, err := io.ReadAll(o)
	if !errors.Is(err, errReset) {
		t.Fatalf("err = %v, want the read error unchanged", err)
	}
	if o.Ended() || o.Partial() || !o.Buffered() {
		t.Fatalf("Ended %v Partial %v Buffered %v; want false false true", o.Ended(), o.Partial(), o.Buffered())
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close of a non-Closer = %v", err)
	}
}

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		data string
		want string
	}{
		{name: "typed", typ: "message_stop", data: `{"type":"message_stop"}`, want: "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
		{name: "untyped", data: "[DONE]", want: "data: [DONE]\n\n"},
		{name: "multi-line", typ: "t", data: "a\nb\r\nc\rd", want: "event: t\ndata: a\ndata: b\ndata: c\ndata: d\n\n"},
		{name: "trailing newline", data: "a\n", want: "data: a\ndata: \n\n"},
		{name: "empty", data: "", want: "data: \n\n"},
		{name: "leading space kept", data: " x", want: "data:  x\n\n"},
		{name: "newline in type dropped", typ: "a\r\nb", data: "x", want: "event: ab\ndata: x\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendEvent([]byte("prefix|"), tt.typ, []byte(tt.data))
			if string(got) != "prefix|"+tt.want {
				t.Fatalf("got %q, want %q", got, "prefix|"+tt.want)
			}
			// Round trip: the parser reads back the event with its line
			// endings normalised to LF.
			r := parseChunks(0, got[len("prefix|"):])
			wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(tt.data)
			wantType := strings.NewReplacer("\r", "", "\n", "").Replace(tt.typ)
			if len(r.Events) != 1 || string(r.Events[0].Data) != wantData || r.Events[0].Type != wantType {
				t.Fatalf("round trip gave %+v", r.Events)
			}
		})
	}
}
