package nettest

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// leaseDir is where cove keeps the default network's leases (inside the
// sandbox; /run is private to it).
const leaseDir = "/run/cove/networks/cove/leases"

// networkUnit is the default network's oneshot unit.
const networkUnit = "cove-network@cove.service"

// TestDefaultNetwork: containers on network "cove" get eth0 with an
// address of 10.77.0.0/16, reach each other over TCP, reach the outside
// through NAT (the server sees the sandbox's uplink address), and give
// their lease and veth back when stopped or when the payload is killed;
// cove adds its own nftables table and nothing else, and removes it with
// the network unit. Nothing is left afterwards.
func TestDefaultNetwork(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	if out := must(t, "nft", "list", "tables"); strings.TrimSpace(out) != "" {
		t.Fatalf("the sandbox's fresh network namespace has nftables tables:\n%s", out)
	}
	t.Cleanup(func() { checkNoLeftovers(t) })
	journalOnFailure(t, 80)
	makeOutside(t)
	serveOutside(t, 9000)

	a := runOnNetwork(t, "neta", "on-failure")
	b := runOnNetwork(t, "netb", "on-failure")
	assertClosedWorld(t, "up0", "cove0", "cv*")
	wantTables := "table inet " + plan.TableName("cove") + "\ntable bridge " + plan.WorkloadTableName("neta") + "\ntable bridge " + plan.WorkloadTableName("netb")
	if out := must(t, "nft", "list", "tables"); strings.TrimSpace(out) != wantTables {
		t.Errorf("nftables tables with containers running: want only cove's\n%s\ngot\n%s", wantTables, out)
	}
	if got := fetch(t, "netb", fmt.Sprintf("http://%s:8080/", a)); got != "neta" {
		t.Errorf("netb fetching neta's page at %s: got %q, want neta", a, got)
	}
	if got := fetch(t, "neta", fmt.Sprintf("http://%s:8080/", b)); got != "netb" {
		t.Errorf("neta fetching netb's page at %s: got %q, want netb", b, got)
	}
	if got := fetch(t, "neta", fmt.Sprintf("http://%s:9000/", outsideAddr)); got != uplinkAddr {
		t.Errorf("the outside server saw neta (%s) as %q, want the masqueraded %s", a, got, uplinkAddr)
	}

	mustCove(t, "stop", "neta")
	assertReleased(t, "neta", a)

	c := runOnNetwork(t, "netc", "no")
	mustCove(t, "kill", "netc")
	eventually(t, 10*time.Second, "netc to fail after SIGKILL", func() bool {
		return show(t, "cove-netc.service", "ActiveState") == "failed"
	})
	assertReleased(t, "netc", c)
	if leases := leaseFiles(t); len(leases) != 1 || leases[0] != b.String() {
		t.Errorf("leases left with only netb running: %v, want [%s]", leases, b)
	}

	// A --rm run's unit is collected as it ends; its release unit runs all the same.
	mustCove(t, "run", "--rm", "--name", "netd", "--rootfs", rootfs, "--volatile", "--network", "cove", "--", "/bin/true")
	eventually(t, 10*time.Second, "the lease of the --rm run netd to go", func() bool { return len(leaseFiles(t)) == 1 })
	checkRestartKeepsNetwork(t, "netb")
	checkEndedPortFreed(t)
}

// checkEndedPortFreed stops two containers that publish a port each
// while their release units cannot run (masked: as if they had not run
// yet), and starts another that publishes both ports: the host check lets
// it pass (their holders have ended), its launcher's claim is refused and
// it gives back what the two ended runs hold (network.FreeEnded, one
// question to systemd about each), so both ports are the new one's.
func checkEndedPortFreed(t *testing.T) {
	t.Helper()
	run := func(name string, ports ...string) {
		t.Helper()
		t.Cleanup(func() { inside(t, coveBin, "rm", name) })
		args := []string{"run", "-d", "--name", name, "--rootfs", rootfs, "--volatile", "--network", "cove", "--stop-timeout", "1s"}
		for _, p := range ports {
			args = append(args, "-p", p)
		}
		mustCove(t, append(args, "--", "/bin/sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www")...)
	}
	claimOf := func(port string) string {
		return strings.SplitN(inside(t, "cat", "/run/cove/ports/tcp-any-"+port).Stdout, "\n", 2)[0]
	}
	for name, port := range map[string]string{"porta": "8090", "portc": "8091"} {
		for _, failed := range []bool{false, true} {
			u := spec.ReleaseUnitName(name, failed)
			must(t, "systemctl", "mask", "--runtime", u)
			t.Cleanup(func() { inside(t, "systemctl", "unmask", "--runtime", u) })
		}
		run(name, port+":8080")
		mustCove(t, "stop", name)
		if got := claimOf(port); got != name {
			t.Fatalf("stopped %s, its release masked: claim of port %s by %q, want %s's", name, port, got, name)
		}
	}
	run("portb", "8090:8080", "8091:8080")
	for _, port := range []string{"8090", "8091"} {
		if got := claimOf(port); got != "portb" {
			t.Errorf("claim of port %s after portb started: %q, want portb's", port, got)
		}
		if got := fetch(t, "netb", "http://"+uplinkAddr+":"+port+"/"); got != "portb" {
			t.Errorf("port %s answered %q, want portb", port, got)
		}
	}
}

