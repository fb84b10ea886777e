// Package cli implements the streamgate command line: one file per
// subcommand, each building a cobra command from the shared env.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// env carries what every subcommand needs from its caller, so tests can run
// the CLI in-process with their own output writers.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

// errUsage marks an error that cobra has already reported with usage help.
var errUsage = errors.New("usage")

// Run executes the streamgate command line with args (without the program
// name) and returns the process exit code: 0 on success, 2 on a usage error,
// 1 on any other failure.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "streamgate: %v\n", err)
		return 1
	}
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "streamgate",
		Short: "Schedule LLM API streams against an account's rate-limit budget",
		Long: `streamgate treats an LLM API account's rate-limit budget as a shared
resource to schedule against: it reads the rate-limit headers of every
response, admits streams only when the budget allows, honours retry-after,
and never presents a truncated stream as a success.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(c.ErrOrStderr(), "streamgate: %v\n%s", err, c.UsageString())
		return fmt.Errorf("%w: %v", errUsage, err)
	})
	for _, sub := range subcommands {
		root.AddCommand(sub(e))
	}
	return root
}

// subcommands lists the constructors of every subcommand; each lives in its
// own file.
var subcommands = []func(*env) *cobra.Command{
	newVersionCmd,
	newSimCmd,
	newBenchCmd,
	newProxyCmd,
	newBatchCmd,
	newDemoCmd,
}
