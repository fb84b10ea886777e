package timeline_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/timeline"
)

// A run records its events and progress; Read brings them back.
func Example() {
	var buf bytes.Buffer
	rec := timeline.NewRecorder(&buf)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec.Run(timeline.RunInfo{Name: "nightly", Strategy: "streamgate", Start: start, Window: time.Minute, Total: 2})
	rec.Event("nightly", streamgate.Event{Kind: streamgate.EventCompleted, Time: start.Add(2 * time.Second), OutputTokens: 120})
	rec.Progress(start.Add(3*time.Second), timeline.ProgressInfo{Name: "nightly", Done: 1, Total: 2, OutputTokens: 120, UsefulTokens: 120})
	if err := rec.Flush(); err != nil {
		panic(err)
	}
	fmt.Print(buf.String())
	tl, _ := timeline.Read(&buf)
	fmt.Println(len(tl.Records), tl.Runs())
	// Output:
	// {"type":"run","t":"2026-01-01T00:00:00Z","run":"nightly","strategy":"streamgate","window_ms":60000,"total":2}
	// {"type":"event","t":"2026-01-01T00:00:02Z","run":"nightly","event":"completed","output_tokens":120}
	// {"type":"progress","t":"2026-01-01T00:00:03Z","run":"nightly","total":2,"output_tokens":120,"done":1,"useful_tokens":120}
	// 3 [nightly]
}