// checkRestartKeepsNetwork restarts running container name: its release
// unit, which the end of the last run starts, meets the next run's
// launcher, and a release after that launcher has joined (a late one, by
// hand) must not take what the new run holds. name still reaches the
// outside through its own lease and veth.
func checkRestartKeepsNetwork(t *testing.T, name string) {
	t.Helper()
	release := spec.ReleaseUnitName(name, false)
	before := show(t, release, "ExecMainStartTimestampMonotonic")
	must(t, "systemctl", "restart", spec.UnitName(name))
	eventually(t, 10*time.Second, "the release unit of "+name+"'s last run to run", func() bool {
		return show(t, release, "ExecMainStartTimestampMonotonic") != before && show(t, release, "ActiveState") == "inactive"
	})
	if r := show(t, release, "Result"); r != "success" {
		t.Errorf("%s: result %s", release, r)
	}
	mustCove(t, launch.NetworkReleaseVerb, name)
	leases := leaseFiles(t)
	if len(leases) != 1 || strings.TrimSpace(must(t, "cat", filepath.Join(leaseDir, leases[0]))) != name {
		t.Fatalf("leases after %s restarted and a late release: %v, want one of %s", name, leases, name)
	}
	if r := inside(t, "ip", "link", "show", plan.HostIfName("cove", name)); r.Code != 0 {
		t.Errorf("host end of %s's veth gone after a late release: %s", name, r.Stderr)
	}
	if got := fetch(t, name, fmt.Sprintf("http://%s:9000/", outsideAddr)); got != uplinkAddr {
		t.Errorf("after its restart and a late release, the outside server saw %s as %q, want %s", name, got, uplinkAddr)
	}
}

