package timeline

import (
	"bytes"
	"io"
	"reflect"
	"testing"
)

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

func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"type":"run","t":"2026-01-02T03:04:05Z","run":"a"}`+"\n"+`{"type":"progress","t":"2026-01-02T03:04:06Z","done":1}`+"\nxx\n"), uint16(3))
	f.Add([]byte(`{"type":"budget","dims":[{"dim":"output_tokens","limit":0,"level":1e309}]}`), uint16(1))
	f.Add([]byte("\r\n{}\n{\"type\":\"event\",\"status\":\"x\"}"), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole, err := Read(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		chunked, err := Read(chunkReader{bytes.NewReader(data), int(split%37) + 1})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(whole, chunked) {
			t.Fatalf("reading in chunks differs:\n%+v\n%+v", whole, chunked)
		}
		// Whatever was read can be plotted (or is empty).
		s := ComputeSeries(whole, int(split%5))
		for _, xy := range s.Budget {
			for _, p := range xy {
				if p.Y != p.Y {
					t.Fatal("NaN in a budget series")
				}
			}
		}
	})
}
