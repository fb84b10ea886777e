package batch

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// DisplayMode chooses how a Display shows progress.
type DisplayMode uint8

const (
	// DisplayAuto shows progress bars on a terminal and log lines
	// elsewhere. The zero value.
	DisplayAuto DisplayMode = iota
	// DisplayBar always draws progress bars.
	DisplayBar
	// DisplayLog writes a plain line per run every log interval.
	DisplayLog
	// DisplayOff shows nothing.
	DisplayOff
)

// ParseDisplayMode parses "auto", "bar", "log" or "off".
func ParseDisplayMode(s string) (DisplayMode, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return DisplayAuto, nil
	case "bar":
		return DisplayBar, nil
	case "log":
		return DisplayLog, nil
	case "off", "none", "quiet":
		return DisplayOff, nil
	}
	return DisplayAuto, fmt.Errorf("batch: unknown progress mode %q (want auto, bar, log or off)", s)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// DefaultLogInterval is how often DisplayLog writes a line per run.
const DefaultLogInterval = 5 * time.Second

// Display shows the progress of one or more runs: a bar per run on a
// terminal (done/total, output tokens per second, utilisation of the
// binding dimension, rate-limit errors, retries, ETA), or periodic plain
// lines. Create one with NewDisplay, pass Track(name) as a run's
// Config.OnProgress, and call Close when the runs are over. Safe for
// concurrent use.
type Display struct {
	w        io.Writer
	mode     DisplayMode
	interval time.Duration

	mu     sync.Mutex
	prog   *mpb.Progress
	bars   []*mpb.Bar
	closed bool
}

// NewDisplay returns a Display writing to w. DisplayAuto resolves to
// DisplayBar when w is a terminal, else DisplayLog. logInterval <= 0 means
// DefaultLogInterval.
func NewDisplay(w io.Writer, mode DisplayMode, logInterval time.Duration) *Display {
	if mode == DisplayAuto {
		mode = DisplayLog
		if IsTerminal(w) {
			mode = DisplayBar
		}
	}
	if logInterval <= 0 {
		logInterval = DefaultLogInterval
	}
	d := &Display{w: w, mode: mode, interval: logInterval}
	if mode == DisplayBar {
		d.prog = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithWidth(100))
	}
	return d
}

// Mode returns the resolved mode.
func (d *Display) Mode() DisplayMode { return d.mode }

// Track returns the progress callback of the run called name.
func (d *Display) Track(name string) func(Progress) {
	switch d.mode {
	case DisplayBar:
		return d.trackBar(name)
	case DisplayLog:
		return d.trackLog(name)
	}
	return func(Progress) {}
}

func (d *Display) trackLog(name string) func(Progress) {
	var mu sync.Mutex
	var last time.Duration = -1
	return func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if !p.Finished && last >= 0 && p.Elapsed-last < d.interval {
			return
		}
		last = p.Elapsed
		d.mu.Lock()
		defer d.mu.Unlock()
		fmt.Fprintf(d.w, "%s %s: %d/%d done, %s\n", ts(p.Elapsed), name, p.Done, p.Total, progressStats(p))
	}
}

func ts(d time.Duration) string {
	return fmt.Sprintf("[%6.1fs]", d.Seconds())
}

// progressStats renders the live figures of p.
func progressStats(p Progress) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%.0f tok/s", p.OutputTokensPerSecond)
	if p.Utilisation >= 0 {
		fmt.Fprintf(&sb, ", %s %.0f%%", p.Binding, 100*p.Utilisation)
	}
	fmt.Fprintf(&sb, ", %d rate-limited, %d retries", p.RateLimited, p.Retries)
	if p.Resumes > 0 {
		fmt.Fprintf(&sb, ", %d resumed", p.Resumes)
	}
	switch {
	case p.Finished && p.Done < p.Total:
		fmt.Fprintf(&sb, ", stopped after %s", p.Elapsed.Round(100*time.Millisecond))
	case p.Finished:
		fmt.Fprintf(&sb, ", finished in %s", p.Elapsed.Round(100*time.Millisecond))
	case p.ETA >= 0:
		fmt.Fprintf(&sb, ", ETA %s", p.ETA.Round(time.Second))
	}
	return sb.String()
}

func (d *Display) trackBar(name string) func(Progress) {
	var latest atomic.Pointer[Progress]
	var bar *mpb.Bar
	var mu sync.Mutex
	return func(p Progress) {
		latest.Store(&p)
		mu.Lock()
		defer mu.Unlock()
		if bar == nil {
			d.mu.Lock()
			if d.closed {
				d.mu.Unlock()
				return
			}
			bar = d.prog.AddBar(int64(max(p.Total, 1)),
				mpb.PrependDecorators(
					decor.Name(name, decor.WC{C: decor.DSyncSpaceR}),
					decor.CountersNoUnit("%d/%d", decor.WCSyncSpace),
				),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
					if lp := latest.Load(); lp != nil {
						return progressStats(*lp)
					}
					return ""
				})),
			)
			d.bars = append(d.bars, bar)
			d.mu.Unlock()
		}
		bar.SetCurrent(int64(p.Done))
		if p.Finished && !bar.Completed() {
			// Leave the bar on screen as it stands.
			bar.Abort(false)
		}
	}
}

// Close stops drawing: bars still running are left as they stand. The
// Display must not be used afterwards.
func (d *Display) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	prog, bars := d.prog, d.bars
	d.mu.Unlock()
	if prog == nil {
		return
	}
	for _, b := range bars {
		if !b.AbortedOrCompleted() {
			b.Abort(false)
		}
	}
	prog.Wait()
}