// runOnNetwork runs a busybox httpd container on network cove that serves
// its hostname, removes it when the test ends, and returns its address,
// checked against eth0 and its lease file.
func runOnNetwork(t *testing.T, name, restart string) netip.Addr {
	t.Helper()
	t.Cleanup(func() { inside(t, coveBin, "rm", name) })
	mustCove(t, "run", "-d", "--name", name, "--rootfs", rootfs, "--volatile", "--network", "cove", "--restart", restart, "--stop-timeout", "2s",
		"--", "/bin/sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www")
	if u := show(t, "cove-"+name+".service", "Requires"); !strings.Contains(u, networkUnit) {
		t.Errorf("cove-%s.service: Requires=%s, want %s", name, u, networkUnit)
	}
	out := mustCove(t, "exec", name, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	m := regexp.MustCompile(`inet (10\.77\.[0-9]+\.[0-9]+)/16`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s's eth0 has no address of 10.77.0.0/16:\n%s", name, out)
	}
	addr := netip.MustParseAddr(m[1])
	if got := strings.TrimSpace(must(t, "cat", filepath.Join(leaseDir, addr.String()))); got != name {
		t.Errorf("lease of %s names %q, want %s", addr, got, name)
	}
	if r := inside(t, "ip", "link", "show", plan.HostIfName("cove", name)); r.Code != 0 {
		t.Errorf("host end %s of %s's veth is missing: %s", plan.HostIfName("cove", name), name, r.Stderr)
	}
	return addr
}

// fetch runs wget inside container name, retrying (bounded) until the
// server listens, and returns the page's first line.
func fetch(t *testing.T, name, url string) string {
	t.Helper()
	var r result
	for range 50 {
		r = inside(t, coveBin, "exec", name, "--", "wget", "-O", "-", url) // busybox 1.35 wget -T segfaults
		if r.Code == 0 {
			return strings.TrimSpace(r.Stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dbg := inside(t, coveBin, "exec", name, "--", "sh", "-c", "ip addr; ip route; wget -O - "+url+"; echo rc=$?")
	t.Fatalf("%s: wget %s: exit %d: %s\n%s%s", name, url, r.Code, r.Stderr, dbg.Stdout, dbg.Stderr)
	return ""
}

// assertReleased checks that what container name took on network cove
// goes after its unit has ended, in its release unit
// (spec.ReleaseUnitName: after a success or a failure), and not in the unit's own stop: the unit's
// ExecStopPost= (if any) does not release the network, the release unit
// has not failed, and name's lease of addr and the host end of its veth
// go.
func assertReleased(t *testing.T, name string, addr netip.Addr) {
	t.Helper()
	if post := show(t, spec.UnitName(name), "ExecStopPost"); strings.Contains(post, "--network") || strings.Contains(post, launch.NetworkReleaseVerb) {
		t.Errorf("%s: ExecStopPost=%s releases the network, want its release unit to", spec.UnitName(name), post)
	}
	releases := []string{spec.ReleaseUnitName(name, false), spec.ReleaseUnitName(name, true)}
	eventually(t, 10*time.Second, "the lease of "+name+" to go and its release to end", func() bool {
		return inside(t, "test", "-e", filepath.Join(leaseDir, addr.String())).Code != 0 &&
			show(t, releases[0], "ActiveState") != "activating" && show(t, releases[1], "ActiveState") != "activating"
	})
	for _, u := range releases {
		if st := show(t, u, "ActiveState"); st == "failed" {
			t.Errorf("%s failed:\n%s", u, inside(t, "systemctl", "status", "--no-pager", u).Stdout)
		}
	}
	assertLeft(t, name, addr)
}

// assertLeft checks that name's lease of addr on network cove and its
// link (the host end of its veth, or its tap) are gone.
func assertLeft(t *testing.T, name string, addr netip.Addr) {
	t.Helper()
	if r := inside(t, "test", "-e", filepath.Join(leaseDir, addr.String())); r.Code == 0 {
		t.Errorf("lease %s of stopped %s is still there", addr, name)
	}
	eventually(t, 5*time.Second, "the link of "+name+" to go", func() bool {
		return inside(t, "ip", "link", "show", plan.HostIfName("cove", name)).Code != 0
	})
}

// eventuallyNoLeases waits (up to 10 s) for the release units of the
// workloads that ended last (a --rm run's, say) to give their leases back.
func eventuallyNoLeases(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(leaseFiles(t)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// leaseFiles lists the addresses leased on the default network.
func leaseFiles(t *testing.T) []string {
	t.Helper()
	out := inside(t, "ls", leaseDir).Stdout
	return strings.Fields(out)
}

// show reads one property of a unit with systemctl show.
func show(t *testing.T, unit, prop string) string {
	t.Helper()
	return strings.TrimSpace(inside(t, "systemctl", "show", "-p", prop, "--value", unit).Stdout)
}

// checkNoLeftovers removes the workloads' network and checks that
// nothing cove made is left: no lease, no cove0 or veth, no table.
// It runs after the workloads' and the outside's cleanups.
func checkNoLeftovers(t *testing.T) {
	t.Helper()
	must(t, "systemctl", "stop", networkUnit)
	eventuallyNoLeases(t)
	if leases := leaseFiles(t); len(leases) != 0 {
		t.Errorf("leases left: %v", leases)
	}
	if out := must(t, "nft", "list", "tables"); strings.TrimSpace(out) != "" {
		t.Errorf("nftables tables left:\n%s", out)
	}
	if ls := links(t); len(ls) != 1 || ls[0] != "lo" {
		t.Errorf("links left in the sandbox: %v, want only lo", ls)
	}
	assertClosedWorld(t)
}

// TestLauncherKilled kills the launcher (SIGKILL, through the failpoint
// network.FailpointEnv in the test systemd's environment) right after
// each stage of joining the network: the start fails, and the unit's
// release unit (started by its OnFailure=) gives back the lease, the port
// claim, the veth and the workload's tables, whatever the launcher had
// taken by then.
func TestLauncherKilled(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	for i, stage := range []string{"lease", "claim", "link", "tables"} {
		name := "killed-" + stage
		t.Cleanup(func() { inside(t, coveBin, "rm", name) })
		must(t, "systemctl", "set-environment", network.FailpointEnv+"="+stage)
		r := inside(t, coveBin, "run", "-d", "--name", name, "--rootfs", rootfs, "--volatile", "--network", "cove",
			"-p", fmt.Sprintf("%d:80", 8100+i), "--", "/bin/sleep", "100")
		must(t, "systemctl", "unset-environment", network.FailpointEnv)
		if r.Code == 0 {
			t.Errorf("%s: cove run succeeded although the launcher was killed after %s", name, stage)
		}
		eventually(t, 10*time.Second, name+"'s release unit to give its lease back", func() bool {
			return len(leaseFiles(t)) == 0 && show(t, spec.ReleaseUnitName(name, true), "ActiveState") == "inactive"
		})
		if r := show(t, spec.ReleaseUnitName(name, true), "Result"); r != "success" {
			t.Errorf("%s: %s: result %s", name, spec.ReleaseUnitName(name, true), r)
		}
		if r := inside(t, "ip", "link", "show", plan.HostIfName("cove", name)); r.Code == 0 {
			t.Errorf("%s: veth %s left", name, plan.HostIfName("cove", name))
		}
		if out := must(t, "nft", "list", "tables"); strings.Contains(out, plan.WorkloadTableName(name)) {
			t.Errorf("%s: its tables are left:\n%s", name, out)
		}
		if out := must(t, "sh", "-c", "find /run/cove/ports -type f ! -name lock 2>/dev/null"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: port claims left: %s", name, out)
		}
	}
}
