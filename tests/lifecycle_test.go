package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/spec"
)

// TestLifecycle: run -d, logs, status, stop, rm, and that the transient
// unit and its cgroup are gone afterwards.
func TestLifecycle(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "life")
	mustCove(t, runArgs("-d", "--name", "life", "--", "/bin/sh", "-c", "echo hello from life; echo oops >&2; exec sleep 1000")...)
	eventually(t, 5*time.Second, "the payload's output in the journal", func() bool {
		out := mustCove(t, "logs", "life")
		return strings.Contains(out, "hello from life") && strings.Contains(out, "oops")
	})
	st := mustCove(t, "status", "life")
	for _, want := range []string{"Name:", "life", "cove-life.service", "container", "running"} {
		if !strings.Contains(st, want) {
			t.Errorf("cove status lacks %q:\n%s", want, st)
		}
	}
	if r := cove(t, runArgs("-d", "--name", "life", "--", "/bin/true")...); r.Code == 0 {
		t.Errorf("a second workload with the same name started")
	}
	cg := show(t, "cove-life.service", "ControlGroup")
	mustCove(t, "stop", "life")
	mustCove(t, "rm", "life")
	if out := listUnits(t); strings.Contains(out, "cove-life.service") {
		t.Errorf("cove rm left the unit loaded:\n%s", out)
	}
	if r := inside(t, "test", "-e", "/sys/fs/cgroup/memory"+cg); r.Code == 0 {
		t.Errorf("cgroup %s still exists after rm", cg)
	}
	if r := cove(t, "status", "life"); r.Code != 1 || !strings.Contains(r.Stderr, "no such workload") {
		t.Errorf("status of a removed workload: exit %d, %s", r.Code, r.Stderr)
	}
}

// TestExitedStaysUntilRm: without --rm a payload that exited cleanly stays
// listed as exited until cove rm, like a stopped container.
func TestExitedStaysUntilRm(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "done")
	mustCove(t, runArgs("-d", "--name", "done", "--", "/bin/true")...)
	eventually(t, 5*time.Second, "done to exit", func() bool {
		return strings.Contains(mustCove(t, "ps"), "exited (0)")
	})
	mustCove(t, "rm", "done")
	if strings.Contains(mustCove(t, "ps"), "done") {
		t.Errorf("cove rm did not remove the exited workload")
	}
}

// TestNameLock: a container run from a root directory waits while its
// name's lock is held, as an image's does (TestImages/name_lock, where
// cove rm's use of the lock is checked too).
func TestNameLock(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "fslock")
	nameLock(t, "fslock", runArgs("--rm", "--name", "fslock", "--", "/bin/echo", "ran")...)
}

// TestRerunWhileStopping: a new run of a --rm run's name while that run
// is still stopping (its payload, PID 1 of its namespace, ignores SIGTERM:
// SIGKILL comes after its 6 s stop timeout, longer than the 5 s an ended
// unit is awaited) waits until systemd has collected the old unit and
// then runs, instead of failing because the name is taken.
func TestRerunWhileStopping(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "stopping")
	rerunWhileStopping(t, "stopping", runArgs("--rm", "--name", "stopping", "--stop-timeout", "6s", "--"))
}

// rerunWhileStopping starts a --rm run of workload name detached (cove
// run -d ARGS[1:]…, ARGS being "run" and the run's flags up to where the
// command begins) with a payload that ignores SIGTERM, stops it in the
// background and, while it is stopping, runs "cove ARGS… /bin/echo again"
// in the foreground, which must wait and print "again".
func rerunWhileStopping(t *testing.T, name string, args []string) {
	t.Helper()
	detached := append([]string{"run", "-d"}, args[1:]...)
	mustCove(t, append(detached, "/bin/sh", "-c", "while :; do sleep 1; done")...)
	stop := startInside(t, coveBin, "stop", name)
	eventually(t, 5*time.Second, name+" to be stopping", func() bool {
		return show(t, spec.UnitName(name), "ActiveState") == "deactivating"
	})
	if r := cove(t, append(args, "/bin/echo", "again")...); r.Code != 0 || r.Stdout != "again\n" {
		t.Errorf("a run of %s while the earlier run stops: exit %d, %q\n%s", name, r.Code, r.Stdout, r.Stderr)
	}
	if code := stop.exit(t); code != 0 {
		t.Errorf("cove stop of the earlier run: exit %d", code)
	}
}

