package nettest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/radv"
	"github.com/cove-project/cove/launch"
)

// The DHCPv6 test's guest, played by a network namespace like the DHCP
// test's, and the router advertisements' units.
const (
	dhcp6VM   = "dhcp6vm"
	raSocket  = "cove-ra@cove.socket"
	raService = "cove-ra@cove.service"
)

// TestVMDHCPv6: a guest booted from its own disk (a network namespace
// wired to a tap on cove0, makeGuest, with the MAC of a workload that
// holds a lease, behind that workload's anti-spoofing table, with the
// kernel's accept_ra on) gets IPv6 as on any IPv6 LAN. ISC dhclient -6 gets the lease's IPv6
// twin, with the gateway as DNS server and the network as search domain,
// from the DHCP responder (which its socket started with the network, to
// join the DHCPv6 group on it): first, with a random link-local address,
// known by its DUID-LLT; then, with a DUID-EN, by its EUI-64 link-local
// address; each lease given back with a RELEASE, which is answered. The
// responder's answer starts cove-ra@cove.service through its socket
// (which gives up its CAP_NET_RAW once its socket is open), whose
// advertisement gives the guest's kernel the default route through the
// bridge and the network's prefix on-link, and no address of its own
// making. With the leased address configured, the guest reaches the
// gateway. A solicitation of the guest's kernel (its link going down and
// up) brings the route back while the advertisements run; a stranger gets
// no lease; both responders exit when idle, their sockets stay, and the
// next SOLICIT alone starts both again; nothing is left.
func TestVMDHCPv6(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoDHCP6Leftovers(t) })
	journalOnFailure(t, 80)
	must(t, "systemctl", "start", networkUnit)
	eventually(t, 5*time.Second, "the DHCP and router advertisement sockets to listen", func() bool {
		return show(t, dhcpSocket, "ActiveState") == "active" && show(t, raSocket, "ActiveState") == "active"
	})
	n := plan.Default()
	addr6 := plan.Addr6For(n, leaseLikeLauncher(t, dhcp6VM))
	vm := makeGuest(t, "cove-dhcp6-vm", plan.HostIfName("cove", dhcp6VM), plan.WorkloadMAC("cove", dhcp6VM))
	must(t, "systemctl", "reload", networkUnit) // the guest's anti-spoofing table (see TestVMDHCP)
	if st := show(t, raService, "ActiveState"); st != "inactive" {
		t.Fatalf("%s before any request: %s", raService, st)
	}

	// First with a random link-local address (of stable privacy's kind,
	// no MAC in it): the MAC in dhclient's DUID-LLT tells who the guest is.
	setAddrGenMode(t, vm, "random")
	want := fmt.Sprintf("BOUND6 %v/128 dns=%v search=cove. life=43200", addr6, n.Gateway6)
	if got, r := dhclient6(t, vm, "llt", ""); got != want {
		t.Fatalf("the guest's DHCPv6 lease:\n got %q\nwant %q\n%s%s", got, want, r.Stdout, r.Stderr)
	}
	checkAdvertised(t, vm)
	// It started with CAP_NET_RAW and gave it up once its socket was open.
	if pid := show(t, raService, "MainPID"); pid == "0" {
		t.Errorf("%s has no main process", raService)
	} else if status := must(t, "cat", "/proc/"+pid+"/status"); !strings.Contains(status, "\nCapPrm:\t0000000000000000\n") || !strings.Contains(status, "\nCapEff:\t0000000000000000\n") || !strings.Contains(status, "\nCapAmb:\t0000000000000000\n") {
		t.Errorf("%s kept capabilities:\n%s", raService, status)
	}
	guestIP(t, vm, "-6", "addr", "add", addr6.String()+"/128", "dev", "eth0", "nodad")
	must(t, "nsenter", "--net=/run/netns/"+vm, filepath.Join(rootfs, "bin", "busybox"), "ping", "-6", "-c", "1", "-W", "3", n.Gateway6.String())

	// Another DUID (enterprise-based, no MAC in it) and the kernel's
	// EUI-64 link-local address: the address tells who the guest is.
	setAddrGenMode(t, vm, "eui64")
	en := `default-duid "\000\002\000\000\253\021\001\002\003\004\005\006\007\010";` + "\n"
	if got, r := dhclient6(t, vm, "en", en); got != want {
		t.Errorf("the guest's DHCPv6 lease with a DUID-EN:\n got %q\nwant %q\n%s%s", got, want, r.Stdout, r.Stderr)
	}
	// The kernel's own solicitation, while the advertisements run (and
	// none that the requests asked for is still due).
	time.Sleep(radv.MinDelay + time.Second)
	guestIP(t, vm, "-6", "route", "flush", "proto", "ra")
	guestIP(t, vm, "link", "set", "eth0", "down")
	guestIP(t, vm, "link", "set", "eth0", "up")
	checkAdvertised(t, vm)

	stranger := makeGuest(t, "cove-dhcp6-stranger", "cvstranger6", plan.WorkloadMAC("cove", "stranger"))
	if got, r := dhclient6(t, stranger, "stranger", ""); got != "" || r.Code == 0 {
		t.Errorf("a guest with another MAC: exit %d, got %q\n%s%s", r.Code, got, r.Stdout, r.Stderr)
	}
	j := inside(t, "journalctl", "--no-pager", "-u", dhcpService, "-u", raService).Stdout
	for _, line := range []string{"DHCPv6 REPLY to REQUEST from " + dhcp6VM + " (" + addr6.String() + ")",
		"DHCPv6 REPLY to RELEASE from " + dhcp6VM + " (" + addr6.String() + ")", "router advertisement sent to ff02::1 on cove0"} {
		if !strings.Contains(j, line) {
			t.Errorf("the journal lacks %q:\n%s", line, j)
		}
	}
	eventually(t, dhcpIdleLimit, "both responders to exit when idle", func() bool {
		return show(t, dhcpService, "ActiveState") == "inactive" && show(t, raService, "ActiveState") == "inactive"
	})
	for _, u := range []string{dhcpService, raService} {
		if res := show(t, u, "Result"); res != "success" {
			t.Errorf("%s after its idle exit: Result=%s, want success", u, res)
		}
	}
	if st := show(t, raSocket, "ActiveState"); st != "active" {
		t.Errorf("%s after the idle exit: %s, want active", raSocket, st)
	}
	// The DHCPv6 group membership stays with the socket systemd holds: a
	// SOLICIT alone starts the responder again, and its answer the
	// advertisements.
	if got, r := dhclient6(t, vm, "again", ""); got != want {
		t.Errorf("the guest's DHCPv6 lease after the idle exit:\n got %q\nwant %q\n%s%s", got, want, r.Stdout, r.Stderr)
	}
	eventually(t, 5*time.Second, raService+" to start again", func() bool { return show(t, raService, "ActiveState") == "active" })
}

