package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/sandbox"
)

// genOut is the generator's output directory inside the sandbox (a
// private /tmp).
const genOut = "/tmp/cove-bench-gen"

// offDir is where /etc/cove is renamed to while phase 1 measures "0 specs".
const offDir = "/etc/cove-bench-off"

// target is the workload whose spec changes.
const target = "target"

// memories alternate in the target's spec, so that every apply changes it.
var memories = []struct {
	spec  string
	bytes string
}{{"64M", "67108864"}, {"96M", "100663296"}}

// bench runs commands in the box.
type bench struct {
	o     options
	box   *benchbox.Box
	ctx   context.Context
	sb    *sandbox.Sandbox
	specs string // host dir with the filler specs (visible inside)
	tfile string // the target's spec file (host, visible inside)
	flip  int    // how often the target's memory limit was changed
	env   int    // the target's BENCH_ENV
	stop  int    // the target's stop timeout, an index of stopTimeouts
	ticks int64  // systemd's CPU ticks after the last command add timed
}

// setup starts the report and writes the specs.
func setup(box *benchbox.Box, o options) (*bench, *report, error) {
	b := &bench{o: o, box: box, ctx: box.Ctx, sb: box.SB}
	rep := &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Invocation: benchbox.Invocation("apply"),
		Warmup:     o.warmup,
		Machine:    benchbox.Machine(b.ctx, b.sb),
		LoadStart:  loadavg(),
		Prefix:     benchbox.NsenterPrefix(b.ctx, b.sb),
		Work:       box.Work,
		SpecText:   specText(box.Rootfs, "", false, 0, stopTimeouts[0]),
	}
	if mem := memTotal(); mem != "" {
		rep.Machine["memory"] = mem
	}
	if err := b.writeSpecs(); err != nil {
		return nil, nil, err
	}
	return b, rep, nil
}

// specText is a spec whose payload sleeps. Its shell handles SIGTERM: a
// PID 1 without a handler ignores it, so every stop would last
// stop_timeout. The target gets a memory limit and no start limit (it is
// restarted more often than systemd's default 5 starts in 10 s allow) and
// an environment variable.
func specText(rootfs, memory string, isTarget bool, env int, stop string) string {
	s := fmt.Sprintf(`version = 1
kind = "container"
description = "cove bench/apply"
[container]
rootfs = %q
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
%s[service]
stop_timeout = %q
`, rootfs, envLine(isTarget, env), stop)
	if isTarget {
		s += "start_limit = { burst = 1000000 }\n"
	}
	if memory != "" {
		s += fmt.Sprintf("[resources]\nmemory = %q\n", memory)
	}
	return s
}

// envLine is the target's environment (BENCH_ENV=env, which the restart
// round changes), none for the fillers.
func envLine(isTarget bool, env int) string {
	if !isTarget {
		return ""
	}
	return fmt.Sprintf("env = { BENCH_ENV = \"%d\" }\n", env)
}

// fillName is the name of filler workload i.
func fillName(i int) string { return fmt.Sprintf("fill%04d", i) }

// writeSpecs writes the filler specs and the target's spec on the host.
func (b *bench) writeSpecs() error {
	b.specs = filepath.Join(b.box.Work, "specs")
	if err := os.MkdirAll(b.specs, 0o755); err != nil {
		return err
	}
	for i := 0; i < b.o.specs; i++ {
		p := filepath.Join(b.specs, fillName(i)+".toml")
		if err := os.WriteFile(p, []byte(specText(b.box.Rootfs, "", false, 0, stopTimeouts[0])), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(b.box.Work, "empty"), 0o755); err != nil {
		return err
	}
	tdir := filepath.Join(b.box.Work, "target")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return err
	}
	b.tfile = filepath.Join(tdir, target+".toml")
	return b.setTarget(0, 0, 0)
}

// stopTimeouts are the target's stop timeouts, which the reload round
// alternates: a change of its unit (TimeoutStopSec=, the stop stage's
// argument) that needs a reload.
var stopTimeouts = [2]string{"2s", "3s"}

// setTarget writes the target's spec with memories[i], BENCH_ENV=env and
// stopTimeouts[stop].
func (b *bench) setTarget(i, env, stop int) error {
	return os.WriteFile(b.tfile, []byte(specText(b.box.Rootfs, memories[i].spec, true, env, stopTimeouts[stop])), 0o644)
}

// loadavg returns the host's load averages.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// memTotal returns the host's memory in GiB.
func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err == nil {
				return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return ""
}
