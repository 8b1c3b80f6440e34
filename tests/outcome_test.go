package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/outcome"
)

// sleeper is a payload with no handler for SIGTERM: as PID 1 of its
// namespace the kernel shields it from the signal (busybox httpd is such
// a payload).
const sleeper = `["/bin/sleep", "1000"]`

// applyInit applies a declared container running command with
// service.init = true and a stop timeout of 30 s, and waits until it runs.
func applyInit(t *testing.T, name, command, extra string) {
	t.Helper()
	pruneAll(t)
	path := containerSpec(t, filepath.Join(workDir, "outcome"), name, rootfs, command, "[service]\ninit = true\nstop_timeout = \"30s\"\n"+extra)
	mustCove(t, "apply", path)
	eventually(t, 10*time.Second, name+" to run", func() bool { return show(t, "cove-"+name+".service", "ActiveState") == "active" })
}

// TestInitStopsAtOnce: with init = true a payload that has no handler for
// SIGTERM is not PID 1, so the stop signal the init forwards ends it: the
// stop needs no SIGKILL and the unit ends inactive, not failed, with the
// init's exit status 143 (128+SIGTERM) counted as clean.
func TestInitStopsAtOnce(t *testing.T) {
	env.Need(t)
	applyInit(t, "initstop", sleeper, "")
	unit := "cove-initstop.service"
	mainPID := show(t, unit, "MainPID")
	if r := inside(t, "readlink", "/proc/"+mainPID+"/exe"); strings.TrimSpace(r.Stdout) != "/usr/bin/tini-static" {
		t.Errorf("main process %s is %q, want the init /usr/bin/tini-static", mainPID, strings.TrimSpace(r.Stdout))
	}
	if r := inside(t, "pgrep", "-P", mainPID, "-x", "sleep"); r.Code != 0 {
		t.Errorf("the payload is not a child of the main process %s", mainPID)
	}
	mustCove(t, "stop", "initstop")
	// The inactive unit may be unloaded at once (systemd collects it), so
	// its exit status is not asked for; what the stop did is in the journal.
	if st := show(t, unit, "ActiveState"); st != "inactive" {
		t.Errorf("after cove stop: ActiveState=%s, want inactive", st)
	}
	if st := mustCove(t, "status", "initstop"); strings.Contains(st, "failed") {
		t.Errorf("cove status after the stop:\n%s", st)
	}
	log := inside(t, "journalctl", "--no-pager", "-u", unit).Stdout
	for _, bad := range []string{"timed out", "SIGKILL", "Failed with result"} {
		if strings.Contains(log, bad) {
			t.Errorf("the stop needed more than the forwarded SIGTERM (%q):\n%s", bad, log)
		}
	}
}

// TestInitExitStatusClean: the init exits 143 when SIGTERM ends the
// payload, and systemd counts that as clean (SuccessExitStatus=): the
// unit is not failed.
func TestInitExitStatusClean(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "initterm")
	mustCove(t, runArgs("-d", "--name", "initterm", "--init", "--", "/bin/sleep", "1000")...)
	unit := "cove-initterm.service"
	eventually(t, 10*time.Second, "initterm to run", func() bool { return show(t, unit, "ActiveState") == "active" })
	if r := inside(t, "systemctl", "kill", "-s", "TERM", unit); r.Code != 0 {
		t.Fatalf("systemctl kill: %s", r.Stderr)
	}
	eventually(t, 10*time.Second, "initterm to exit", func() bool { return show(t, unit, "MainPID") == "0" })
	for prop, want := range map[string]string{"Result": "success", "ExecMainCode": "1", "ExecMainStatus": "143"} {
		if got := show(t, unit, prop); got != want {
			t.Errorf("%s=%s, want %s", prop, got, want)
		}
	}
}

