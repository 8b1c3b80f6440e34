package tests

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNotifyReadinessOrdering: with ready = "notify" the payload's own
// READY=1 makes the unit active, and a workload that is After= and
// Requires= it starts only then.
func TestNotifyReadinessOrdering(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "notify")
	db := declaredCmd(t, dir, "ndb", `["/bin/sh", "-c", "sleep 1; notify-send STATUS=warm READY=1; exec sleep 1000"]`, "ready = \"notify\"\n")
	web := declaredCmd(t, dir, "nweb", `["/bin/sleep", "1000"]`, "[depends]\nafter = [\"ndb\"]\nrequires = [\"ndb\"]\n")
	mustCove(t, "apply", db, web)
	mustCove(t, "stop", "nweb", "ndb")
	start := time.Now()
	mustCove(t, "start", "nweb")
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("nweb started after %s: it did not wait for ndb's READY=1", d)
	}
	dbReady := usec(t, show(t, "cove-ndb.service", "ActiveEnterTimestampMonotonic"))
	webStart := usec(t, show(t, "cove-nweb.service", "ExecMainStartTimestampMonotonic"))
	if webStart < dbReady {
		t.Errorf("nweb's payload started at %d, before ndb was ready at %d", webStart, dbReady)
	}
	if st := show(t, "cove-ndb.service", "StatusText"); st != "warm" {
		t.Errorf("STATUS= not forwarded: %q", st)
	}
	if r := inside(t, "sh", "-c", "ps -eo args | grep -c '[c]ove launch'"); strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("a launcher stayed resident after readiness")
	}
}

// usec parses a monotonic timestamp.
func usec(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return n
}

// TestMainPIDEscapeRefused: a container cannot make systemd adopt a
// process outside it. With ready = "notify" it reaches only cove's filter,
// which passes READY=1 and STATUS= alone; without it, it reaches no
// notify socket at all.
func TestMainPIDEscapeRefused(t *testing.T) {
	env.Need(t)
	victim := inside(t, "systemd-run", "--unit=victim", "--quiet", "/bin/sleep", "1000")
	if victim.Code != 0 {
		t.Fatalf("start victim: %s", victim.Stderr)
	}
	t.Cleanup(func() { inside(t, "systemctl", "stop", "victim.service") })
	vpid := show(t, "victim.service", "MainPID")
	dir := filepath.Join(workDir, "escape")
	p := declaredCmd(t, dir, "escape", fmt.Sprintf(`["/bin/sh", "-c", "notify-send MAINPID=%s WATCHDOG_USEC=1 READY=1; exec sleep 1000"]`, vpid), "ready = \"notify\"\n")
	pruneAll(t)
	mustCove(t, "apply", p)
	main := show(t, "cove-escape.service", "MainPID")
	if main == vpid {
		t.Fatalf("systemd adopted the host process %s as the container's main PID", vpid)
	}
	if comm := strings.TrimSpace(inside(t, "cat", "/proc/"+main+"/comm").Stdout); comm != "sleep" {
		t.Errorf("MainPID %s is %q, want the payload", main, comm)
	}
	mustCove(t, "stop", "escape")
	if st := show(t, "victim.service", "ActiveState"); st != "active" || show(t, "victim.service", "MainPID") != vpid {
		t.Errorf("stopping the container touched the host process: victim %s", st)
	}
	r := cove(t, "run", "--rm", "--rootfs", rootfs, "--", "/bin/sh", "-c",
		"echo notify=$NOTIFY_SOCKET; for s in /run/systemd/notify /run/notify/notify.sock; do [ -S $s ] && echo REACHABLE $s; done; true")
	if !strings.Contains(r.Stdout, "notify=\n") || strings.Contains(r.Stdout, "REACHABLE") {
		t.Errorf("a default container can see a notify socket:\n%s", r.Stdout)
	}
}

// TestTCPAndHealthyReadiness: ready = "tcp:PORT" and "healthy" make the
// unit active only once the port answers / the health command passes.
func TestTCPAndHealthyReadiness(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "readiness")
	tcp := declaredCmd(t, dir, "rtcp", `["/bin/sh", "-c", "sleep 1; exec httpd -f -p 127.0.0.1:8099"]`,
		"ready = \"tcp:8099\"\n")
	healthy := declaredCmd(t, dir, "rhealthy", `["/bin/sh", "-c", "sleep 1; touch /tmp/rhealthy-ok; exec sleep 1000"]`,
		"ready = \"healthy\"\n[health]\ncommand = [\"test\", \"-e\", \"/tmp/rhealthy-ok\"]\ninterval = \"1s\"\n")
	inside(t, "rm", "-f", rootfs+"/tmp/rhealthy-ok")
	for _, p := range []string{tcp, healthy} {
		start := time.Now()
		mustCove(t, "apply", p)
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("%s: apply returned after %s, before the payload was ready", filepath.Base(p), d)
		}
	}
	for _, u := range []string{"cove-rtcp.service", "cove-rhealthy.service"} {
		if st := show(t, u, "ActiveState"); st != "active" {
			t.Errorf("%s: %s", u, st)
		}
	}
}

// declaredCmd writes a spec with the given command and [service] lines.
func declaredCmd(t *testing.T, dir, name, command, service string) string {
	t.Helper()
	return containerSpec(t, dir, name, rootfs, command, "network = \"host\"\n[service]\nstop_timeout = \"1s\"\n"+service)
}
