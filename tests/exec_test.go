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
	need(t)
	cleanupWorkload(t, "exe")
	mustCove(t, runArgs("-d", "--name", "exe", "--hostname", "inside", "--user", "1000:1000", "--", "/bin/sleep", "1000")...)
	pid := show(t, "cove-exe.service", "MainPID")
	payload := inside(t, "cat", "/proc/"+pid+"/status").stdout

	r := cove(t, "exec", "exe", "--", "/bin/sh", "-c", "hostname; id -u; id -g; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/status; cat /proc/self/cgroup")
	if r.code != 0 {
		t.Fatalf("cove exec: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 4 || lines[0] != "inside" || lines[1] != "1000" || lines[2] != "1000" || lines[3] != "/bin/sleep 1000 " {
		t.Errorf("cove exec does not see the container as its payload does:\n%s", r.stdout)
	}
	for _, f := range []string{"CapBnd", "CapEff", "NoNewPrivs", "Seccomp"} {
		if got, want := statusField(r.stdout, f), statusField(payload, f); got != want || want == "" {
			t.Errorf("%s: %q in the exec'd command, %q in the payload", f, got, want)
		}
	}
	if !strings.Contains(r.stdout, "/cove.slice/cove-exe.service") {
		t.Errorf("the exec'd command is not in the workload's cgroup:\n%s", r.stdout)
	}
	if r := insideStdin(t, "hello through stdin\n", coveBin, "exec", "-u", "0", "-w", "/tmp", "exe", "--", "/bin/sh", "-c", "read l; echo $l; id -u; pwd; exit 7"); r.code != 7 || r.stdout != "hello through stdin\n0\n/tmp\n" {
		t.Errorf("cove exec -u 0 -w /tmp with stdin: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := cove(t, "exec", "exe", "--", "nosuchcmd"); r.code != 127 || !strings.Contains(r.stderr, `command "nosuchcmd" not found`) {
		t.Errorf("cove exec of a missing command: exit %d %s", r.code, r.stderr)
	}
	if now := show(t, "cove-exe.service", "MainPID"); now != pid {
		t.Errorf("MainPID %s → %s after cove exec", pid, now)
	}
	for _, args := range [][]string{{"exec", "exe"}, {"exec", "--", "true"}, {"exec", "-u", "x", "exe", "--", "true"}} {
		if r := cove(t, args...); r.code != 2 {
			t.Errorf("cove %q: exit %d, want 2: %s", args, r.code, r.stderr)
		}
	}
	mustCove(t, "stop", "exe")
	if r := cove(t, "exec", "exe", "--", "true"); r.code != 1 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("cove exec in a stopped workload: exit %d %s", r.code, r.stderr)
	}
}

// TestHealthProbeRestricted: a health probe runs with the container's
// restrictions, not with the host's full privileges.
func TestHealthProbeRestricted(t *testing.T) {
	need(t)
	cleanupWorkload(t, "hprobe")
	spec := declaredText(t, workDir+"/health-restricted", "hprobe", `version = 1
kind = "container"
[container]
rootfs = "`+rootfs+`"
command = ["/bin/sleep", "1000"]
[health]
command = ["/bin/sh", "-c", "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status && grep -q '^Seccomp:[[:space:]]*2' /proc/self/status && ! grep -q '^CapBnd:[[:space:]]*000001ffffffffff' /proc/self/status"]
interval = "1s"
retries = 1
`)
	mustCove(t, "run", "-d", spec)
	eventually(t, 20*time.Second, "the restricted probe to pass", func() bool {
		return strings.Contains(mustCove(t, "status", "hprobe"), "healthy")
	})
	if st := mustCove(t, "status", "hprobe"); strings.Contains(st, "unhealthy") {
		t.Errorf("the probe found host privileges:\n%s", st)
	}
}