// TestForegroundWithoutRm: cove run in the foreground without --rm returns
// with the payload's status once it exits, although its unit stays loaded
// with its status until cove rm.
func TestForegroundWithoutRm(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "fgdone")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, code, err := sb.Run(ctx, coveBin, runArgs("--name", "fgdone", "--", "/bin/sh", "-c", "exit 7")...)
	if err != nil || code != 7 {
		t.Fatalf("cove run without --rm: exit %d, %v; want 7 without hanging", code, err)
	}
	if ps := mustCove(t, "ps"); !strings.Contains(ps, "fgdone") || !strings.Contains(ps, "7)") {
		t.Errorf("the ended workload is not listed with its status until cove rm:\n%s", ps)
	}
}

// TestStartFailureShowsLogs: a payload that cannot start fails the start
// job, and cove run shows why, from the unit's journal.
func TestStartFailureShowsLogs(t *testing.T) {
	env.Need(t)
	r := cove(t, runArgs("-d", "--rm", "--name", "broken", "--", "/bin/no-such-command")...)
	if r.Code != 1 {
		t.Errorf("exit %d, want 1", r.Code)
	}
	if !strings.Contains(r.Stderr, "start cove-broken.service") || !strings.Contains(r.Stderr, "no-such-command") {
		t.Errorf("error does not name the unit and the cause:\n%s", r.Stderr)
	}
	if strings.Contains(listUnits(t), "cove-broken") {
		t.Errorf("a failed --rm run left its unit")
	}
}

// TestUsageErrors: bad flags and commands exit 2 and name the problem.
func TestUsageErrors(t *testing.T) {
	env.Need(t)
	for _, args := range [][]string{
		{"frobnicate"},
		{"run", "--memory", "lots", "--rootfs", rootfs, "--", "/bin/true"},
		{"run", "--name", "../x", "--rootfs", rootfs, "--", "/bin/true"},
		{"run", "--rootfs", "relative", "--", "/bin/true"},
		{"run", "--no-such-flag"},
		{"stop"},
		{"status", "a", "b"},
	} {
		r := cove(t, args...)
		if r.Code != 2 || !strings.HasPrefix(r.Stderr, "cove: ") {
			t.Errorf("cove %q: exit %d, stderr %q; want 2 and a message", args, r.Code, r.Stderr)
		}
	}
}

// TestKill: cove kill sends the signal it is given to the payload only
// (a handled HUP leaves it running), directly and through the API, and by
// default SIGKILL, after which systemd applies the restart policy.
func TestKill(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "killme")
	mustCove(t, runArgs("-d", "--name", "killme", "--", "/bin/sh", "-c", `trap "echo got HUP" HUP; echo ready; while :; do sleep 1; done`)...)
	eventually(t, 5*time.Second, "the payload to trap HUP", func() bool {
		return strings.Contains(mustCove(t, "logs", "killme"), "ready")
	})
	pid := show(t, "cove-killme.service", "MainPID")
	mustCove(t, "kill", "-s", "HUP", "killme")
	eventually(t, 5*time.Second, "the payload to log its HUP", func() bool {
		return strings.Contains(mustCove(t, "logs", "killme"), "got HUP")
	})
	if now := show(t, "cove-killme.service", "MainPID"); now != pid {
		t.Errorf("MainPID %s → %s after a handled HUP", pid, now)
	}
	if r := cove(t, "kill", "-s", "NOPE", "killme"); r.Code != 2 || !strings.Contains(r.Stderr, "Invalid signal: NOPE") {
		t.Errorf("cove kill -s NOPE: exit %d: %s", r.Code, r.Stderr)
	}
	needAPI(t)
	if r := viaAPI(t, "kill", "-s", "1", "killme"); r.Code != 0 {
		t.Errorf("cove --host kill -s 1: exit %d: %s", r.Code, r.Stderr)
	}
	eventually(t, 5*time.Second, "the payload to log a second HUP", func() bool {
		return strings.Count(mustCove(t, "logs", "killme"), "got HUP") == 2
	})
	mustCove(t, "kill", "killme")
	eventually(t, 5*time.Second, "the killed workload to end", func() bool {
		return show(t, "cove-killme.service", "MainPID") == "0"
	})
	if st := show(t, "cove-killme.service", "ExecMainStatus"); st != "9" {
		t.Errorf("ExecMainStatus after cove kill: %s, want 9 (SIGKILL)", st)
	}
}
