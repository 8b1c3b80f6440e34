package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// profileReload records the sandbox's systemd with perf (DWARF call
// graphs: Debian builds systemd without frame pointers) during one
// daemon-reload with k other declared workloads running, and writes
// perf's report of where its time went into dir: reload-K.self.txt (by
// symbol, the time spent in each itself) and reload-K.children.txt (with
// what each calls). The data file stays there too.
func (b *bench) profileReload(dir string, k int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := filepath.Join(dir, fmt.Sprintf("reload-%d.data", k))
	rec := exec.CommandContext(b.ctx, "perf", "record", "--call-graph", "dwarf,16384", "-p", strconv.Itoa(b.sb.PID()), "-o", data)
	rec.Stderr = os.Stderr
	if err := b.quiesce(); err != nil {
		return err
	}
	if err := rec.Start(); err != nil {
		return fmt.Errorf("perf record (Debian's linux-perf): %w", err)
	}
	time.Sleep(time.Second) // perf attaches
	_, rerr := b.sh("systemctl daemon-reload")
	qerr := b.quiesce()
	rec.Process.Signal(syscall.SIGINT)
	if err := rec.Wait(); err != nil && !stoppedBy(err, syscall.SIGINT) && rerr == nil && qerr == nil {
		return fmt.Errorf("perf record: %w", err)
	}
	if rerr != nil || qerr != nil {
		return fmt.Errorf("daemon-reload under perf: %v %v", rerr, qerr)
	}
	for _, kind := range []string{"self", "children"} {
		mode := "--no-children"
		if kind == "children" {
			mode = "--children"
		}
		out, err := exec.CommandContext(b.ctx, "perf", "report", "-i", data, "--stdio", mode, "--sort", "symbol",
			"--percent-limit", "1", "-g", "none").Output()
		if err != nil {
			return fmt.Errorf("perf report: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("reload-%d.%s.txt", k, kind)), out, 0o644); err != nil {
			return err
		}
	}
	benchbox.Progress(fmt.Sprintf("perf: systemd during a daemon-reload at K = %d in %s", k, dir))
	return nil
}

// stoppedBy reports whether err is a process's end by signal sig (perf
// record ends by re-raising the SIGINT that stops it).
func stoppedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
