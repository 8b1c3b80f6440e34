package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/sandbox"
)

// event is one scheduler tracepoint of `perf script`: an exec (with the
// file), a fork (with the child) or an exit (of a whole thread group).
type event struct {
	t     float64 // seconds
	pid   int     // the thread group
	tid   int
	kind  string // exec, fork, exit
	file  string // exec: the file
	child int    // fork: the child's PID
}

// phase is one step of a start, named for the table, with its samples.
type phase struct {
	Name    string    `json:"name"`
	Samples []float64 `json:"samples_ms"`
	benchbox.Stats
}

// tracePhases runs A (cove) and B (systemd-run) n times each, one after
// the other, under `perf record` of the scheduler's exec, fork and exit
// tracepoints on the whole machine, and splits each run into the phases
// of its process tree (see covePhases and systemdRunPhases).
func tracePhases(ctx context.Context, sb *sandbox.Sandbox, rep *report, work string, n int) error {
	data := filepath.Join(work, "phases.perf")
	perf := exec.CommandContext(ctx, "perf", "record", "-q", "-a", "-o", data,
		"-e", "sched:sched_process_exec", "-e", "sched:sched_process_fork", "-e", "sched:sched_process_exit")
	perf.Stderr = os.Stderr
	if err := perf.Start(); err != nil {
		return fmt.Errorf("perf record (apt-get install linux-perf): %w", err)
	}
	time.Sleep(500 * time.Millisecond) // perf opens its buffers

	a, b := find(rep, "A"), find(rep, "B")
	var runErr error
	for i := 0; i < n && runErr == nil; i++ {
		for _, x := range []*bench{a, b} {
			if _, runErr = benchbox.TimeOnce(ctx, sb, benchbox.CmdTimeout, x.Env, x.Argv); runErr != nil {
				break
			}
			time.Sleep(50 * time.Millisecond) // keep the runs apart in the trace
		}
	}
	perf.Process.Signal(syscall.SIGINT)
	perf.Wait() // perf exits on SIGINT after writing the data (status: the signal)
	if runErr != nil {
		return runErr
	}
	out, err := exec.CommandContext(ctx, "perf", "script", "-i", data, "-F", "comm,pid,tid,time,event,trace").Output()
	if err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	evs, err := parseEvents(bytes.NewReader(out))
	if err != nil {
		return err
	}

	rep.CovePhases = summarizePhases(splitRuns(evs, a.Argv[0], covePhases))
	rep.SystemdRunPhases = summarizePhases(splitRuns(evs, "/usr/bin/systemd-run", systemdRunPhases))
	return nil
}