// TestInitReapsZombies: an orphan that exits is reparented to the init,
// which reaps it: nothing in the container is left <defunct>.
func TestInitReapsZombies(t *testing.T) {
	env.Need(t)
	applyInit(t, "initreap", shCommand("(sleep 0.2 &); echo forked; exec sleep 1000"), "")
	cg := show(t, "cove-initreap.service", "ControlGroup")
	eventually(t, 5*time.Second, "the orphan to exit", func() bool {
		return strings.Count(inside(t, "cat", "/sys/fs/cgroup/systemd"+cg+"/cgroup.procs").Stdout, "\n") == 2
	})
	time.Sleep(500 * time.Millisecond) // the orphan's 0.2 s are over
	r := inside(t, "sh", "-c", "for p in $(cat /sys/fs/cgroup/systemd"+cg+"/cgroup.procs); do cat /proc/$p/stat; echo; done")
	if strings.Contains(r.Stdout, ") Z ") {
		t.Errorf("a zombie is left in the container:\n%s", r.Stdout)
	}
	// cove exec enters through the main process, the init: same container.
	if out := mustCove(t, "exec", "initreap", "--", "/bin/cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "tini\x00--\x00/bin/sh") {
		t.Errorf("cove exec sees PID 1 as %q, want the init", out)
	}
}

// TestInitForwardsSignals: cove kill sends SIGUSR1 to the main process,
// the init; it forwards it to the payload, whose trap writes a file.
func TestInitForwardsSignals(t *testing.T) {
	env.Need(t)
	out := filepath.Join(workDir, "outcome-usr1")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(out, "got"))
	mount := "[[container.mount]]\nsource = " + `"` + out + `"` + "\ntarget = \"/out\"\n"
	applyInit(t, "initusr1", shCommand(`trap "echo USR1 > /out/got" USR1; echo ready; while :; do sleep 0.1; done`), mount)
	eventually(t, 5*time.Second, "the payload to trap USR1", func() bool {
		return strings.Contains(mustCove(t, "logs", "initusr1"), "ready")
	})
	mustCove(t, "kill", "-s", "USR1", "initusr1")
	eventually(t, 5*time.Second, "the payload to write /out/got", func() bool {
		b, _ := os.ReadFile(filepath.Join(out, "got"))
		return string(b) == "USR1\n"
	})
}

