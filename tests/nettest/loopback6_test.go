package nettest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/tests/harness"
)

// TestLoopback6Ports: published TCP ports answer on [::1] too, which no
// DNAT rule can do (IPv6 has no route_localnet): a declared workload's
// port on every address and its port on ::1 only, and a cove run's port
// on every address, each through its socket unit, whose first connection
// starts the proxy (systemd-socket-proxyd without capabilities). A port on
// ::1 only answers nowhere else. Stopping the workload closes its
// sockets; removing a run's workload unloads its proxies; nothing is
// left.
func TestLoopback6Ports(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	journalOnFailure(t, 80)
	applySpec(t, "web6", httpdSpec(`ports = ["18080:8080", "[::1]:18443:8080"]`, ""))
	runServer(t, "run6", "cove", "-p", "19080:8080")

	for url, want := range map[string]string{
		"http://[::1]:18080/":     "web6",
		"http://127.0.0.1:18080/": "web6",
		"http://[::1]:18443/":     "web6",
		"http://[::1]:19080/":     "run6",
	} {
		if got := hostFetch(t, url); got != want {
			t.Errorf("from the host, %s answered %q, want %q", url, got, want)
		}
	}
	for _, url := range []string{"http://127.0.0.1:18443/", "http://" + uplinkAddr + ":18443/"} {
		if r := busybox(t, "", "wget", "-q", "-O", "-", url); r.Code == 0 {
			t.Errorf("%s answered %q: the port is published on ::1 only", url, r.Stdout)
		}
	}
	checkProxyRuns(t, "web6", 18443)

	mustCove(t, "stop", "web6")
	for _, port := range []uint16{18080, 18443} {
		if st := show(t, spec.ProxySocketName("web6", port), "ActiveState"); st != "inactive" {
			t.Errorf("%s is %s after cove stop web6, want inactive", spec.ProxySocketName("web6", port), st)
		}
		if r := busybox(t, "", "wget", "-q", "-O", "-", "http://[::1]:"+strconv.Itoa(int(port))+"/"); r.Code == 0 {
			t.Errorf("[::1]:%d answered %q with web6 stopped", port, r.Stdout)
		}
	}
	mustCove(t, "rm", "run6")
	if st := show(t, spec.ProxySocketName("run6", 19080), "LoadState"); st != "not-found" {
		t.Errorf("run6's proxy socket is %s after cove rm run6, want not-found (unloaded)", st)
	}
	checkProxyPortTaken(t)
}

// checkProxyPortTaken: when something of the host holds [::1]:PORT, cove
// run -p PORT:8080 still runs the workload, published on the other
// addresses, and warns that ::1 does not answer.
func checkProxyPortTaken(t *testing.T) {
	t.Helper()
	if line := harness.Background(t, sb, "python3", "-c", "import socket,time; s=socket.socket(socket.AF_INET6); s.bind(('::1',19090)); s.listen(); print('ok', flush=True); time.sleep(600)"); line != "ok\n" {
		t.Fatalf("holding [::1]:19090: %q", line)
	}
	t.Cleanup(func() { inside(t, coveBin, "rm", "taken6") })
	args := []string{"run", "-d", "--name", "taken6", "--rootfs", rootfs, "--volatile", "--network", "cove", "-p", "19090:8080", "--",
		"/bin/sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"}
	r := inside(t, coveBin, args...)
	if r.Code != 0 || !strings.Contains(r.Stderr, "warning: cove-taken6.service runs, but not all its ports answer on ::1") {
		t.Errorf("cove run -p with [::1]:19090 taken: exit %d, stderr %q; want 0 and a warning", r.Code, r.Stderr)
	}
	if got := hostFetch(t, "http://127.0.0.1:19090/"); got != "taken6" {
		t.Errorf("127.0.0.1:19090 answered %q, want taken6", got)
	}
}

// hostFetch fetches url from the sandbox's own namespace (the host of the
// containers), retrying (bounded) while the server comes up, and returns
// the page's first line.
func hostFetch(t *testing.T, url string) string {
	t.Helper()
	var r result
	for range 30 {
		if r = busybox(t, "", "wget", "-q", "-O", "-", url); r.Code == 0 {
			return strings.TrimSpace(r.Stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("from the host, wget %s: exit %d: %s", url, r.Code, r.Stderr)
	return ""
}

// checkProxyRuns checks that the proxy of workload's port on ::1 runs,
// after a connection, as systemd-socket-proxyd with no capability (an
// empty bounding set) and no_new_privs.
func checkProxyRuns(t *testing.T, workload string, port uint16) {
	t.Helper()
	svc := spec.ProxyServiceName(workload, port)
	pid := show(t, svc, "MainPID")
	if pid == "" || pid == "0" {
		t.Fatalf("%s has no main process after a connection (ActiveState %s)", svc, show(t, svc, "ActiveState"))
	}
	if comm := strings.TrimSpace(must(t, "cat", "/proc/"+pid+"/comm")); comm != "systemd-socket-" {
		t.Errorf("%s's main process is %q, want systemd-socket-proxyd", svc, comm)
	}
	status := must(t, "cat", "/proc/"+pid+"/status")
	for _, want := range []string{"CapBnd:\t0000000000000000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(status, want+"\n") {
			t.Errorf("%s's /proc/PID/status lacks %q:\n%s", svc, want, status)
		}
	}
}
