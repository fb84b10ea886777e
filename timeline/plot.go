package timeline

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotOptions configures WritePNG. The zero value is usable.
type PlotOptions struct {
	// Title heads the image (default "streamgate run").
	Title string
	// Width and Height are the image size in points (default 900 x 700).
	Width, Height float64
	// Smoothing is the number of progress samples the throughput is
	// averaged over (default 3).
	Smoothing int
}

// ErrEmpty means a timeline has nothing to plot.
var ErrEmpty = errors.New("timeline: nothing to plot")

// Series are the curves WritePNG draws, computed from a Timeline.
type Series struct {
	// Budget maps "run: model_class dimension" to the remaining budget
	// (level / limit, in percent) over time (seconds since the start).
	Budget map[string]plotter.XYs
	// Throughput maps a run to the output tokens per second of its
	// completed answers over time (goodput), and Received to the output
	// tokens per second it received, attempts that failed included.
	Throughput map[string]plotter.XYs
	Received   map[string]plotter.XYs
	// RateLimited maps a run to the times of its rate-limit errors.
	RateLimited map[string][]float64
	// Names lists the runs in order of appearance.
	Names []string
}

// ComputeSeries derives the plotted curves from tl. smoothing is the
// number of progress intervals throughput is averaged over (< 1 means 1).
func ComputeSeries(tl *Timeline, smoothing int) Series {
	s := Series{Budget: map[string]plotter.XYs{}, Throughput: map[string]plotter.XYs{}, Received: map[string]plotter.XYs{}, RateLimited: map[string][]float64{}, Names: tl.Runs()}
	start := tl.Start()
	smoothing = max(smoothing, 1)
	type pt struct {
		t           float64
		out, useful int64
	}
	prog := map[string][]pt{}
	for _, r := range tl.Records {
		x := r.T.Sub(start).Seconds()
		switch r.Type {
		case TypeBudget:
			for _, l := range r.Dims {
				if l.Limit <= 0 || math.IsNaN(l.Level) || math.IsInf(l.Level, 0) {
					continue
				}
				name := fmt.Sprintf("%s: %s %s", r.Run, r.ModelClass, l.Dim)
				s.Budget[name] = append(s.Budget[name], plotter.XY{X: x, Y: 100 * l.Level / float64(l.Limit)})
			}
		case TypeProgress:
			prog[r.Run] = append(prog[r.Run], pt{x, r.OutputTokens, r.UsefulTokens})
		case TypeEvent:
			if r.Status == 429 || r.Class == "rate_limited" && (r.Event == "failed" || r.Event == "retry") {
				s.RateLimited[r.Run] = append(s.RateLimited[r.Run], x)
			}
		}
	}
	for run, ps := range prog {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].t < ps[j].t })
		for i := 1; i < len(ps); i++ {
			j := max(0, i-smoothing)
			dt := ps[i].t - ps[j].t
			if dt <= 0 {
				continue
			}
			s.Throughput[run] = append(s.Throughput[run], plotter.XY{X: ps[i].t, Y: float64(ps[i].useful-ps[j].useful) / dt})
			s.Received[run] = append(s.Received[run], plotter.XY{X: ps[i].t, Y: float64(ps[i].out-ps[j].out) / dt})
		}
	}
	for run := range s.RateLimited {
		sort.Float64s(s.RateLimited[run])
	}
	return s
}

// WritePNG draws tl as a PNG: the budget remaining per dimension (as the
// Transport saw it) on top, the output throughput of each run below, with
// a mark at the bottom for every rate-limit error.
func WritePNG(w io.Writer, tl *Timeline, opt PlotOptions) error {
	if opt.Title == "" {
		opt.Title = "streamgate run"
	}
	if opt.Width <= 0 {
		opt.Width = 900
	}
	if opt.Height <= 0 {
		opt.Height = 700
	}
	if opt.Smoothing <= 0 {
		opt.Smoothing = 3
	}
	s := ComputeSeries(tl, opt.Smoothing)
	if len(s.Budget) == 0 && len(s.Throughput) == 0 {
		return ErrEmpty
	}

	top := plot.New()
	top.Title.Text = opt.Title + ": budget remaining"
	top.X.Label.Text = "seconds"
	top.Y.Label.Text = "% of limit"
	top.Y.Min, top.Y.Max = 0, 100
	top.Legend.Top = false
	top.Legend.Left = true
	names := make([]string, 0, len(s.Budget))
	for n := range s.Budget {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if err := addLine(top, n, s.Budget[n], i, plotutil.Dashes(i/7)); err != nil {
			return err
		}
	}

	bottom := plot.New()
	bottom.Title.Text = "output throughput (x: rate-limit errors)"
	bottom.X.Label.Text = "seconds"
	bottom.Y.Label.Text = "tokens/s"
	bottom.Y.Min = 0
	bottom.Legend.Top = true
	bottom.Legend.Left = true
	for i, run := range s.Names {
		label := run
		if label == "" {
			label = "run"
		}
		if xy := s.Throughput[run]; len(xy) > 0 {
			if err := addLine(bottom, label+": completed", xy, i, nil); err != nil {
				return err
			}
		}
		if xy := s.Received[run]; len(xy) > 0 {
			if err := addLine(bottom, label+": received", xy, i, []vg.Length{vg.Points(4), vg.Points(3)}); err != nil {
				return err
			}
		}
		if ts := s.RateLimited[run]; len(ts) > 0 {
			pts := make(plotter.XYs, len(ts))
			for k, t := range ts {
				pts[k] = plotter.XY{X: t, Y: 0}
			}
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				return fmt.Errorf("timeline: %w", err)
			}
			sc.GlyphStyle.Color = plotutil.Color(i)
			sc.GlyphStyle.Shape = draw.CrossGlyph{}
			sc.GlyphStyle.Radius = vg.Points(3)
			bottom.Add(sc)
			bottom.Legend.Add(fmt.Sprintf("%s: %d rate-limit errors", label, len(ts)), sc)
		}
	}
	// Share the time axis.
	xmax := math.Max(top.X.Max, bottom.X.Max)
	top.X.Min, bottom.X.Min = 0, 0
	top.X.Max, bottom.X.Max = xmax, xmax

	img := vgimg.New(vg.Points(opt.Width), vg.Points(opt.Height))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	plots := [][]*plot.Plot{{top}, {bottom}}
	canvases := plot.Align(plots, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("timeline: writing PNG: %w", err)
	}
	return nil
}

func addLine(p *plot.Plot, name string, xy plotter.XYs, i int, dashes []vg.Length) error {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return fmt.Errorf("timeline: %s: %w", name, err)
	}
	l.Color = plotutil.Color(i)
	l.Dashes = dashes
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// SavePNG writes the plot of tl to the file dst.
func SavePNG(dst string, tl *Timeline, opt PlotOptions) (err error) {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("timeline: %w", cerr)
		}
	}()
	bw := bufio.NewWriter(f)
	if err := WritePNG(bw, tl, opt); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return nil
}
