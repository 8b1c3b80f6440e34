package tests

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runArgs are the flags every test container gets; a short stop timeout
// keeps cleanup of payloads that ignore SIGTERM quick.
func runArgs(extra ...string) []string {
	return append([]string{"run", "--rootfs", rootfs, "--stop-timeout", "1s"}, extra...)
}

// TestPayloadIsMainPID: the payload itself is the unit's main process, it
// is PID 1 in its own namespace, and systemctl and cove ps agree.
func TestPayloadIsMainPID(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "mainpid")
	mustCove(t, runArgs("-d", "--name", "mainpid", "--", "/bin/sleep", "1000")...)
	if st := show(t, "cove-mainpid.service", "ActiveState"); st != "active" {
		t.Fatalf("ActiveState = %q, want active", st)
	}
	pid := show(t, "cove-mainpid.service", "MainPID")
	if comm := strings.TrimSpace(inside(t, "cat", "/proc/"+pid+"/comm").Stdout); comm != "sleep" {
		t.Errorf("MainPID %s is %q, want the payload (sleep)", pid, comm)
	}
	// The process tree of the unit is the payload alone: the launcher
	// exits right after the handover (and machine registration).
	eventually(t, 5*time.Second, "the launcher to exit", func() bool {
		procs := inside(t, "systemd-cgls", "--no-pager", "-u", "cove-mainpid.service").Stdout
		return !strings.Contains(procs, "launch") && strings.Count(procs, "sleep") == 1
	})
	status := strings.TrimSpace(inside(t, "grep", "NSpid:", "/proc/"+pid+"/status").Stdout)
	if !strings.HasSuffix(status, "\t1") {
		t.Errorf("payload NSpid = %q, want it to be PID 1 in its namespace", status)
	}
	var ws []struct {
		Name    string `json:"name"`
		Kind    string `json:"kind"`
		MainPID int    `json:"main_pid"`
		Active  string `json:"active_state"`
	}
	if err := json.Unmarshal([]byte(mustCove(t, "ps", "--json")), &ws); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range ws {
		if w.Name == "mainpid" {
			found = true
			if strconv.Itoa(w.MainPID) != pid || w.Kind != "container" || w.Active != "active" {
				t.Errorf("cove ps says %+v, systemctl says MainPID=%s active", w, pid)
			}
		}
	}
	if !found {
		t.Errorf("cove ps --json does not list mainpid: %+v", ws)
	}
	table := mustCove(t, "ps")
	if !strings.Contains(table, "mainpid") || !strings.Contains(table, pid) {
		t.Errorf("cove ps table lacks mainpid / %s:\n%s", pid, table)
	}
}

// TestContainerView: inside, the payload is PID 1, sees none of the
// host's processes, has its own hostname, user, environment and workdir,
// and a minimal /dev.
func TestContainerView(t *testing.T) {
	env.Need(t)
	script := `echo pid=$$; echo host=$(hostname); echo pid1=$(cat /proc/1/comm); echo hostprocs=$(ps -o comm | grep -cE 'systemd|dbus|journal'); ` +
		`echo uid=$(id -u):$(id -g); echo dir=$(pwd); echo greet=$GREETING; ls /dev | tr '\n' ' '; echo; ` +
		`grep -E '^(NoNewPrivs|Seccomp|CapBnd):' /proc/self/status`
	r := cove(t, runArgs("--rm", "--hostname", "box", "--user", "1000:1000", "--workdir", "/tmp",
		"--env", "GREETING=hi there", "--network", "none", "--", "/bin/sh", "-c", script)...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s %s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{"pid=1\n", "host=box\n", "pid1=sh\n", "hostprocs=0\n", "uid=1000:1000\n", "dir=/tmp\n", "greet=hi there\n", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("container output lacks %q:\n%s", want, r.Stdout)
		}
	}
	for _, dev := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "shm"} {
		if !strings.Contains(r.Stdout, " "+dev+" ") && !strings.Contains(r.Stdout, dev+" ") {
			t.Errorf("/dev lacks %s:\n%s", dev, r.Stdout)
		}
	}
}

