package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// errNoFreezer says that a cgroup has no v2 directory here (no unified
// hierarchy mounted, not even beside v1's), so it cannot be frozen.
var errNoFreezer = errors.New("no unified (v2) cgroup hierarchy here to freeze with")

// Frozen reports whether cgroup path (as systemd's ControlGroup property
// gives it) is frozen: its cgroup.freeze, in the unified hierarchy (also
// the one a hybrid layout mounts beside v1's), says 1.
func Frozen(path string) bool {
	if path == "" {
		return false
	}
	dir := ControllerDir("", path)
	if dir == "" {
		return false
	}
	n, err := readNumber(filepath.Join(dir, "cgroup.freeze"))
	return err == nil && n == 1
}

// Freeze freezes (freeze) or thaws cgroup path and every process in it,
// through the kernel's v2 freezer (cgroup.freeze), and waits until
// cgroup.events says it is done (a freeze completes once every process has
// stopped), or ctx ends.
func Freeze(ctx context.Context, path string, freeze bool) error {
	dir := ControllerDir("", path)
	if dir == "" || path == "" {
		return fmt.Errorf("freeze cgroup %s: %w", path, errNoFreezer)
	}
	value, op := "0", "thaw"
	if freeze {
		value, op = "1", "freeze"
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte(value), 0); err != nil {
		return fmt.Errorf("%s cgroup %s: write cgroup.freeze: %w", op, path, err)
	}
	for {
		done, err := frozenEvent(dir)
		if err != nil {
			return fmt.Errorf("%s cgroup %s: %w", op, path, err)
		}
		if done == freeze {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s cgroup %s: waiting for cgroup.events to say frozen %s: %w", op, path, value, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// frozenEvent reads the "frozen" line of cgroup directory dir's
// cgroup.events.
func frozenEvent(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("read cgroup.events: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "frozen "); ok {
			return v == "1", nil
		}
	}
	return false, fmt.Errorf("read %s: no frozen line", f.Name())
}
