package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/bench"
)

func newBenchCmd(e *env) *cobra.Command {
	var (
		scenario   string
		requests   int
		window     time.Duration
		strategies string
		repeats    int
		seed       uint64
		jsonPath   string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure scheduling strategies side by side on the embedded simulator",
		Long: `bench runs the same workload against a fresh simulator once per strategy
and repeat, interleaved, and prints makespan as a ratio of the theoretical
minimum, 429s per 1,000 requests, mid-stream failures, truncated successes and
wasted output tokens.

Scenarios:
  saturate      a backlog with mixed lengths against Tier-1-like limits
  long-streams  long generations, output budget binding, mid-stream faults

Strategies:
  streamgate           anthropic-sdk-go with streamgate's Transport (SDK retries off)
  streamgate-noresume  the same with stream resumption off
  sdk                  anthropic-sdk-go with its default retries, 16 workers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			build, ok := map[string]func(int, time.Duration, uint64) bench.Scenario{
				"saturate":     bench.Saturate,
				"long-streams": bench.LongStreams,
			}[scenario]
			if !ok {
				return fmt.Errorf("%w: unknown scenario %q (have: saturate, long-streams)", errUsage, scenario)
			}
			var sts []bench.Strategy
			for _, name := range strings.Split(strategies, ",") {
				switch strings.TrimSpace(name) {
				case "streamgate":
					sts = append(sts, bench.Streamgate{})
				case "streamgate-noresume":
					sts = append(sts, bench.Streamgate{Label: "streamgate-noresume", Options: []streamgate.Option{streamgate.WithResume(false)}})
				case "sdk":
					sts = append(sts, bench.SDK{})
				default:
					return fmt.Errorf("%w: unknown strategy %q (have: streamgate, streamgate-noresume, sdk)", errUsage, name)
				}
			}
			var all []bench.Result
			for rep := range max(repeats, 1) {
				sc := build(requests, window, seed+uint64(rep))
				for _, st := range sts {
					res, err := bench.Run(cmd.Context(), sc, st)
					if err != nil {
						return err
					}
					all = append(all, res)
					fmt.Fprintf(e.stderr, "repeat %d %s: makespan %s (%.2fx min)\n", rep+1, st.Name(), res.Makespan.Round(time.Millisecond), res.Ratio)
				}
			}
			writeTable(e, all)
			if jsonPath != "" {
				b, err := json.MarshalIndent(all, "", "  ")
				if err != nil {
					return err
				}
				return os.WriteFile(jsonPath, append(b, '\n'), 0o644)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", "saturate", "workload: saturate or long-streams")
	f.IntVar(&requests, "requests", 200, "requests in the backlog")
	f.DurationVar(&window, "window", 6*time.Second, "length of the simulated rate-limit minute")
	f.StringVar(&strategies, "strategies", "streamgate,sdk", "comma-separated strategies to compare")
	f.IntVar(&repeats, "repeats", 1, "repeats (each strategy once per repeat, interleaved)")
	f.Uint64Var(&seed, "seed", 1, "workload seed (repeat r uses seed+r)")
	f.StringVar(&jsonPath, "json", "", "also write the results as JSON to this file")
	return cmd
}

func writeTable(e *env, rs []bench.Result) {
	fmt.Fprintln(e.stdout, "| strategy | completed | truncated successes | failed | makespan | theoretical min | ratio | 429s /1k req | mid-stream cuts | attempts/req | wasted output | goodput | p50 | p99 |")
	fmt.Fprintln(e.stdout, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Fprintf(e.stdout, "| %s | %d/%d | %d | %d | %s | %s | %.2fx | %.1f | %d | %.2f | %d (%.2f%%) | %.0f%% | %s | %s |\n",
			r.Strategy, r.Completed, r.Requests, r.TruncatedSuccesses, r.Failed,
			r.Makespan.Round(100*time.Millisecond), r.TheoreticalMin.Round(100*time.Millisecond), r.Ratio,
			r.Per1000, r.MidStream, r.Attempts, r.WastedOutput, r.WastedPct, 100*r.Goodput,
			r.P50.Round(100*time.Millisecond), r.P99.Round(100*time.Millisecond))
	}
}