// TestRestrictions: the default capability set, seccomp and a read-only
// /sys hold for a root payload; the seccomp filter refuses mount(2) even
// to a payload given CAP_SYS_ADMIN.
func TestRestrictions(t *testing.T) {
	env.Need(t)
	script := `mount -t tmpfs x /tmp && echo MOUNTED; touch /sys/x 2>/dev/null && echo SYSWRITE; ` +
		`echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo SYSCTL; grep CapBnd /proc/self/status`
	r := cove(t, runArgs("--rm", "--", "/bin/sh", "-c", script)...)
	for _, bad := range []string{"MOUNTED", "SYSWRITE", "SYSCTL"} {
		if strings.Contains(r.Stdout, bad) {
			t.Errorf("container could %s:\n%s", bad, r.Stdout)
		}
	}
	// Docker's default set: caps 0,1,3,4,5,6,7,8,10,13,18,27,29,31.
	if !strings.Contains(r.Stdout, "CapBnd:\t00000000a80425fb") {
		t.Errorf("bounding set is not cove's default:\n%s", r.Stdout)
	}
	for call, errno := range escapeProbe(t) {
		if errno != "EPERM" {
			t.Errorf("%s gave %s, want EPERM (the seccomp filter)", call, errno)
		}
	}
	// With CAP_SYS_ADMIN only the seccomp filter stands between the
	// payload and mount(2): it must refuse it, and without the filter the
	// payload mounts.
	r = cove(t, runArgs("--rm", "--cap-add", "sys_admin", "--", "/bin/sh", "-c", "mount -t tmpfs x /tmp && echo MOUNTED")...)
	if strings.Contains(r.Stdout, "MOUNTED") || !strings.Contains(r.Stderr, "permission denied") {
		t.Errorf("with sys_admin and the default seccomp filter the payload mounted or failed otherwise: %s %s", r.Stdout, r.Stderr)
	}
	r = cove(t, runArgs("--rm", "--cap-add", "sys_admin", "--seccomp", "unconfined", "--",
		"/bin/sh", "-c", "mount -t tmpfs x /tmp && echo MOUNTED")...)
	if !strings.Contains(r.Stdout, "MOUNTED") {
		t.Errorf("with sys_admin and no seccomp the payload should mount: %s %s", r.Stdout, r.Stderr)
	}
}

// TestExitCodes: the payload's exit status is cove run's and systemd's.
func TestExitCodes(t *testing.T) {
	env.Need(t)
	for _, code := range []int{0, 7} {
		r := cove(t, runArgs("--rm", "--", "/bin/sh", "-c", fmt.Sprintf("exit %d", code))...)
		if r.Code != code {
			t.Errorf("foreground exit %d: cove run exited %d (%s)", code, r.Code, r.Stderr)
		}
	}
	cleanupWorkload(t, "exit7")
	mustCove(t, runArgs("-d", "--name", "exit7", "--", "/bin/sh", "-c", "sleep 0.2; exit 7")...)
	eventually(t, 10*time.Second, "exit7 to fail", func() bool {
		return show(t, "cove-exit7.service", "ActiveState") == "failed"
	})
	if st := show(t, "cove-exit7.service", "ExecMainStatus"); st != "7" {
		t.Errorf("ExecMainStatus = %s, want 7", st)
	}
	if !strings.Contains(mustCove(t, "status", "exit7"), "failed (exit-code, 7)") {
		t.Errorf("cove status does not show the exit code")
	}
}