// TestInspectLimitsOfRun: Docker's inspect reports a transient run's
// limits in Docker's units (bytes, nano-CPUs, a pids count).
func TestInspectLimitsOfRun(t *testing.T) {
	needAPI(t)
	cleanupWorkload(t, "limited")
	mustCove(t, runArgs("-d", "--name", "limited", "--memory", "64M", "--cpus", "0.5", "--pids", "50", "--", "/bin/sleep", "1000")...)
	r := inside(t, "curl", "-s", "--unix-socket", apiSock, "http://cove/containers/limited/json")
	var got struct {
		HostConfig struct {
			Memory    int64
			NanoCpus  int64
			PidsLimit *int64
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatalf("inspect: %v\n%s", err, r.Stdout)
	}
	h := got.HostConfig
	if h.Memory != 64<<20 || h.NanoCpus != 5e8 || h.PidsLimit == nil || *h.PidsLimit != 50 {
		t.Errorf("HostConfig Memory %d, NanoCpus %d, PidsLimit %v; want %d, %d, 50", h.Memory, h.NanoCpus, h.PidsLimit, 64<<20, int64(5e8))
	}
}

// hog is a payload that outgrows a memory limit of 8M: busybox awk
// building a string of 100 MB.
const hog = `["/bin/awk", "BEGIN { s = sprintf(\"%100000000s\", \"x\"); print length(s) }"]`

// applyOutcome applies a declared container running command with extra
// spec text, without an init.
func applyOutcome(t *testing.T, name, command, extra string) {
	t.Helper()
	pruneAll(t)
	mustCove(t, "apply", containerSpec(t, filepath.Join(workDir, "outcome"), name, rootfs, command, extra))
}

// TestStopNeedingKillIsNoFailure: a payload that ignores the stop signal
// (PID 1 without a handler) is ended by SIGKILL after stop_timeout; the
// stop was asked for, so the unit ends inactive, not failed, and cove
// status says what the stop needed.
func TestStopNeedingKillIsNoFailure(t *testing.T) {
	env.Need(t)
	applyOutcome(t, "stopkill", sleeper, "[service]\nstop_timeout = \"1s\"\n")
	unit := "cove-stopkill.service"
	eventually(t, 10*time.Second, "stopkill to run", func() bool { return show(t, unit, "ActiveState") == "active" })
	mustCove(t, "stop", "stopkill")
	if st := show(t, unit, "ActiveState"); st != "inactive" {
		t.Errorf("after cove stop: ActiveState=%s, want inactive", st)
	}
	st := mustCove(t, "status", "stopkill")
	if !strings.Contains(st, "stopped with SIGKILL after 1s") || strings.Contains(st, "failed") {
		t.Errorf("cove status after a stop that needed SIGKILL, want \"stopped with SIGKILL after 1s\" and no failure:\n%s", st)
	}
	// The next run starts with no outcome: its launch stage removes the
	// record, so a run that ends cleanly (and skips the post stage) does
	// not show the last one's.
	mustCove(t, "start", "stopkill")
	if r := inside(t, "test", "-e", filepath.Join(outcome.Dir, "stopkill")); r.Code == 0 {
		t.Errorf("the outcome record of the last run is still there after a start")
	}
	mustCove(t, "kill", "-s", "TERM", "stopkill") // PID 1 ignores it: still running
	if st := mustCove(t, "status", "stopkill"); strings.Contains(st, "SIGKILL") {
		t.Errorf("cove status of a running workload shows its last run's outcome:\n%s", st)
	}
}

// TestKillNobodyAskedForFails: SIGKILL counts as clean only for a stop
// asked for; kill -9 of the payload fails the unit, and cove status says
// how it ended.
func TestKillNobodyAskedForFails(t *testing.T) {
	env.Need(t)
	applyOutcome(t, "killed", sleeper, "")
	unit := "cove-killed.service"
	eventually(t, 10*time.Second, "killed to run", func() bool { return show(t, unit, "ActiveState") == "active" })
	if r := inside(t, "kill", "-9", show(t, unit, "MainPID")); r.Code != 0 {
		t.Fatalf("kill -9: %s", r.Stderr)
	}
	eventually(t, 10*time.Second, "killed to fail", func() bool { return show(t, unit, "ActiveState") == "failed" })
	if st := mustCove(t, "status", "killed"); !strings.Contains(st, "killed by SIGKILL") {
		t.Errorf("cove status after kill -9, want \"killed by SIGKILL\":\n%s", st)
	}
}

// TestOOMReported: a payload killed at its memory limit is reported as
// such by cove ps, cove status and Docker's inspect (State.OOMKilled),
// and restart = "on-failure" restarts it.
func TestOOMReported(t *testing.T) {
	needAPI(t)
	applyOutcome(t, "oomhog", hog, "[resources]\nmemory = \"8M\"\n[service]\nrestart = \"on-failure\"\nrestart_delay = \"1s\"\n")
	const want = "killed: out of memory (limit 8M)"
	eventually(t, 20*time.Second, "cove ps to report the OOM kill", func() bool {
		return strings.Contains(psLine(t, "oomhog"), want)
	})
	eventually(t, 20*time.Second, "a restart", func() bool { return show(t, "cove-oomhog.service", "NRestarts") != "0" })
	eventually(t, 20*time.Second, "cove status to report the OOM kill", func() bool {
		return strings.Contains(mustCove(t, "status", "oomhog"), want)
	})
	eventually(t, 20*time.Second, "inspect's State.OOMKilled", func() bool {
		r := inside(t, "curl", "-s", "--unix-socket", apiSock, "http://cove/containers/oomhog/json")
		var got struct{ State struct{ OOMKilled bool } }
		return json.Unmarshal([]byte(r.Stdout), &got) == nil && got.State.OOMKilled
	})
}

// psLine is cove ps's line of workload name, "" if none.
func psLine(t *testing.T, name string) string {
	t.Helper()
	for _, l := range strings.Split(mustCove(t, "ps"), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// TestRunReportsOOM: cove run in the foreground exits 137 when the memory
// limit kills its payload, and says so.
func TestRunReportsOOM(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "runoom")
	r := cove(t, runArgs("--name", "runoom", "--memory", "8M", "--", "/bin/awk", `BEGIN { s = sprintf("%100000000s", "x"); print length(s) }`)...)
	if r.Code != 137 || !strings.Contains(r.Stderr, "runoom: killed: out of memory (limit 8M)") {
		t.Errorf("cove run of a payload over its memory limit: exit %d, stderr %q; want 137 and \"killed: out of memory (limit 8M)\"", r.Code, r.Stderr)
	}
}

// TestRunStopNeedingKill: cove stop of a cove run -d container without
// --rm (its unit stays loaded after its payload exits, and counts a death
// by SIGKILL as unclean) whose payload ignores SIGTERM ends it with
// SIGKILL after stop_timeout, and the unit does not end failed: it goes
// as after a clean stop; cove status and cove ps still show it (stopped,
// how it ended) and cove rm removes what is left of it (the record of
// how it ended). A SIGKILL nobody asked for still fails such a
// unit.
func TestRunStopNeedingKill(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "runkill")
	cleanupWorkload(t, "runkill9")
	mustCove(t, runArgs("-d", "--name", "runkill", "--", "/bin/sleep", "1000")...)
	unit := "cove-runkill.service"
	start := time.Now()
	mustCove(t, "stop", "runkill")
	if st := show(t, unit, "ActiveState"); st != "inactive" || time.Since(start) < time.Second {
		t.Errorf("after cove stop that needed SIGKILL (%s): ActiveState=%s, want inactive (collected as after a clean stop)", time.Since(start), st)
	}
	if st := mustCove(t, "status", "runkill"); !strings.Contains(st, "inactive") || !strings.Contains(st, "cove rm runkill removes what it kept") || !strings.Contains(st, "SIGKILL") {
		t.Errorf("cove status of the stopped run (its unit collected) lacks its state, what to do, or how it ended:\n%s", st)
	}
	if ps := mustCove(t, "ps"); !regexp.MustCompile(`(?m)^runkill\s.*inactive`).MatchString(ps) {
		t.Errorf("cove ps does not list the stopped run (its unit collected) as inactive:\n%s", ps)
	}
	mustCove(t, "rm", "runkill") // its outcome record is what is left of it
	if ps := mustCove(t, "ps"); regexp.MustCompile(`(?m)^runkill\s`).MatchString(ps) {
		t.Errorf("cove ps lists runkill after cove rm:\n%s", ps)
	}
	if r := cove(t, "rm", "runkill"); r.Code != 1 || !strings.Contains(r.Stderr, "no such workload") {
		t.Errorf("a second cove rm: exit %d: %s", r.Code, r.Stderr)
	}
	// The same stop through systemctl: the unit does not fail either.
	cleanupWorkload(t, "runkillctl")
	mustCove(t, runArgs("-d", "--name", "runkillctl", "--", "/bin/sleep", "1000")...)
	if r := inside(t, "systemctl", "stop", "cove-runkillctl.service"); r.Code != 0 {
		t.Errorf("systemctl stop: exit %d: %s", r.Code, r.Stderr)
	}
	if st := show(t, "cove-runkillctl.service", "ActiveState"); st != "inactive" {
		t.Errorf("after systemctl stop that needed SIGKILL: ActiveState=%s, want inactive (collected as after a clean stop)", st)
	}
	if st := mustCove(t, "status", "runkillctl"); !strings.Contains(st, "SIGKILL") {
		t.Errorf("cove status after systemctl stop does not say the stop needed SIGKILL:\n%s", st)
	}
	mustCove(t, runArgs("-d", "--name", "runkill9", "--", "/bin/sleep", "1000")...)
	if r := inside(t, "kill", "-9", show(t, "cove-runkill9.service", "MainPID")); r.Code != 0 {
		t.Fatalf("kill -9: %s", r.Stderr)
	}
	eventually(t, 10*time.Second, "runkill9 to fail", func() bool { return show(t, "cove-runkill9.service", "ActiveState") == "failed" })
}
