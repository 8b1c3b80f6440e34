package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// prune: phase 3, inside the sandbox.
func (b *bench) prune() (*cleanup, error) {
	all := b.o.ks[len(b.o.ks)-1] + 1
	benchbox.Progress(fmt.Sprintf("cleanup: cove apply --prune EMPTYDIR (%d workloads)", all))
	applied := "ls /var/lib/cove/applied 2>/dev/null | grep -c '\\.toml$' || true"
	before, err := b.count(applied)
	if err != nil || before != all {
		return nil, fmt.Errorf("before prune: %d applied specs, want %d (%v)", before, all, err)
	}
	// apply prints nothing for removed workloads.
	ms, _, err := b.timed(bulkTimeout, b.box.Cove, "apply", "--prune", filepath.Join(b.box.Work, "empty"))
	if err != nil {
		return nil, err
	}
	c := &cleanup{PruneMs: ms, Pruned: before}
	if c.SleepsInside, err = b.count("ps -eo args | grep -c '^sleep 1000' || true"); err != nil {
		return nil, err
	}
	if n, err := b.count("{ ls /etc/cove; ls /var/lib/cove/applied; } 2>/dev/null | grep -c toml || true"); err != nil || n != 0 {
		return nil, fmt.Errorf("after prune: %d specs left (%v)", n, err)
	}
	if n, err := b.count("systemctl list-units --all --no-legend --plain 'cove-*.service' | wc -l"); err != nil || n != 0 {
		return nil, fmt.Errorf("after prune: %d cove units still loaded (%v)", n, err)
	}
	benchbox.Progress(fmt.Sprintf("cleanup: pruned %d in %.1f s; %d 'sleep 1000' left inside", c.Pruned, ms/1000, c.SleepsInside))
	return c, nil
}

// sleepsIn counts host processes running "sleep 1000" in PID namespace ns.
func sleepsIn(ns string) int {
	if ns == "" {
		return 0
	}
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || string(cmdline) != "sleep\x001000\x00" {
			continue
		}
		// A process that has left the namespace (it cannot) or whose
		// namespace is unreadable counts only if it is ours.
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			n++
		}
	}
	return n
}

// teardown shuts the sandbox down and records in c what is left of it:
// "sleep 1000" processes in its PID namespace, its cgroups, the work
// directory.
func (b *bench) teardown(c *cleanup) {
	benchbox.Progress("shutting the sandbox down")
	pidNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", b.sb.PID()))
	cgroups := b.sb.CgroupDirs()
	b.box.Close()
	c.SleepsLeft = sleepsIn(pidNS)
	for _, d := range cgroups {
		if _, err := os.Stat(d); err == nil {
			c.CgroupsLeft = append(c.CgroupsLeft, d)
		}
	}
	_, err := os.Stat(b.box.Work)
	c.WorkDirRemoved = errors.Is(err, os.ErrNotExist)
	benchbox.Progress(fmt.Sprintf("left behind: %d 'sleep 1000' processes of the sandbox, %d sandbox cgroups, work directory removed: %v",
		c.SleepsLeft, len(c.CgroupsLeft), c.WorkDirRemoved))
}
