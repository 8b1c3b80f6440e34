// Package outcome records how a container's run ended where systemd's
// own account does not say it: a stop that needed SIGKILL (systemd
// counts a death by SIGKILL as clean, so that a stop the user asked for
// does not fail the unit), a kill by the memory limit (systemd 252 on
// cgroup v1 sees only a SIGKILL) and a SIGKILL nobody asked for. The
// container's stop stages write the record (cove launch-stop: ExecStop=
// and ExecStopPost=); cove reads it for ps, status, run's exit message
// and Docker's inspect (supervisor.Workload).
package outcome

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/cgroup"
	"github.com/cove-project/cove/spec"
)

// Dir holds one record per workload, Dir/NAME: how its last run ended,
// when systemd's account does not say it.
const Dir = "/run/cove/outcome"

// Kind is what ended a run.
type Kind string

// The kinds of records.
const (
	StoppedByKill Kind = "stopped-sigkill" // a stop asked for, which needed SIGKILL after the stop timeout
	OOM           Kind = "oom"             // the OOM killer, at the memory limit
	Killed        Kind = "killed"          // a SIGKILL nobody asked for
)

// Record is how one run ended.
type Record struct {
	Invocation  string        `json:"invocation"` // the run: its unit's invocation ID
	Kind        Kind          `json:"kind"`
	After       time.Duration `json:"after,omitempty"`        // StoppedByKill: the stop timeout
	MemoryLimit uint64        `json:"memory_limit,omitempty"` // OOM: the limit in bytes, 0 if none was set
}

// String says it for a user: "stopped with SIGKILL after 10s",
// "killed: out of memory (limit 8M)", "killed by SIGKILL".
func (r Record) String() string {
	switch {
	case r.Kind == StoppedByKill:
		return "stopped with SIGKILL after " + r.After.String()
	case r.Kind == OOM && r.MemoryLimit > 0:
		return "killed: out of memory (limit " + spec.FormatSize(r.MemoryLimit) + ")"
	case r.Kind == OOM:
		return "killed: out of memory"
	}
	return "killed by SIGKILL"
}

// OfResult is how a run ended whose death by SIGKILL systemd judged
// alone (a removed run with no stop stage: units' systemStops), from the
// unit's Result: a stop that needed SIGKILL after stopTimeout (timeout),
// systemd's OOM kill (oom-kill), or a SIGKILL nobody asked for.
func OfResult(result string, stopTimeout time.Duration) Record {
	switch result {
	case "timeout":
		return Record{Kind: StoppedByKill, After: stopTimeout}
	case "oom-kill":
		return Record{Kind: OOM}
	}
	return Record{Kind: Killed}
}

// path is the file of workload name's record.
func path(name string) string { return filepath.Join(Dir, name) }

// Read returns workload name's record; false when it has none (or it
// cannot be read).
func Read(name string) (Record, bool) {
	b, err := os.ReadFile(path(name))
	if err != nil {
		return Record{}, false
	}
	var r Record
	return r, json.Unmarshal(b, &r) == nil
}

// write replaces workload name's record, atomically (a file renamed over
// it): a reader sees the old record or the new one.
func write(name string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("record how %s ended: %w", name, err)
	}
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("record how %s ended: %w", name, err)
	}
	tmp, err := os.CreateTemp(Dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("record how %s ended: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // after the rename: no such file
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path(name))
	}
	if err != nil {
		return fmt.Errorf("record how %s ended: %w", name, err)
	}
	return nil
}

// Remove deletes workload name's record; none is no error.
func Remove(name string) error {
	if err := os.Remove(path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the outcome of %s: %w", name, err)
	}
	return nil
}

// Run is what systemd tells a stop stage about the run in its
// environment (systemd.exec(5)).
type Run struct {
	Invocation string // $INVOCATION_ID
	MainPID    int    // $MAINPID (ExecStop=): 0 once the main process has exited
	Result     string // $SERVICE_RESULT: "success" unless the run failed already
	ExitCode   string // $EXIT_CODE: how the main process ended ("exited", "killed"), "" while it runs
	ExitStatus string // $EXIT_STATUS: its status ("0", "137") or signal ("KILL")
}

// RunOf reads a Run from the environment (os.Getenv).
func RunOf(getenv func(string) string) Run {
	pid, _ := strconv.Atoi(getenv("MAINPID"))
	return Run{Invocation: getenv("INVOCATION_ID"), MainPID: pid, Result: getenv("SERVICE_RESULT"),
		ExitCode: getenv("EXIT_CODE"), ExitStatus: getenv("EXIT_STATUS")}
}

