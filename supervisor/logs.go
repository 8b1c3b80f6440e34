package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/cove-project/cove/units"
)

// LogOptions select which journal lines Logs prints.
type LogOptions struct {
	Follow bool // keep printing new lines until ctx ends
	Lines  int  // only the last Lines lines; 0 means all
}

// Logs copies the journal of workload name (its payload's output) to w.
// It runs journalctl: go-systemd's journal reader needs cgo and libsystemd.
func Logs(ctx context.Context, name string, opt LogOptions, w io.Writer) error {
	return journal(ctx, w, opt, "-u", units.UnitName(name))
}

// journal runs journalctl with the given match, printing messages only.
func journal(ctx context.Context, w io.Writer, opt LogOptions, match ...string) error {
	args := append([]string{"--no-pager", "--quiet", "-o", "cat"}, match...)
	if opt.Follow {
		args = append(args, "-f")
	}
	if opt.Lines > 0 {
		args = append(args, "-n", strconv.Itoa(opt.Lines))
	}
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	// A follower must not outlive its reader, e.g. an API helper that was
	// killed mid-stream.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = w
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read journal %s: %w: %s", strings.Join(match, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// withLogs adds the last lines a unit's invocation logged to err.
func withLogs(ctx context.Context, err error, invocation, unit string) error {
	var b strings.Builder
	match := []string{"-u", unit}
	if invocation != "" && invocation != strings.Repeat("0", 32) {
		match = []string{"_SYSTEMD_INVOCATION_ID=" + invocation}
	}
	if journal(ctx, &b, LogOptions{Lines: 10}, match...) != nil || b.Len() == 0 {
		return err
	}
	return fmt.Errorf("%w\nlast log lines of %s:\n%s", err, unit, strings.TrimRight(b.String(), "\n"))
}

// isNotFound reports whether err is ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
