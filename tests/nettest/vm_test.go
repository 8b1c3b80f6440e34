package nettest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/tests/harness"
	"github.com/cove-project/cove/tests/vmguest"
)

// vmBootTimeout bounds a test VM's boot under TCG (a few seconds on an
// idle machine; the machines are shared).
const vmBootTimeout = 2 * time.Minute

// needGuest returns the test guest, or skips t saying why it cannot be
// prepared here (no QEMU; no kernel package, dpkg-deb or static busybox):
// under CI=true that is a failure instead.
func needGuest(t *testing.T) vmguest.Guest {
	t.Helper()
	env.Need(t)
	_, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		err = fmt.Errorf("%w (apt-get install qemu-system-x86; scripts/deps does)", err)
	}
	var g vmguest.Guest
	if err == nil {
		// A Debian cloud kernel and a busybox initramfs, built once per
		// run or found in the cache the tests/ suite shares.
		g, err = vmguest.Default()
	}
	if err != nil && os.Getenv("CI") == "true" {
		t.Fatalf("prepare the test guest: %v", err)
	}
	if err != nil {
		t.Skipf("cannot prepare the test guest (kernel and busybox initramfs) here: %v", err)
	}
	return g
}

// TestVMOnBridge: a VM with [vm.network] mode = "bridge" joins network
// cove next to a container. Its unit requires the network's; its
// launcher leases it an address, makes its tap (a port of cove0), its
// tables and its port claim; the guest takes its address from its kernel
// command line (ip=, which its /init applies as an initramfs would), and
// the launcher starts the network's router advertisements for it. The
// container resolves and reaches the VM by name, the VM reaches the
// container by name, and the VM's published port answers from the host
// (127.0.0.1 and its uplink address) and from the outside, and again
// after "nft flush ruleset" and a reload of the network's unit; a VM on
// an unknown network or publishing a taken port is refused before it
// starts. cove stop gives back the lease, the tap, the tables and the
// claim.
func TestVMOnBridge(t *testing.T) {
	g := needGuest(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	journalOnFailure(t, 120)
	makeOutside(t)
	runOnNetwork(t, "peer", "no")
	raBefore := show(t, raService, "ExecMainStartTimestampMonotonic")
	addr := runBridgedVM(t, g, "guest", "8081:8080", "http://peer:8080/")
	assertClosedWorld(t, "up0", "cove0", "cv*")
	// The launcher started the router advertisements for the booting guest
	// (this one takes its address from the kernel command line and asks
	// the DHCP responder nothing).
	eventually(t, 10*time.Second, "the VM's launcher to start "+raService, func() bool {
		ts := show(t, raService, "ExecMainStartTimestampMonotonic")
		return ts != "0" && ts != raBefore
	})

	if got := lookup(t, "peer", "guest"); got != addr.String() {
		t.Errorf("peer resolving guest: got %q, want its lease %v", got, addr)
	}
	if got := fetch(t, "peer", "http://guest:8080/"); got != "guest" {
		t.Errorf("peer fetching http://guest:8080/: got %q, want guest", got)
	}
	waitLog(t, "guest", vmguest.MarkerFetched+"peer", time.Minute)
	for _, c := range []struct{ where, ns, url string }{
		{"the host (127.0.0.1)", "", "http://127.0.0.1:8081/"},
		{"the host (uplink address)", "", "http://" + uplinkAddr + ":8081/"},
		{"the outside", outsideNS, "http://" + uplinkAddr + ":8081/"},
	} {
		if r := busybox(t, c.ns, "wget", "-q", "-O", "-", c.url); r.Code != 0 || strings.TrimSpace(r.Stdout) != "guest" {
			t.Errorf("the VM's published port from %s, %s: exit %d, %q %s", c.where, c.url, r.Code, r.Stdout, r.Stderr)
		}
	}

	checkVMReload(t, "guest", "http://127.0.0.1:8081/")
	checkVMRefused(t, g)
	checkSeedNetwork(t, g)

	// The unit is collected once stopped: that its network-release ran is
	// seen in what it gives back (the tap outlives QEMU until then).
	mustCove(t, "stop", "guest")
	assertLeft(t, "guest", addr)
	if j := inside(t, "journalctl", "--no-pager", "-u", "cove-guest.service").Stdout; strings.Contains(j, "Control process exited") {
		t.Errorf("a control process of cove-guest.service (network-release?) failed:\n%s", harness.Tail(j, 20))
	}
	if tables := must(t, "nft", "list", "tables"); strings.Contains(tables, plan.WorkloadTableName("guest")) {
		t.Errorf("the stopped VM's tables are still there:\n%s", tables)
	}
	if r := inside(t, "test", "-e", "/run/cove/ports/tcp-any-8081"); r.Code == 0 {
		t.Error("the stopped VM's port claim tcp-any-8081 is still there")
	}
	if r := busybox(t, "", "timeout", "3", "wget", "-q", "-O", "-", "http://127.0.0.1:8081/"); r.Code == 0 {
		t.Errorf("the stopped VM's published port still answers: %q", r.Stdout)
	}
}

// checkVMReload: after "nft flush ruleset" VM name's published port (at
// url, from the host) is gone; systemctl reload of the network's unit
// restores its tables from its lease, claims and tap, and the port
// answers again from the same QEMU.
func checkVMReload(t *testing.T, name, url string) {
	t.Helper()
	pid := show(t, "cove-"+name+".service", "MainPID")
	must(t, "nft", "flush", "ruleset")
	if r := busybox(t, "", "timeout", "3", "wget", "-q", "-O", "-", url); r.Code == 0 {
		t.Errorf("%s's published port answered after nft flush ruleset: %q", name, r.Stdout)
	}
	must(t, "systemctl", "reload", networkUnit)
	if r := busybox(t, "", "wget", "-q", "-O", "-", url); r.Code != 0 || strings.TrimSpace(r.Stdout) != name {
		t.Errorf("%s's published port after the reload: exit %d, %q %s", name, r.Code, r.Stdout, r.Stderr)
	}
	if got := show(t, "cove-"+name+".service", "MainPID"); got != pid {
		t.Errorf("the reload restarted %s: MainPID %s, was %s", name, got, pid)
	}
}

// checkVMRefused: a VM on an unknown network, or publishing a port that
// the running VM guest publishes, exits 2 with the key and its position
// (FILE:LINE:COL) and starts nothing.
func checkVMRefused(t *testing.T, g vmguest.Guest) {
	t.Helper()
	for _, c := range []struct {
		name, network, want string
	}{
		{"bad-vm-net", "network = \"nope\"", `:11:1: vm.network.network: unknown network "nope"`},
		{"bad-vm-port", "ports = [\"8081:80\"]", ":11:10: vm.network.ports[1]: host port 8081:80/tcp is already published by workload guest"},
	} {
		path := filepath.Join(workDir, c.name+".toml")
		text := g.Spec(vmguest.Cmdline("bridge"), "[vm.network]\nmode = \"bridge\"\n"+c.network, "")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := inside(t, coveBin, "run", "-d", path); r.Code != 2 || !strings.Contains(r.Stderr, path+c.want) {
			t.Errorf("cove run %s: exit %d, %s; want exit 2 and %q", path, r.Code, r.Stderr, path+c.want)
		}
		if st := show(t, "cove-"+c.name+".service", "LoadState"); st != "not-found" {
			t.Errorf("refused %s left a unit (%s)", c.name, st)
		}
	}
}

// checkSeedNetwork: a VM on a bridge with [vm.cloud_init] and no
// network_config gets a network-config of its lease in its seed (read by
// the guest): version 2, its NIC matched by MAC, its address in the
// default subnet, the gateway as route and name server.
func checkSeedNetwork(t *testing.T, g vmguest.Guest) {
	t.Helper()
	path := filepath.Join(workDir, "seeded.toml")
	text := g.Spec(vmguest.Cmdline("cidata"), "[vm.network]\nmode = \"bridge\"\n[vm.cloud_init]\nhostname = \"seeded\"", "")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r := inside(t, coveBin, "run", "--rm", path)
	const p = "COVE-SEED:network-config:"
	gw := plan.DefaultSubnet4.Addr().Next().String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^` + p + `version: 2\r?$`),
		regexp.MustCompile(`(?m)^` + p + `      macaddress: "[0-9a-f]{2}(:[0-9a-f]{2}){5}"\r?$`),
		regexp.MustCompile(`(?m)^` + p + `      - "10\.77\.\d+\.\d+/16"\r?$`),
		regexp.MustCompile(`(?m)^` + p + `        via: "` + regexp.QuoteMeta(gw) + `"\r?$`),
		regexp.MustCompile(`(?m)^` + p + `        - "` + regexp.QuoteMeta(gw) + `"\r?$`),
	} {
		if !want.MatchString(r.Stdout) {
			t.Errorf("the seed of a VM on a bridge: no line matching %s in its console (exit %d):\n%s", want, r.Code, harness.Tail(r.Stdout, 30))
		}
	}
}

// runBridgedVM runs the test guest as VM name on network cove (mode
// bridge) in mode "bridge", publishing port and fetching fetchURL, waits
// (bounded) until its network is up, checks its unit, lease, tap, tables
// and port claim, and returns its address. The VM is removed when the
// test ends.
func runBridgedVM(t *testing.T, g vmguest.Guest, name, port, fetchURL string) netip.Addr {
	t.Helper()
	t.Cleanup(func() { inside(t, coveBin, "rm", name) })
	path := filepath.Join(workDir, name+".toml")
	health := "[health]\ntcp = 8080\ninterval = \"1s\"\non_failure = \"none\"\n" // at its leased address
	text := g.Spec(vmguest.Cmdline("bridge")+" cove.fetch="+fetchURL, fmt.Sprintf("[vm.network]\nmode = \"bridge\"\nports = [%q]", port), health)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCove(t, "run", "-d", path)
	waitLog(t, name, vmguest.MarkerNetUp, vmBootTimeout)
	if u := show(t, "cove-"+name+".service", "Requires"); !strings.Contains(u, networkUnit) {
		t.Errorf("cove-%s.service: Requires=%s, want %s", name, u, networkUnit)
	}
	addr := leaseOf(t, name)
	eventually(t, 30*time.Second, name+"'s health check (tcp = 8080 at its lease) to find it healthy", func() bool {
		return regexp.MustCompile(`(?m)^Health: +healthy$`).MatchString(inside(t, coveBin, "status", name).Stdout)
	})
	tap := plan.HostIfName("cove", name)
	if out := must(t, "ip", "-d", "link", "show", "dev", tap); !strings.Contains(out, "master cove0") || !strings.Contains(out, "tun type tap") {
		t.Errorf("%s's tap %s is not a tap on cove0:\n%s", name, tap, out)
	}
	tables := must(t, "nft", "list", "tables")
	for _, want := range []string{"table inet " + plan.WorkloadTableName(name), "table bridge " + plan.WorkloadTableName(name)} {
		if !strings.Contains(tables, want) {
			t.Errorf("%s's %q is missing:\n%s", name, want, tables)
		}
	}
	if claim := inside(t, "cat", "/run/cove/ports/tcp-any-"+strings.Split(port, ":")[0]).Stdout; !strings.HasPrefix(claim, name+"\n") {
		t.Errorf("port claim of %s: %q", port, claim)
	}
	return addr
}

// leaseOf returns the address leased to workload name on network cove.
func leaseOf(t *testing.T, name string) netip.Addr {
	t.Helper()
	for _, a := range leaseFiles(t) {
		if strings.TrimSpace(inside(t, "cat", filepath.Join(leaseDir, a)).Stdout) == name {
			return netip.MustParseAddr(a)
		}
	}
	t.Fatalf("no lease of %s in %s: %v", name, leaseDir, leaseFiles(t))
	return netip.Addr{}
}

// waitLog waits (bounded by d, polling twice a second) until workload
// name's journal holds marker; it fails t with the journal if not.
func waitLog(t *testing.T, name, marker string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		logs := inside(t, coveBin, "logs", name).Stdout
		if strings.Contains(logs, marker) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %s within %s:\n%s", name, marker, d, harness.Tail(logs, 40))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