// Asked reports whether run is a stop the user asked for that must end
// its main process: it runs, and systemd stops the unit for no failure
// of its own (a watchdog, a timeout, an OOM policy stop).
func (run Run) Asked() bool { return run.MainPID > 0 && run.Result == "success" }

// sigkilled reports whether SIGKILL ended the run's main process.
func (run Run) sigkilled() bool { return run.ExitCode == "killed" && run.ExitStatus == "KILL" }

// Stopped records that the stop of workload name's run, asked for,
// needed SIGKILL after the stop timeout after.
func Stopped(name string, run Run, after time.Duration) error {
	return write(name, Record{Invocation: run.Invocation, Kind: StoppedByKill, After: after})
}

// Verdict is what the post stage found about a run.
type Verdict struct {
	Record *Record // how it ended, nil when systemd's account says it all
	// HiddenKill: SIGKILL ended the main process and systemd counted it as
	// clean, logging the exit at debug level only. Record is then set.
	HiddenKill bool
	// Fail: that SIGKILL was not asked for; the unit must fail.
	Fail bool
	// Forgive: a stop asked for needed SIGKILL, which systemd counts as
	// the run's failure in this unit (SIGKILL not clean): the post stage
	// resets it, so that the unit ends as after a clean stop.
	Forgive bool
}

// Post is the post stage of workload name's run (ExecStopPost=, or
// ExecStop= after a SIGKILL in a unit without ExecStopPost=; in the
// unit's cgroup, which it reads the OOM kills and the memory limit of):
// it records how the run ended, or removes an earlier run's record, and
// says what it found.
func Post(name string, run Run) (Verdict, error) {
	stop, _ := Read(name)
	cg, err := cgroup.UnitPath(os.Getpid())
	if err != nil {
		return Verdict{}, fmt.Errorf("outcome of %s: %w", name, err)
	}
	v := judge(run, stop, oomKills(cg), cgroup.Read(memoryLimit, cg))
	if v.Record == nil {
		return v, Remove(name)
	}
	return v, write(name, *v.Record)
}

// judge is the verdict on run, given the stop stage's record stop, the
// OOM kills in the unit's cgroup and its memory limit (bytes, 0 or v1's
// huge number for none). A death by SIGKILL (or, under an init, an exit
// with 137) is the OOM killer's when the cgroup counted a kill. A run
// whose main process exited with another status gets no record: units'
// post gate does not run the post stage for it.
func judge(run Run, stop Record, oomKills, limit uint64) Verdict {
	killed := run.sigkilled()
	v := Verdict{HiddenKill: killed && run.Result == "success"}
	switch {
	case killed && stop.Invocation == run.Invocation && stop.Kind == StoppedByKill:
		v.Record, v.Forgive = &stop, run.Result == "signal"
		return v
	case oomKills > 0 && (killed || run.ExitCode == "exited" && run.ExitStatus == "137"):
		if limit >= noLimit {
			limit = 0
		}
		v.Record = &Record{Invocation: run.Invocation, Kind: OOM, MemoryLimit: limit}
	case killed:
		v.Record = &Record{Invocation: run.Invocation, Kind: Killed}
	}
	v.Fail = v.HiddenKill && v.Record != nil
	return v
}

// Err is the error a failing post stage ends with: it names how the run
// ended.
func (v Verdict) Err(name string) error {
	if !v.Fail {
		return nil
	}
	return fmt.Errorf("%s: %s, not by a stop: the unit fails", name, v.Record)
}

// memoryLimit is the cgroup's memory limit (systemd's MemoryMax=): v2
// writes "max" (read as 0) for none, v1 a number at least noLimit.
var memoryLimit = cgroup.Counter{Unified: "memory.max", Controller: "memory", Legacy: "memory.limit_in_bytes"}

// noLimit: a v1 memory limit this large is none (the kernel's
// PAGE_COUNTER_MAX pages, rounded).
const noLimit = 1 << 62

// oomKills reads the "oom_kill N" line of cgroup cg's memory events
// (v2 memory.events, v1 memory.oom_control): the processes the OOM
// killer ended in it; 0 when unknown.
func oomKills(cg string) uint64 {
	dir := cgroup.ControllerDir("memory", cg)
	if dir == "" {
		return 0
	}
	file := "memory.oom_control"
	if cgroup.Unified() {
		file = "memory.events"
	}
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}
