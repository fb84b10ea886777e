package timeline

import (
	"bytes"
	"errors"
	"image/png"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/apierr"
	"github.com/streamgate/streamgate/budget"
	"github.com/streamgate/streamgate/ratelimit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// record writes a small two-run timeline.
func record(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	r := NewRecorder(&buf)
	r.Run(RunInfo{Name: "streamgate", Strategy: "streamgate", Start: t0, Window: 10 * time.Second, Total: 3})
	key := budget.Key{Provider: ratelimit.Anthropic, Fingerprint: "fp_1", ModelClass: "claude-sonnet-4"}
	r.Event("streamgate", streamgate.Event{Kind: streamgate.EventRetry, Time: t0.Add(time.Second), ID: 7, Key: key, Model: "claude-sonnet-4-5",
		Attempt: 1, Status: 429, Class: apierr.RateLimited, Delay: 1500 * time.Millisecond, Err: errors.New("slow down")})
	r.Event("naive", streamgate.Event{Kind: streamgate.EventFailed, Time: t0.Add(2 * time.Second), Status: 200, Class: apierr.RateLimited, OutputTokens: 40})
	r.Event("streamgate", streamgate.Event{Kind: streamgate.EventCompleted, Time: t0.Add(3 * time.Second), ID: 7, Key: key, InputTokens: 12, OutputTokens: 300})
	var v budget.View
	v.Dimensions[ratelimit.OutputTokens] = budget.DimensionView{Known: true, Limit: 8000, Level: 2000, Held: 500}
	v.Dimensions[ratelimit.InputTokens] = budget.DimensionView{Known: false, Limit: -1}
	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Second)
		r.Budget(at, "streamgate", "claude-sonnet-4", v)
		r.Progress(at, ProgressInfo{Name: "streamgate", Done: i, Total: 3, OutputTokens: int64(1000 * i), UsefulTokens: int64(800 * i), InFlight: 2})
		r.Progress(at, ProgressInfo{Name: "naive", Done: 0, Total: 3, OutputTokens: int64(2000 * i)})
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRecordAndReadBack(t *testing.T) {
	data := record(t)
	tl, err := Read(bytes.NewReader(data))
	if err != nil || tl.Skipped != 0 {
		t.Fatalf("read: %v, %d skipped", err, tl.Skipped)
	}
	if got := tl.Runs(); !reflect.DeepEqual(got, []string{"streamgate", "naive"}) {
		t.Fatalf("runs %v", got)
	}
	if !tl.Start().Equal(t0) {
		t.Fatalf("start %v", tl.Start())
	}
	retry := tl.Records[1]
	want := Record{Type: TypeEvent, T: t0.Add(time.Second), Run: "streamgate", Event: "retry", ID: 7,
		Key: "anthropic/fp_1/claude-sonnet-4", Model: "claude-sonnet-4-5", Attempt: 1, Status: 429,
		Class: "rate_limited", DelayMS: 1500, Err: "slow down"}
	if !reflect.DeepEqual(retry, want) {
		t.Fatalf("retry record\n got %+v\nwant %+v", retry, want)
	}
	var budgets int
	for _, r := range tl.Records {
		if r.Type == TypeBudget {
			budgets++
			if len(r.Dims) != 1 || r.Dims[0] != (Level{Dim: "output_tokens", Limit: 8000, Level: 2000, Held: 500}) {
				t.Fatalf("budget record %+v (unknown dimensions must be left out)", r)
			}
		}
	}
	if budgets != 4 {
		t.Fatalf("%d budget records", budgets)
	}
}

func TestReadIsLenient(t *testing.T) {
	data := record(t)
	lines := strings.SplitAfter(string(data), "\n")
	mangled := "garbage\n" + lines[0] + "{\"no_type\":1}\n\n[1,2]\n" + strings.Join(lines[1:], "") + lines[2][:10]
	tl, err := Read(strings.NewReader(mangled))
	if err != nil {
		t.Fatal(err)
	}
	clean, _ := Read(bytes.NewReader(data))
	if tl.Skipped != 4 || len(tl.Records) != len(clean.Records) {
		t.Fatalf("skipped %d, records %d (clean %d)", tl.Skipped, len(tl.Records), len(clean.Records))
	}
	long := strings.Repeat("x", MaxLine+10) + "\n" + lines[0]
	tl, err = Read(strings.NewReader(long))
	if err != nil || tl.Skipped != 1 || len(tl.Records) != 1 {
		t.Fatalf("long line: %v skipped %d records %d", err, tl.Skipped, len(tl.Records))
	}
}

func TestComputeSeries(t *testing.T) {
	tl, _ := Read(bytes.NewReader(record(t)))
	s := ComputeSeries(tl, 1)
	b := s.Budget["streamgate: claude-sonnet-4 output_tokens"]
	if len(b) != 4 || b[0].Y != 25 || b[3].X != 3 {
		t.Fatalf("budget series %v", b)
	}
	// 800 useful and 1,000 received tokens a second.
	if th := s.Throughput["streamgate"]; len(th) != 3 || th[0].Y != 800 || s.Received["streamgate"][2].Y != 1000 {
		t.Fatalf("streamgate throughput %v received %v", th, s.Received["streamgate"])
	}
	if th := s.Throughput["naive"]; len(th) != 3 || th[1].Y != 0 || s.Received["naive"][1].Y != 2000 {
		t.Fatalf("naive throughput %v", th)
	}
	if rl := s.RateLimited; len(rl["streamgate"]) != 1 || rl["streamgate"][0] != 1 || len(rl["naive"]) != 1 || rl["naive"][0] != 2 {
		t.Fatalf("rate-limit marks %v", rl)
	}
}

func TestWritePNG(t *testing.T) {
	tl, _ := Read(bytes.NewReader(record(t)))
	var buf bytes.Buffer
	if err := WritePNG(&buf, tl, PlotOptions{Width: 600, Height: 400}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// vgimg draws at 96 dpi: 600 x 400 points.
	if b := img.Bounds(); b.Dx() != 800 || b.Dy() != 533 {
		t.Fatalf("image %v", b)
	}
	if err := WritePNG(io.Discard, &Timeline{}, PlotOptions{}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty timeline: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRecorderReportsWriteErrors(t *testing.T) {
	r := NewRecorder(failWriter{})
	r.Progress(t0, ProgressInfo{Name: "x", Done: 1, Total: 2})
	if err := r.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush = %v", err)
	}
}
