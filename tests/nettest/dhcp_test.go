package nettest

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/tests/harness"
)

// The DHCP test's guest: a workload that holds a lease on network cove
// but is played by a network namespace the test makes (a tap on cove0
// wired to one with the workload's MAC: makeGuest) instead of a QEMU, and
// a stranger whose MAC no lease belongs to.
const (
	dhcpVM        = "dhcpvm"
	dhcpSocket    = "cove-dhcp@cove.socket"
	dhcpService   = "cove-dhcp@cove.service"
	dhcpIdleLimit = 45 * time.Second // cove dhcp-serve exits after 30 s idle
	dhcpOther     = "dhcp2"          // another network, its socket on port 67 of its own bridge
	otherService  = "cove-dhcp@" + dhcpOther + ".service"
)

// TestVMDHCP: cove-dhcp@cove.socket comes up with the network, next to
// another network's on the same port; a guest booted without ip=
// (busybox udhcpc behind a tap of cove0, makeGuest, with the MAC of a
// workload that holds a lease, behind that workload's anti-spoofing
// table) gets exactly its lease, the gateway as router and DNS server,
// the network as domain and its name as host name, from the responder
// the first DISCOVER started (and not from the other network's, IPv4
// only, whose responder nothing starts); a guest with another MAC gets no
// offer; the responder exits when idle, its socket
// stays and starts it again for the next request; stopping the networks
// stops their sockets, and nothing is left.
func TestVMDHCP(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoDHCPLeftovers(t) })
	journalOnFailure(t, 80)
	// IPv4 only: a socket with IPv6 starts its responder with it (to join
	// the DHCPv6 group), and this one must start only for its own bridge.
	mustCove(t, "network", "create", "--ipv6=false", dhcpOther)
	must(t, "systemctl", "start", networkUnit, spec.NetworkUnitName(dhcpOther))
	eventually(t, 5*time.Second, "both networks' DHCP sockets to listen", func() bool {
		return show(t, dhcpSocket, "ActiveState") == "active" && show(t, spec.DHCPSocketName(dhcpOther), "ActiveState") == "active"
	})
	addr := leaseLikeLauncher(t, dhcpVM)
	vm := makeGuest(t, "cove-dhcp-vm", plan.HostIfName("cove", dhcpVM), plan.WorkloadMAC("cove", dhcpVM))
	// Restore (what a reload runs) installs the tables of a workload
	// with a lease and a link: the guest's frames pass its anti-spoofing
	// rules, as a VM's do.
	must(t, "systemctl", "reload", networkUnit)
	if tables := must(t, "nft", "list", "tables"); !strings.Contains(tables, "table bridge "+plan.WorkloadTableName(dhcpVM)) {
		t.Fatalf("the guest's anti-spoofing table is missing:\n%s", tables)
	}

	gw := plan.Default().Gateway4.String()
	want := fmt.Sprintf("ip=%v subnet=255.255.0.0 router=%s dns=%s domain=cove search=cove hostname=%s serverid=%s lease=43200", addr, gw, gw, dhcpVM, gw)
	if got, r := udhcpc(t, vm, 3); got != want {
		t.Fatalf("the guest's lease:\n got %q\nwant %q\n%s%s", got, want, r.Stdout, r.Stderr)
	}
	if st := show(t, dhcpService, "ActiveState"); st != "active" {
		t.Errorf("%s after the guest's request: %s, want active", dhcpService, st)
	}
	if ts := show(t, otherService, "ExecMainStartTimestampMonotonic"); ts != "0" {
		t.Errorf("cove0's DHCP request started %s too (at %s)", otherService, ts)
	}
	stranger := makeGuest(t, "cove-dhcp-stranger", "cvstranger0", plan.WorkloadMAC("cove", "stranger"))
	if got, r := udhcpc(t, stranger, 2); got != "" || r.Code == 0 {
		t.Errorf("a guest with another MAC: exit %d, got %q\n%s%s", r.Code, got, r.Stdout, r.Stderr)
	}

	eventually(t, dhcpIdleLimit, dhcpService+" to exit when idle", func() bool {
		return show(t, dhcpService, "ActiveState") == "inactive"
	})
	if res, st := show(t, dhcpService, "Result"), show(t, dhcpSocket, "ActiveState"); res != "success" || st != "active" {
		t.Errorf("after the idle exit: %s Result=%s (want success), %s %s (want active)", dhcpService, res, dhcpSocket, st)
	}
	if got, r := udhcpc(t, vm, 3); got != want {
		t.Errorf("the guest's request after the idle exit:\n got %q\nwant %q\n%s%s", got, want, r.Stdout, r.Stderr)
	}
	if j := inside(t, "journalctl", "--no-pager", "-u", dhcpService).Stdout; !strings.Contains(j, "DHCPACK "+addr.String()+" to "+plan.WorkloadMAC("cove", dhcpVM).String()+" ("+dhcpVM+")") {
		t.Errorf("the responder did not log its ACK:\n%s", j)
	}
}

