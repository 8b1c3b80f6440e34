package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// This file runs and times commands in the sandbox and watches its
// systemd's CPU time.

// Timeouts of single commands inside the sandbox.
const (
	cmdTimeout  = 2 * time.Minute  // a timed command or a check
	bulkTimeout = 20 * time.Minute // declaring or pruning many workloads
)

// tickMs is the length of a clock tick in /proc/PID/stat (USER_HZ = 100).
const tickMs = 10

// quiesce's idle window and bound.
const (
	quiesceWindow = 200 * time.Millisecond
	quiesceMax    = 15 * time.Second
)

// sh runs a shell command inside (not timed) and returns its output.
func (b *bench) sh(script string) (string, error) {
	return benchbox.Inside(b.ctx, b.sb, cmdTimeout, nil, "sh", "-c", script)
}

// count runs a shell command that prints a number.
func (b *bench) count(script string) (int, error) {
	out, err := b.sh(script)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// timed runs argv inside, bounded by timeout, and returns its wall-clock
// time (of the whole nsenter invocation) in ms and its stdout; it fails
// unless argv exits 0.
func (b *bench) timed(timeout time.Duration, argv ...string) (float64, string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	cmd := b.sb.Command(ctx, argv[0], argv[1:]...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if b.ctx.Err() != nil {
		return 0, "", errors.New("interrupted")
	}
	if err != nil {
		return 0, out.String(), fmt.Errorf("%s: %v\nstdout: %s\nstderr: %s", strings.Join(argv, " "), err,
			benchbox.Tail(out.String(), 20), benchbox.Tail(errOut.String(), 20))
	}
	return benchbox.Millis(d), out.String(), nil
}

// add times argv once and appends the sample, and systemd's CPU time
// meanwhile, to s if measuring. It leaves systemd's CPU ticks at the end
// in b.ticks.
func (b *bench) add(s *series, measure bool) (string, error) {
	before, err := cpuTicks(b.sb.PID())
	if err != nil {
		return "", err
	}
	ms, out, err := b.timed(cmdTimeout, s.Argv...)
	if err != nil {
		return out, err
	}
	if b.ticks, err = cpuTicks(b.sb.PID()); err != nil {
		return "", err
	}
	if measure {
		s.Samples = append(s.Samples, ms)
		s.CPUSamples = append(s.CPUSamples, float64(b.ticks-before)*tickMs)
	}
	return out, nil
}

// timeGenerator empties the output directory (not timed), times the
// generator into it and returns how many services it wrote.
func (b *bench) timeGenerator(s *series, measure bool) (int, error) {
	if _, err := b.sh("rm -rf " + genOut + " && mkdir " + genOut); err != nil {
		return 0, err
	}
	if _, err := b.add(s, measure); err != nil {
		return 0, err
	}
	return b.count("ls " + genOut + " | grep -c '^cove-.*\\.service$' || true")
}

// quiesce waits (at most quiesceMax) until the sandbox's systemd is idle:
// it used no CPU time for a whole quiesceWindow. After a daemon-reload
// systemd goes on working (cgroup realisation, D-Bus signals) after its
// reply; commands timed after quiesce do not pay for that.
func (b *bench) quiesce() error {
	_, err := b.idleTicks()
	return err
}

// idleTicks is quiesce, returning systemd's CPU ticks once idle.
func (b *bench) idleTicks() (int64, error) {
	deadline := time.Now().Add(quiesceMax)
	last, err := cpuTicks(b.sb.PID())
	if err != nil {
		return 0, err
	}
	for time.Now().Before(deadline) {
		select {
		case <-b.ctx.Done():
			return 0, errors.New("interrupted")
		case <-time.After(quiesceWindow):
		}
		now, err := cpuTicks(b.sb.PID())
		if err != nil {
			return 0, err
		}
		if now == last {
			return now, nil
		}
		last = now
	}
	benchbox.Progress(fmt.Sprintf("systemd not idle after %v; going on", quiesceMax))
	return last, nil
}

// cpuTicks returns the user plus system CPU time of process pid in clock
// ticks.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// After the command: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return ut + st, nil
}