// parseEvents reads `perf script -F comm,pid,tid,time,event,trace`.
func parseEvents(r io.Reader) ([]event, error) {
	var evs []event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, ": sched:sched_process_")
		if i < 0 {
			continue
		}
		head := strings.Fields(line[:i])
		if len(head) < 3 {
			continue
		}
		var e event
		ids := strings.SplitN(head[len(head)-2], "/", 2)
		e.pid, _ = strconv.Atoi(ids[0])
		if len(ids) == 2 {
			e.tid, _ = strconv.Atoi(ids[1])
		}
		e.t, _ = strconv.ParseFloat(head[len(head)-1], 64)
		rest := line[i+len(": sched:sched_process_"):]
		kind, args, _ := strings.Cut(rest, ": ")
		e.kind = kind
		fields := traceFields(args)
		switch kind {
		case "exec":
			e.file = fields["filename"]
		case "fork":
			e.child, _ = strconv.Atoi(fields["child_pid"])
		case "exit":
			if fields["group_dead"] != "true" {
				continue
			}
		default:
			continue
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

// traceFields splits a tracepoint's "k=v k=v" text.
func traceFields(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// splitter finds the phases of one run in the events from its client's
// exec to its client's exit: the times of its named moments, in order.
type splitter func(run []event, client int) ([]string, []float64, bool)

// runPhases are one run's phases and their durations in milliseconds.
type runPhases struct {
	names []string
	ms    []float64
}

// splitRuns cuts the trace into runs, one per exec of client, and returns
// each run's phase names and durations (ms) as split finds them.
func splitRuns(evs []event, client string, split splitter) []runPhases {
	var runs []runPhases
	for i, e := range evs {
		if e.kind != "exec" || e.file != client {
			continue
		}
		end := i + 1
		for ; end < len(evs); end++ {
			if evs[end].kind == "exit" && evs[end].pid == e.pid {
				break
			}
		}
		if end == len(evs) {
			continue
		}
		names, times, ok := split(evs[i:end+1], e.pid)
		if !ok {
			continue
		}
		r := runPhases{names: names}
		for k := 1; k < len(times); k++ {
			r.ms = append(r.ms, (times[k]-times[k-1])*1000)
		}
		runs = append(runs, r)
	}
	return runs
}

// covePhases: client exec → systemd forks the unit's process → it execs
// cove-launch → the launcher clones the init → the init execs cove-init
// → the init execs the payload → the payload exits → the client exits;
// in a unit with an ExecStop= gate, between the last two: systemd forks
// the gate → it execs /bin/sh → the gate exits.
func covePhases(run []event, client int) ([]string, []float64, bool) {
	names := []string{
		"client exec → systemd forks the unit's process",
		"fork → exec cove-launch (systemd's setup in the child)",
		"cove-launch exec → clone of the init",
		"clone → the init execs cove-init",
		"init exec → payload exec",
		"payload runs",
	}
	launcher := firstExec(run, "/cove-launch", 0)
	if launcher == nil {
		return nil, nil, false
	}
	initExec := firstExec(run, "/cove-init", 0)
	if initExec == nil {
		return nil, nil, false
	}
	forkOf := func(child int) *event {
		for k := range run {
			if run[k].kind == "fork" && run[k].child == child {
				return &run[k]
			}
		}
		return nil
	}
	unitFork, initFork := forkOf(launcher.pid), forkOf(initExec.pid)
	payload := execIn(run, initExec.pid, initExec.t)
	exit := exitOf(run, initExec.pid)
	if unitFork == nil || initFork == nil || payload == nil || exit == nil {
		return nil, nil, false
	}
	times := []float64{run[0].t, unitFork.t, launcher.t, initFork.t, initExec.t, payload.t, exit.t}
	if gate := gateAfter(run, exit.t, unitFork.pid); gate != nil {
		gateFork, gateExit := forkOf(gate.pid), exitOf(run, gate.pid)
		if gateFork == nil || gateExit == nil {
			return nil, nil, false
		}
		names = append(names, "payload exit → systemd forks the stop gate", "gate fork → gate exec /bin/sh", "the gate runs", "gate exit → client exit")
		times = append(times, gateFork.t, gate.t, gateExit.t)
	} else {
		names = append(names, "payload exit → client exit")
	}
	return names, append(times, run[len(run)-1].t), true
}

// gateAfter is the first exec of the stop gate's shell after t by a
// process that systemd (the PID manager) forked: the unit's ExecStop=.
func gateAfter(run []event, t float64, manager int) *event {
	for k := range run {
		e := &run[k]
		if e.kind != "exec" || e.t <= t || e.file != "/bin/sh" {
			continue
		}
		for _, f := range run {
			if f.kind == "fork" && f.child == e.pid && f.pid == manager {
				return e
			}
		}
	}
	return nil
}

// systemdRunPhases: client exec → systemd forks the unit's process → it
// execs the payload → the payload exits → the client exits.
func systemdRunPhases(run []event, client int) ([]string, []float64, bool) {
	names := []string{
		"client exec → systemd forks the unit's process",
		"fork → payload exec (systemd's setup in the child)",
		"payload runs",
		"payload exit → client exit",
	}
	payload := firstExec(run, "/bin/true", 0)
	if payload == nil {
		return nil, nil, false
	}
	var fork *event
	for k := range run {
		if run[k].kind == "fork" && run[k].child == payload.pid {
			fork = &run[k]
		}
	}
	exit := exitOf(run, payload.pid)
	if fork == nil || exit == nil {
		return nil, nil, false
	}
	return names, []float64{run[0].t, fork.t, payload.t, exit.t, run[len(run)-1].t}, true
}

// firstExec is the first exec of a file ending in suffix by a process
// other than not.
func firstExec(run []event, suffix string, not int) *event {
	for k := range run {
		if run[k].kind == "exec" && strings.HasSuffix(run[k].file, suffix) && run[k].pid != not {
			return &run[k]
		}
	}
	return nil
}

// execIn is the first exec by pid after t.
func execIn(run []event, pid int, t float64) *event {
	for k := range run {
		if run[k].kind == "exec" && run[k].pid == pid && run[k].t > t {
			return &run[k]
		}
	}
	return nil
}

// exitOf is pid's exit.
func exitOf(run []event, pid int) *event {
	for k := range run {
		if run[k].kind == "exit" && run[k].pid == pid {
			return &run[k]
		}
	}
	return nil
}

// summarizePhases turns the runs' durations into one phase list with
// statistics, plus the total.
func summarizePhases(runs []runPhases) []*phase {
	if len(runs) == 0 {
		return nil
	}
	var out []*phase
	byName := map[string]*phase{}
	total := &phase{Name: "total (client exec → client exit)"}
	for _, r := range runs {
		sum := 0.0
		for k, d := range r.ms {
			p := byName[r.names[k]]
			if p == nil { // in the order first seen: runs of one shape agree
				p = &phase{Name: r.names[k]}
				byName[p.Name] = p
				out = append(out, p)
			}
			p.Samples = append(p.Samples, d)
			sum += d
		}
		total.Samples = append(total.Samples, sum)
	}
	out = append(out, total)
	for _, p := range out {
		p.Stats = benchbox.Summarize(p.Samples)
	}
	return out
}

// printPhases writes the phase tables of -phases.
func printPhases(w io.Writer, rep *report) {
	for _, t := range []struct {
		name   string
		phases []*phase
	}{{"A cove", rep.CovePhases}, {"B systemd-run", rep.SystemdRunPhases}} {
		if t.phases == nil {
			continue
		}
		fmt.Fprintf(w, "\nPhases of %s (%d runs traced with perf's sched tracepoints):\n\n", t.name, len(t.phases[0].Samples))
		fmt.Fprintln(w, "| phase | median | p90 | min |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
		for _, p := range t.phases {
			fmt.Fprintf(w, "| %s | %.1f ms | %.1f ms | %.1f ms |\n", p.Name, p.Median, p.P90, p.Min)
		}
	}
}