// checkAdvertised waits until the kernel of the guest in namespace ns
// has taken the default route through cove0's link-local address and
// the network's prefix on-link from an advertisement, and checks that
// it made no address of its own.
func checkAdvertised(t *testing.T, ns string) {
	t.Helper()
	n := plan.Default()
	var routes string
	defer func() {
		if t.Failed() {
			t.Logf("the guest's routes:\n%s", routes)
		}
	}()
	eventually(t, 10*time.Second, "the guest's routes from the advertisement", func() bool {
		routes = guestIP(t, ns, "-6", "route", "show")
		return strings.Contains(routes, "default via fe80::") && strings.Contains(routes, "proto ra") && strings.Contains(routes, n.Subnet6.String()+" dev eth0")
	})
	if addrs := guestIP(t, ns, "-6", "addr", "show", "dev", "eth0", "scope", "global", "dynamic"); strings.TrimSpace(addrs) != "" {
		t.Errorf("the guest made an address of its own from the advertisement:\n%s", addrs)
	}
}

// setAddrGenMode makes the kernel in namespace ns give eth0 a link-local
// address of kind mode (ip link ... addrgenmode: eui64, random), taking
// the link down and up.
func setAddrGenMode(t *testing.T, ns, mode string) {
	t.Helper()
	guestIP(t, ns, "link", "set", "eth0", "down")
	guestIP(t, ns, "link", "set", "eth0", "addrgenmode", mode)
	guestIP(t, ns, "link", "set", "eth0", "up")
}

// guestIP runs ip with args in namespace ns and returns its output.
func guestIP(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return must(t, "ip", append([]string{"-n", ns}, args...)...)
}

// dhclient6 runs ISC dhclient -6 once on eth0 in namespace ns, with its
// own configuration, lease file (starting as lease, "" for none) and pid
// file named after run and a script that configures nothing and prints
// what a BOUND6 gave (got, "" without a lease). dhclient gives up after
// 12 s; with a lease it goes to the background, and is stopped at once
// with a RELEASE (dhclient -r), which the responder answers.
func dhclient6(t *testing.T, ns, run, lease string) (got string, r result) {
	t.Helper()
	dir := filepath.Join(workDir, "dhclient6-"+run)
	script := filepath.Join(dir, "script")
	out := filepath.Join(dir, "bound")
	files := map[string]string{
		script:                       "#!/bin/sh\n[ \"$reason\" = BOUND6 ] && echo \"BOUND6 $new_ip6_address/$new_ip6_prefixlen dns=$new_dhcp6_name_servers search=$new_dhcp6_domain_search life=$new_max_life\" > " + out + "\nexit 0\n",
		filepath.Join(dir, "conf"):   "timeout 12;\n",
		filepath.Join(dir, "leases"): lease,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-6", "-cf", filepath.Join(dir, "conf"), "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "-sf", script}
	eventually(t, 5*time.Second, "the guest's link-local address", func() bool {
		a := guestIP(t, ns, "-6", "addr", "show", "dev", "eth0", "scope", "link")
		return strings.Contains(a, "fe80::") && !strings.Contains(a, "tentative")
	})
	r = inside(t, "nsenter", append([]string{"--net=/run/netns/" + ns, "dhclient", "-1"}, append(args, "eth0")...)...)
	if r.Code == 0 {
		inside(t, "nsenter", append([]string{"--net=/run/netns/" + ns, "dhclient", "-r"}, append(args, "eth0")...)...)
	}
	b, _ := os.ReadFile(out)
	return strings.TrimSpace(string(b)), r
}

// checkNoDHCP6Leftovers: once the network stops, its DHCP and router
// advertisement sockets and services are inactive, the socket file is
// gone, and nothing of the network is left.
func checkNoDHCP6Leftovers(t *testing.T) {
	t.Helper()
	must(t, "systemctl", "stop", networkUnit)
	checkNoNetworkLeftovers(t)
	for _, u := range []string{dhcpSocket, dhcpService, raSocket, raService} {
		if st := show(t, u, "ActiveState"); st != "inactive" {
			t.Errorf("%s after the network stopped: %s, want inactive", u, st)
		}
	}
	if r := inside(t, "test", "-e", launch.RASocket("cove")); r.Code == 0 {
		t.Errorf("the router advertisements' socket file is left")
	}
	if out := inside(t, "ip", "netns", "list").Stdout; strings.Contains(out, "cove-dhcp6") {
		t.Errorf("the guests' namespaces are still there:\n%s", out)
	}
}
