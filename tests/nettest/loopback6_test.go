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
	checkProxyRuns(t, "web6", "tcp", 18443, "systemd-socket-")

	mustCove(t, "stop", "web6")
	for _, port := range []uint16{18080, 18443} {
		if st := show(t, spec.ProxySocketName("web6", "tcp", port), "ActiveState"); st != "inactive" {
			t.Errorf("%s is %s after cove stop web6, want inactive", spec.ProxySocketName("web6", "tcp", port), st)
		}
		if r := busybox(t, "", "wget", "-q", "-O", "-", "http://[::1]:"+strconv.Itoa(int(port))+"/"); r.Code == 0 {
			t.Errorf("[::1]:%d answered %q with web6 stopped", port, r.Stdout)
		}
	}
	mustCove(t, "rm", "run6")
	if st := show(t, spec.ProxySocketName("run6", "tcp", 19080), "LoadState"); st != "not-found" {
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
// after a connection or datagram, as the program comm (as the kernel
// cuts it: systemd-socket-proxyd is "systemd-socket-") with no capability
// (an empty bounding set) and no_new_privs.
func checkProxyRuns(t *testing.T, workload, proto string, port uint16, comm string) {
	t.Helper()
	svc := spec.ProxyServiceName(workload, proto, port)
	pid := show(t, svc, "MainPID")
	if pid == "" || pid == "0" {
		t.Fatalf("%s has no main process after a connection (ActiveState %s)", svc, show(t, svc, "ActiveState"))
	}
	if got := strings.TrimSpace(must(t, "cat", "/proc/"+pid+"/comm")); got != comm {
		t.Errorf("%s's main process is %q, want %q", svc, got, comm)
	}
	status := must(t, "cat", "/proc/"+pid+"/status")
	for _, want := range []string{"CapBnd:\t0000000000000000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(status, want+"\n") {
			t.Errorf("%s's /proc/PID/status lacks %q:\n%s", svc, want, status)
		}
	}
}

// TestUDPPorts: published UDP ports answer from the outside through the
// uplink's IPv4 and IPv6 addresses, from the host through the uplink
// address, 127.0.0.1 and ::1 (the last through the socket-activated
// proxy: cove-launch relaying datagrams, without capabilities), each
// answer coming from the address the client asked (the clients' sockets
// are connected, so they take nothing else); a port on [::1] only
// answers there only; a cove run's port on every address answers on ::1
// too. Stopping the workload closes its proxy sockets; removing the run
// unloads its proxy; nothing is left.
func TestUDPPorts(t *testing.T) {
	env.Need(t)
	t.Cleanup(func() { checkNoLeftovers(t) }) // after the outside's cleanup
	makeOutside(t)
	journalOnFailure(t, 80)
	applySpec(t, "echo6", udpEchoSpec(`ports = ["15353:5353/udp", "[::1]:15354:5353/udp"]`))
	for _, c := range []struct{ ns, addr string }{
		{outsideNS, uplinkAddr + ":15353"},
		{outsideNS, "[" + uplinkAddr6 + "]:15353"},
		{"", uplinkAddr + ":15353"},
		{"", "127.0.0.1:15353"},
		{"", "[::1]:15353"},
		{"", "[::1]:15354"},
	} {
		if got := udpAsk(t, c.ns, c.addr, "ping"); got != "echo6 ping" {
			t.Errorf("from %q, %s answered %q, want %q", c.ns, c.addr, got, "echo6 ping")
		}
	}
	for _, addr := range []string{"127.0.0.1:15354", uplinkAddr + ":15354"} {
		if r := udpEcho(t, "", "ask", addr, "ping"); r.Code == 0 {
			t.Errorf("%s answered %q: the port is published on ::1 only", addr, r.Stdout)
		}
	}
	checkProxyRuns(t, "echo6", "udp", 15354, "cove-launch")

	t.Cleanup(func() { inside(t, coveBin, "rm", "-f", "urun6") })
	mustCove(t, "run", "-d", "--name", "urun6", "--rootfs", rootfs, "--volatile", "--network", "cove", "-p", "16353:5353/udp", "--", "/bin/udp-echo", "serve", "5353")
	if got := udpAsk(t, "", "[::1]:16353", "pong"); got != "urun6 pong" {
		t.Errorf("[::1]:16353 answered %q, want %q", got, "urun6 pong")
	}

	mustCove(t, "stop", "echo6")
	for _, port := range []uint16{15353, 15354} {
		if st := show(t, spec.ProxySocketName("echo6", "udp", port), "ActiveState"); st != "inactive" {
			t.Errorf("%s is %s after cove stop echo6, want inactive", spec.ProxySocketName("echo6", "udp", port), st)
		}
		if r := udpEcho(t, "", "ask", "[::1]:"+strconv.Itoa(int(port)), "ping"); r.Code == 0 {
			t.Errorf("[::1]:%d answered %q with echo6 stopped", port, r.Stdout)
		}
	}
	mustCove(t, "rm", "-f", "urun6")
	if st := show(t, spec.ProxySocketName("urun6", "udp", 16353), "LoadState"); st != "not-found" {
		t.Errorf("urun6's proxy socket is %s after cove rm urun6, want not-found (unloaded)", st)
	}
}

// udpEchoSpec is the text of a spec of a container on network cove
// answering UDP on port 5353 with its name (udp-echo serve), with extra
// lines at the end of its [container] table.
func udpEchoSpec(container string) string {
	return serverSpec(`["/bin/udp-echo", "serve", "5353"]`, container, "")
}

// udpEcho runs the test rootfs's udp-echo in the sandbox, in namespace
// netns ("": the sandbox's own).
func udpEcho(t *testing.T, netns string, args ...string) result {
	t.Helper()
	return fromRootfs(t, netns, "udp-echo", args...)
}

// udpAsk sends msg to addr from namespace netns, retrying (bounded) while
// the server comes up, and returns the answer.
func udpAsk(t *testing.T, netns, addr, msg string) string {
	t.Helper()
	var r result
	for range 10 {
		if r = udpEcho(t, netns, "ask", addr, msg); r.Code == 0 {
			return strings.TrimSpace(r.Stdout)
		}
	}
	t.Errorf("from %q, udp-echo ask %s: exit %d: %s", netns, addr, r.Code, r.Stderr)
	return ""
}
