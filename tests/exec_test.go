package tests

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// statusField reads one field of /proc/PID/status ("CapBnd", "NoNewPrivs").
func statusField(status, field string) string {
	m := regexp.MustCompile(`(?m)^` + field + `:\s*(\S+)`).FindStringSubmatch(status)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestExec: cove exec runs a command inside a running container as its
// payload runs: same namespaces, root, hostname and user, the same
// capability bounding set, no_new_privs and seccomp, in the workload's
// cgroup; stdin and the exit status pass through; errors are clear.
func TestExec(t *testing.T) {
	env.Need(t)
	checkExec(t, "exe")
	mustCove(t, "stop", "exe") // a stopped run: systemd collects its unit
	if r := cove(t, "exec", "exe", "--", "true"); r.Code != 1 || !strings.Contains(r.Stderr, "no such workload exe") {
		t.Errorf("cove exec in a stopped run: exit %d %s", r.Code, r.Stderr)
	}
	cleanupWorkload(t, "exedone")
	mustCove(t, runArgs("-d", "--name", "exedone", "--", "/bin/true")...)
	eventually(t, 10e9, "exedone's payload to exit", func() bool { return show(t, "cove-exedone.service", "SubState") == "exited" })
	if r := cove(t, "exec", "exedone", "--", "true"); r.Code != 1 || !strings.Contains(r.Stderr, "not running") {
		t.Errorf("cove exec in a workload whose payload exited: exit %d %s", r.Code, r.Stderr)
	}
}

// checkExec runs workload name (sleeping as 1000:1000, with the cove run
// flags more) and checks TestExec's view of cove exec in it.
func checkExec(t *testing.T, name string, more ...string) {
	cleanupWorkload(t, name)
	mustCove(t, runArgs(append(more, "-d", "--name", name, "--hostname", "inside", "--user", "1000:1000", "--", "/bin/sleep", "1000")...)...)
	pid := show(t, "cove-"+name+".service", "MainPID")
	payload := inside(t, "cat", "/proc/"+pid+"/status").Stdout

	r := cove(t, "exec", name, "--", "/bin/sh", "-c", "hostname; id -u; id -g; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/status; cat /proc/self/cgroup")
	if r.Code != 0 {
		t.Fatalf("cove exec: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	lines := strings.Split(r.Stdout, "\n")
	if len(lines) < 4 || lines[0] != "inside" || lines[1] != "1000" || lines[2] != "1000" || lines[3] != "/bin/sleep 1000 " {
		t.Errorf("cove exec does not see the container as its payload does:\n%s", r.Stdout)
	}
	for _, f := range []string{"CapBnd", "CapEff", "NoNewPrivs", "Seccomp"} {
		if got, want := statusField(r.Stdout, f), statusField(payload, f); got != want || want == "" {
			t.Errorf("%s: %q in the exec'd command, %q in the payload", f, got, want)
		}
	}
	// The device policy's hierarchy: v1 devices, else v2.
	if m := regexp.MustCompile(`(?m)^\d+:devices:(.*)$`).FindStringSubmatch(r.Stdout); m != nil && !strings.HasSuffix(m[1], "/cove-"+name+".service") ||
		m == nil && !regexp.MustCompile(`(?m)^0::.*/cove-`+name+`\.service$`).MatchString(r.Stdout) {
		t.Errorf("the exec'd command is not in the workload's cgroup:\n%s", r.Stdout)
	}
	// As root: the payload's bounding set, all of it effective, no more.
	r = cove(t, "exec", "-u", "0", name, "--", "cat", "/proc/self/status")
	if got, bnd := statusField(r.Stdout, "CapEff"), statusField(payload, "CapBnd"); got != bnd || statusField(r.Stdout, "CapBnd") != bnd || statusField(r.Stdout, "NoNewPrivs") != "1" {
		t.Errorf("cove exec -u 0: CapEff %s, CapBnd %s, NoNewPrivs %s; the payload's bounding set is %s",
			got, statusField(r.Stdout, "CapBnd"), statusField(r.Stdout, "NoNewPrivs"), bnd)
	}
	// The same mount namespace, only stdio, a fresh environment, a session
	// of its own (no controlling terminal), and no cove process visible.
	r = cove(t, "exec", name, "--", "/bin/sh", "-c", `[ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ] && echo same-mnt; ls /proc/self/fd | tr '\n' ' '; echo; env | cut -d= -f1 | sort | tr '\n' ' '; echo; [ "$(cut -d' ' -f6 /proc/$$/stat)" = $$ ] && echo own-session; cat /proc/[0-9]*/cmdline | tr '\0' ' ' | grep -c 'enter[-]init'`)
	if want := "same-mnt\n0 1 2 3 \nHOME HOSTNAME PATH PWD SHLVL container \nown-session\n0\n"; r.Stdout != want {
		t.Errorf("cove exec's view:\n%q\nwant\n%q\n%s", r.Stdout, want, r.Stderr)
	}
	if r := insideStdin(t, "hello through stdin\n", coveBin, "exec", "-u", "0", "-w", "/tmp", "-e", "A=b c", name, "--", "/bin/sh", "-c", "read l; echo $l; id -u; pwd; echo $A; exit 7"); r.Code != 7 || r.Stdout != "hello through stdin\n0\n/tmp\nb c\n" {
		t.Errorf("cove exec -u 0 -w /tmp -e 'A=b c' with stdin: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	// A command that is not there is 127, one that cannot be executed 126,
	// as docker, podman and a shell say.
	for _, c := range []struct {
		command string
		code    int
		message string
	}{
		{"nosuchcmd", 127, `command "nosuchcmd" not found in the container's PATH`},
		{"/bin/nope", 127, `command "/bin/nope" not found in the container`},
		{"/etc/passwd", 126, "command /etc/passwd is not an executable file"},
		{"/bin", 126, "command /bin is not an executable file"},
	} {
		if r := cove(t, "exec", name, "--", c.command); r.Code != c.code || !strings.Contains(r.Stderr, c.message) {
			t.Errorf("cove exec of %s: exit %d %q, want %d and %q", c.command, r.Code, r.Stderr, c.code, c.message)
		}
	}
	if now := show(t, "cove-"+name+".service", "MainPID"); now != pid {
		t.Errorf("MainPID %s → %s after cove exec", pid, now)
	}
	for _, args := range [][]string{{"exec", name}, {"exec", "--", "true"}, {"exec", "-u", "x", name, "--", "true"}} {
		if r := cove(t, args...); r.Code != 2 {
			t.Errorf("cove %q: exit %d, want 2: %s", args, r.Code, r.Stderr)
		}
	}
}

// runWithHealth runs workload name (sleeping) with the [health] table
// health, removing it when the test ends.
func runWithHealth(t *testing.T, name, health string) {
	t.Helper()
	env.Need(t)
	cleanupWorkload(t, name)
	spec := containerSpec(t, workDir+"/health-"+name, name, rootfs, `["/bin/sleep", "1000"]`, "[health]\n"+health)
	mustCove(t, "run", "-d", spec)
}

// TestHealthProbeRestricted: a health probe runs with the container's
// restrictions, not with the host's full privileges.
func TestHealthProbeRestricted(t *testing.T) {
	runWithHealth(t, "hprobe", `command = ["/bin/sh", "-c", "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status && grep -q '^Seccomp:[[:space:]]*2' /proc/self/status && [ \"$(grep ^CapBnd /proc/self/status)\" = \"$(grep ^CapBnd /proc/1/status)\" ]"]
interval = "1s"
retries = 1
`)
	eventually(t, 20*time.Second, "the restricted probe to pass", func() bool {
		return strings.Contains(mustCove(t, "status", "hprobe"), "healthy")
	})
	if st := mustCove(t, "status", "hprobe"); strings.Contains(st, "unhealthy") {
		t.Errorf("the probe found host privileges:\n%s", st)
	}
}

// TestHealthProbeTimeout: a probe that hangs is ended at its timeout and
// counts as a failure; the next probes still run.
func TestHealthProbeTimeout(t *testing.T) {
	runWithHealth(t, "hhang", `command = ["/bin/sleep", "100"]
interval = "1s"
timeout = "1s"
retries = 2
on_failure = "none"
`)
	eventually(t, 20*time.Second, "the hanging probe to make the workload unhealthy", func() bool {
		return strings.Contains(mustCove(t, "status", "hhang"), "unhealthy")
	})
	// Timed-out probes were killed: at most the current one runs.
	if n := strings.TrimSpace(inside(t, "pgrep", "-fc", "^/bin/sleep 100$").Stdout); n != "0" && n != "1" {
		t.Errorf("%s timed-out probes are still running", n)
	}
}
