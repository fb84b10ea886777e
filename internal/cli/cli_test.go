package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "streamgate ") {
		t.Fatalf("stdout = %q", out.String())
	}
}

func TestRunUnknownFlagIsUsageError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"version", "--no-such-flag"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "no-such-flag") {
		t.Fatalf("stderr does not name the bad flag: %q", errb.String())
	}
}

func TestRunUnknownCommandFails(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"no-such-command"}, &out, &errb); code == 0 {
		t.Fatal("unknown command exited 0")
	}
}