// leaseLikeLauncher leases an address of network cove to workload name
// as the launcher does, through network.Leases under the network's lock
// in the sandbox's /run, and returns it; cove network-release gives the
// lease, the workload's tables and its link back when the test ends.
func leaseLikeLauncher(t *testing.T, name string) netip.Addr {
	t.Helper()
	root := fmt.Sprintf("/proc/%d/root%s", sb.PID(), launch.NetworksDir)
	t.Cleanup(func() { mustCove(t, launch.NetworkReleaseVerb, name, "cove") })
	addr, err := network.Leases{Root: root}.Allocate(plan.Default(), name, netip.Addr{})
	if err != nil {
		t.Fatalf("lease an address to %s: %v", name, err)
	}
	return addr
}

// makeGuest makes a network namespace ns with lo and eth0 up, eth0 with
// mac: a guest's NIC without an address. Its wire is hostIf, a tap and a
// port of cove0, as QEMU's NIC is: eth0 is a tap too, and the test relays
// the frames between the two. Both go when the test ends.
func makeGuest(t *testing.T, ns, hostIf string, mac plan.MAC) string {
	t.Helper()
	must(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { inside(t, "ip", "netns", "del", ns) })
	port := openTapIn(t, sb.NetNS(), hostIf)
	nic := openTapIn(t, fmt.Sprintf("/proc/%d/root/run/netns/%s", sb.PID(), ns), "eth0")
	go relayFrames(port, nic)
	go relayFrames(nic, port)
	must(t, "sh", "-c", fmt.Sprintf(`set -e
ip -n %[1]s link set eth0 address %[3]s
ip -n %[1]s link set lo up
ip -n %[1]s link set eth0 up
ip link set %[2]s master cove0 up
`, ns, hostIf, mac))
	assertClosedWorld(t, "up0", "cove0", "cove-"+dhcpOther, "cv*")
	return ns
}

// openTapIn creates the tap name in the network namespace at nsPath and
// returns the file its frames are read from and written to; the tap goes
// when the test ends and the file is closed.
func openTapIn(t *testing.T, nsPath, name string) *os.File {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatalf("open network namespace %s: %v", nsPath, err)
	}
	defer ns.Close()
	var tap *os.File
	err = network.InNetns(ns, func() error {
		tap, err = harness.OpenTap(name)
		return err
	})
	if err != nil {
		t.Fatalf("in %s: %v", nsPath, err)
	}
	t.Cleanup(func() { tap.Close() })
	return tap
}

// relayFrames copies frames from one tap's file to another's until the
// first is closed; a frame the other does not take is lost, as on a wire.
func relayFrames(from, to *os.File) {
	buf := make([]byte, 65536)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		to.Write(buf[:n])
	}
}

// udhcpc runs busybox udhcpc on eth0 in namespace ns (-f -q -n: in the
// foreground, until it has a lease or has sent tries DISCOVERs two
// seconds apart) with a script that prints what it was given and
// configures nothing. got is that line, "" without a lease.
func udhcpc(t *testing.T, ns string, tries int) (got string, r result) {
	t.Helper()
	script := filepath.Join(workDir, "udhcpc.script")
	text := "#!" + filepath.Join(rootfs, "bin", "sh") + `
[ "$1" = bound ] && echo "lease: ip=$ip subnet=$subnet router=$router dns=$dns domain=$domain search=$search hostname=$hostname serverid=$serverid lease=$lease"
exit 0
`
	if err := os.WriteFile(script, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	r = inside(t, "nsenter", "--net=/run/netns/"+ns, filepath.Join(rootfs, "bin", "busybox"),
		"udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", fmt.Sprint(tries), "-T", "2", "-s", script)
	for _, line := range strings.Split(r.Stdout, "\n") {
		if l, ok := strings.CutPrefix(line, "lease: "); ok {
			got = l
		}
	}
	return got, r
}

// checkNoDHCPLeftovers removes the other network; once the networks
// stop, their DHCP sockets and responders are inactive, and nothing of
// the networks is left.
func checkNoDHCPLeftovers(t *testing.T) {
	t.Helper()
	must(t, "systemctl", "stop", networkUnit) // its resolv.conf goes with it
	checkNoNetworkLeftovers(t, dhcpOther)
	for _, u := range []string{dhcpSocket, dhcpService, spec.DHCPSocketName(dhcpOther), otherService} {
		if st := show(t, u, "ActiveState"); st != "inactive" {
			t.Errorf("%s after the network stopped: %s, want inactive", u, st)
		}
	}
	if out := inside(t, "ip", "netns", "list").Stdout; strings.Contains(out, "cove-dhcp") {
		t.Errorf("the guests' namespaces are still there:\n%s", out)
	}
}
