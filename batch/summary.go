package batch

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the summary for people: results, makespan against the
// theoretical minimum, utilisation per dimension, and the failure
// counters.
func (s Summary) WriteText(w io.Writer) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s batch (%s format): %d requests\n", s.Strategy, s.Format, s.Requests)
	fmt.Fprintf(&sb, "  results:         %d succeeded, %d errored, %d pending (this run); %d already done before\n",
		s.Succeeded, s.Errored, s.Pending, s.AlreadyDone)
	if len(s.Invalid) > 0 {
		fmt.Fprintf(&sb, "  skipped lines:   %d invalid input line(s):\n", len(s.Invalid))
		for _, l := range s.Invalid {
			fmt.Fprintf(&sb, "                   %s\n", l.Error())
		}
	}
	if s.TornBytes > 0 {
		fmt.Fprintf(&sb, "  results file:    a torn last line (%d bytes) from an interrupted run was removed\n", s.TornBytes)
	}
	fmt.Fprintf(&sb, "  makespan:        %s\n", round(s.Makespan))
	switch {
	case s.BudgetMin > 0 && s.BudgetMin >= s.LongestStream:
		fmt.Fprintf(&sb, "  theoretical min: %s (%s of %s binds) -> makespan is %.2fx the minimum\n",
			round(s.TheoreticalMin), s.Binding, s.BindingClass, ratio(s.Makespan, s.TheoreticalMin))
	case s.TheoreticalMin > 0:
		fmt.Fprintf(&sb, "  theoretical min: %s (the longest single stream; no budget binds) -> makespan is %.2fx the minimum\n",
			round(s.TheoreticalMin), ratio(s.Makespan, s.TheoreticalMin))
	default:
		fmt.Fprintf(&sb, "  theoretical min: unknown (nothing completed)\n")
	}
	fmt.Fprintf(&sb, "  usage:           %d input tokens, %d output tokens (succeeded), %d upstream attempts\n",
		s.InputTokens, s.OutputTokens, s.Attempts)
	fmt.Fprintf(&sb, "  failures:        %d rate-limit errors, %d retries, %d resumed, %d mid-stream failures, %d output tokens wasted\n",
		s.RateLimited, s.Retries, s.Resumes, s.MidStreamFailures, s.WastedOutputTokens)
	if len(s.Dimensions) > 0 {
		fmt.Fprintf(&sb, "  utilisation (drawn / what the budget granted during the run; window %s):\n", s.Window)
		tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "    budget\tdimension\tlimit\tneeded\tdrawn\tutilisation\tmin time\n")
		for _, d := range s.Dimensions {
			fmt.Fprintf(tw, "    %s\t%s\t%d\t%d\t%d\t%.0f%%\t%s\n", d.ModelClass, d.Dimension, d.Limit, d.Needed, d.Drawn, 100*d.Utilisation, round(d.MinTime))
		}
		tw.Flush()
	}
	for i, f := range s.Failures {
		if i == 10 {
			fmt.Fprintf(&sb, "  ... and %d more pending\n", len(s.Failures)-i)
			break
		}
		fmt.Fprintf(&sb, "  pending: line %d (custom_id %q): %v\n", f.Line, f.CustomID, f.Err)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return a.Seconds() / b.Seconds()
}

func round(d time.Duration) time.Duration {
	if d > 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