// TestRemovedRunStoppedBySystemd: a cove run --rm container (no init,
// no memory limit, no terminal) has no stop stage: its unit has no
// ExecStop=, and systemd sends the stop signal to the payload alone
// (KillMode=mixed) and SIGKILL after stop_timeout. cove stop of a PID 1
// without a handler ends it by SIGKILL after the timeout (cove run exits
// 137, as docker run --rm does, and says why); one with a handler ends as
// its handler says; the unit goes either way.
func TestRemovedRunStoppedBySystemd(t *testing.T) {
	env.Need(t)
	for _, c := range []struct {
		name    string
		command []string
		code    int
		says    string // on cove run's standard error
	}{
		{"rmkill", []string{"/bin/sleep", "1000"}, 137, "rmkill: stopped with SIGKILL after 1s"},
		{"rmtrap", []string{"/bin/sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"}, 3, ""},
	} {
		cleanupWorkload(t, c.name)
		unit := "cove-" + c.name + ".service"
		done := make(chan result, 1)
		go func() { done <- cove(t, runArgs(append([]string{"--rm", "--name", c.name, "--"}, c.command...)...)...) }()
		eventually(t, 10*time.Second, c.name+" to run", func() bool { return show(t, unit, "SubState") == "running" })
		for prop, want := range map[string]string{"ExecStop": "", "KillMode": "mixed", "TimeoutStopUSec": "1s"} {
			if got := show(t, unit, prop); got != want {
				t.Errorf("%s: %s=%q, want %q", c.name, prop, got, want)
			}
		}
		mustCove(t, "stop", c.name)
		select {
		case r := <-done:
			if r.Code != c.code || !strings.Contains(r.Stderr, c.says) {
				t.Errorf("%s: cove run exited %d after cove stop (%q), want %d and %q", c.name, r.Code, r.Stderr, c.code, c.says)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: cove run still runs 20 s after cove stop", c.name)
		}
		// CollectMode=inactive-or-failed: systemd unloads the unit on its
		// next garbage collection, which may come after cove run is back.
		eventually(t, 5*time.Second, c.name+"'s unit unloaded after the run", func() bool { return show(t, unit, "LoadState") == "not-found" })
	}
}

// TestRunInterrupted: an interrupt (SIGINT, Ctrl-C) of cove run in the
// foreground stops its workload, as docker run's does, and cove run ends;
// with --rm the unit goes.
func TestRunInterrupted(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "interrupted")
	done := make(chan result, 1)
	go func() {
		done <- cove(t, runArgs("--rm", "--name", "interrupted", "--", "/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")...)
	}()
	unit := "cove-interrupted.service"
	eventually(t, 10*time.Second, "interrupted to run", func() bool { return show(t, unit, "SubState") == "running" })
	if r := inside(t, "pkill", "-INT", "-f", "run .*--name interrupted"); r.Code != 0 {
		t.Fatalf("pkill -INT cove run: exit %d: %s", r.Code, r.Stderr)
	}
	select {
	case r := <-done:
		if strings.Contains(r.Stderr, "closed") {
			t.Errorf("cove run after SIGINT: exit %d: %s", r.Code, r.Stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("cove run still runs 20 s after SIGINT")
	}
	eventually(t, 10*time.Second, "the interrupted run's unit to go", func() bool { return show(t, unit, "LoadState") == "not-found" })
}

// TestRestartPolicy: on-failure restarts a crashing payload, no does not.
func TestRestartPolicy(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "crashy")
	cleanupWorkload(t, "once")
	mustCove(t, runArgs("-d", "--name", "crashy", "--restart", "on-failure", "--restart-delay", "100ms",
		"--", "/bin/sh", "-c", "sleep 0.3; exit 3")...)
	mustCove(t, runArgs("-d", "--name", "once", "--restart", "no", "--", "/bin/sh", "-c", "sleep 0.3; exit 3")...)
	eventually(t, 20*time.Second, "crashy to restart twice", func() bool {
		n, _ := strconv.Atoi(show(t, "cove-crashy.service", "NRestarts"))
		return n >= 2
	})
	eventually(t, 10*time.Second, "once to fail", func() bool {
		return show(t, "cove-once.service", "ActiveState") == "failed"
	})
	if n := show(t, "cove-once.service", "NRestarts"); n != "0" {
		t.Errorf("restart=no: NRestarts = %s", n)
	}
}

// TestResourceLimits: limits are systemd properties and in the cgroup.
func TestResourceLimits(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "limited")
	mustCove(t, runArgs("-d", "--name", "limited", "--memory", "64M", "--cpus", "0.5", "--pids", "50",
		"--", "/bin/sleep", "1000")...)
	unit := "cove-limited.service"
	for prop, want := range map[string]string{"MemoryMax": "67108864", "CPUQuotaPerSecUSec": "500ms", "TasksMax": "50"} {
		if got := show(t, unit, prop); got != want {
			t.Errorf("%s = %q, want %q", prop, got, want)
		}
	}
	cg := show(t, unit, "ControlGroup")
	for file, want := range map[string]string{
		"/sys/fs/cgroup/memory" + cg + "/memory.limit_in_bytes": "67108864",
		"/sys/fs/cgroup/cpu" + cg + "/cpu.cfs_quota_us":         "50000",
		"/sys/fs/cgroup/pids" + cg + "/pids.max":                "50",
	} {
		got := strings.TrimSpace(inside(t, "cat", file).Stdout)
		if got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

// TestStop: cove stop delivers SIGTERM and waits for the payload; one
// that ignores SIGTERM (or a PID 1 without a handler, which the kernel
// shields from it) is killed after stop_timeout, within stop_timeout + 1 s.
func TestStop(t *testing.T) {
	env.Need(t)
	for _, c := range []struct {
		name     string
		cmd      []string
		min, max time.Duration
	}{
		{"graceful", []string{"/bin/sh", "-c", `trap "sleep 1; exit 0" TERM; while :; do sleep 0.1; done`}, time.Second, 2 * time.Second},
		{"trapper", []string{"/bin/sh", "-c", `trap "" TERM; while :; do sleep 1; done`}, 1500 * time.Millisecond, 3 * time.Second},
		{"nohandler", []string{"/bin/sleep", "1000"}, 1500 * time.Millisecond, 3 * time.Second},
	} {
		cleanupWorkload(t, c.name)
		mustCove(t, append(runArgs("-d", "--name", c.name, "--stop-timeout", "2s", "--"), c.cmd...)...)
		time.Sleep(200 * time.Millisecond) // let the shell install its trap
		start := time.Now()
		mustCove(t, "stop", c.name)
		if d := time.Since(start); d < c.min || d > c.max {
			t.Errorf("%s: cove stop took %s, want between %s and %s", c.name, d, c.min, c.max)
		}
		if st := show(t, "cove-"+c.name+".service", "ActiveState"); st == "active" || st == "deactivating" {
			t.Errorf("%s still %s after stop", c.name, st)
		}
	}
}

// TestRemoveForce: cove rm -f kills a running container (SIGKILL: its
// TERM trap never runs) and removes it, as docker rm -f does; cove rm
// without it stops it with the stop signal first (the trap runs).
func TestRemoveForce(t *testing.T) {
	env.Need(t)
	const name, marker = "rmforce", "/tmp/rmforce-termed"
	for _, force := range []bool{true, false} {
		inside(t, "rm", "-f", rootfs+marker)
		cleanupWorkload(t, name)
		mustCove(t, runArgs("-d", "--name", name, "--stop-timeout", "30s", "--",
			"/bin/sh", "-c", `trap "touch `+marker+`; exit 0" TERM; while :; do sleep 0.1; done`)...)
		time.Sleep(200 * time.Millisecond) // let the shell install its trap
		if force {
			mustCove(t, "rm", "-f", name)
		} else {
			mustCove(t, "rm", name)
		}
		if termed := inside(t, "test", "-e", rootfs+marker).Code == 0; termed == force {
			t.Errorf("cove rm (force %v): the TERM trap ran: %v, want %v", force, termed, !force)
		}
		if st := show(t, "cove-"+name+".service", "LoadState"); st != "not-found" {
			t.Errorf("cove rm (force %v): the unit is %s, want not-found (removed)", force, st)
		}
	}
	inside(t, "rm", "-f", rootfs+marker)
}

// TestMachineRegistration: a running container is a machine of class
// container in machinectl, led by its payload, and is gone once stopped.
func TestMachineRegistration(t *testing.T) {
	env.Need(t)
	if r := inside(t, "sh", "-c", "command -v machinectl"); r.Code != 0 {
		t.Fatal("machinectl missing: apt-get install systemd-container (scripts/deps does)")
	}
	cleanupWorkload(t, "mach")
	mustCove(t, runArgs("-d", "--name", "mach", "--", "/bin/sleep", "1000")...)
	eventually(t, 5*time.Second, "mach in machinectl list", func() bool {
		return strings.Contains(inside(t, "machinectl", "list", "--no-legend").Stdout, "mach")
	})
	list := inside(t, "machinectl", "list", "--no-legend").Stdout
	if !strings.Contains(list, "container") {
		t.Errorf("machinectl list: %s", list)
	}
	leader := strings.TrimSpace(inside(t, "machinectl", "show", "mach", "-p", "Leader", "--value").Stdout)
	if leader != show(t, "cove-mach.service", "MainPID") {
		t.Errorf("machine leader %s is not the payload %s", leader, show(t, "cove-mach.service", "MainPID"))
	}
	if unit := strings.TrimSpace(inside(t, "machinectl", "show", "mach", "-p", "Unit", "--value").Stdout); unit != "cove-mach.service" {
		t.Errorf("machine unit = %q", unit)
	}
	mustCove(t, "stop", "mach")
	eventually(t, 5*time.Second, "mach to leave machinectl list", func() bool {
		return !strings.Contains(inside(t, "machinectl", "list", "--no-legend").Stdout, "mach")
	})
}
