package nettest

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestMoreNetworks: a container (svc) on two networks (container.networks,
// cove run --also-network) has eth0 on the first with the default route
// and eth1 on the second with only its subnet's route; it resolves and
// reaches the workloads of both (NAME and NAME.NETWORK), while a workload
// on one of them still neither resolves nor reaches one on the other;
// its published port leads to its first network's address, also after
// the tables are flushed and restored (which keep the anti-spoofing of
// both its links); stopping it gives back both leases and both links.
func TestMoreNetworks(t *testing.T) {
	twoNetworks(t, "mfront", "10.82.0.0/24", "mback", "10.83.0.0/24")
	db := runServer(t, "db", "mback")
	edge := runServer(t, "edge", "mfront")
	svc := runServer(t, "svc", "mfront", "--also-network", "mback", "-p", "8086:8080")
	if !netip.MustParsePrefix("10.82.0.0/24").Contains(svc) {
		t.Errorf("svc's eth0 has %v, want an address of mfront", svc)
	}
	checkSecondNIC(t)
	// "db." is absolute: busybox's nslookup tries only the search list
	// (the first network) for "db", where libc goes on to the name itself
	// (as wget does below).
	for name, want := range map[string]netip.Addr{"db.": db, "db.mback": db, "edge": edge, "edge.mfront": edge} {
		if got := lookup(t, "svc", name); got != want.String() {
			t.Errorf("svc resolving %s: %q, want %v", name, got, want)
		}
	}
	if got := fetch(t, "svc", "http://db:8080/"); got != "db" {
		t.Errorf("svc fetching http://db:8080/ on its second network: %q, want db", got)
	}
	for _, name := range []string{"db.", "db.mback"} {
		if got := lookup(t, "edge", name); got != "" {
			t.Errorf("edge, on mfront only, resolved %s to %s", name, got)
		}
	}
	checkIsolated(t, "edge", db)
	checkIsolated(t, "db", edge)
	checkMultiRestore(t)
	mustCove(t, "rm", "svc")
	for _, n := range []string{"mfront", "mback"} {
		if r := inside(t, "ip", "link", "show", plan.HostIfName(n, "svc")); r.Code == 0 {
			t.Errorf("svc's link on %s is still there after cove rm", n)
		}
		if out := must(t, "sh", "-c", "grep -rlx svc /run/cove/networks/"+n+"/leases || true"); strings.TrimSpace(out) != "" {
			t.Errorf("svc still leases on %s after cove rm: %s", n, out)
		}
	}
}

// twoNetworks creates networks a and b with the given subnets, removed
// (and nothing of cove's left, checked) when the test ends.
func twoNetworks(t *testing.T, a, subnetA, b, subnetB string) {
	t.Helper()
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoNetworkLeftovers(t, a, b) })
	journalOnFailure(t, 120)
	mustCove(t, "network", "create", "--subnet4", subnetA, a)
	mustCove(t, "network", "create", "--subnet4", subnetB, b)
}

// checkSecondNIC: svc's eth1 has an address of mback and the route of its
// subnet; the only default route is eth0's; cove status shows both
// networks in the order joined (not by name).
func checkSecondNIC(t *testing.T) {
	t.Helper()
	addr := mustCove(t, "exec", "svc", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth1")
	if !regexp.MustCompile(`inet 10\.83\.0\.\d+/24`).MatchString(addr) {
		t.Errorf("svc's eth1: %s, want an address of 10.83.0.0/24", addr)
	}
	routes := mustCove(t, "exec", "svc", "--", "ip", "-4", "route")
	if !regexp.MustCompile(`(?m)^default via 10\.82\.0\.1 dev eth0`).MatchString(routes) ||
		strings.Count(routes, "default") != 1 || !regexp.MustCompile(`(?m)^10\.83\.0\.0/24 dev eth1`).MatchString(routes) {
		t.Errorf("svc's routes: want one default via mfront's gateway on eth0 and mback's subnet on eth1:\n%s", routes)
	}
	st := mustCove(t, "status", "svc")
	if f, b := strings.Index(st, "mfront"), strings.Index(st, "mback"); f < 0 || b < 0 || f > b {
		t.Errorf("cove status svc does not show both networks, its first (mfront) first:\n%s", st)
	}
}

// checkMultiRestore: svc's published port answers through its first
// network's address; after nft flush ruleset and a reload of the
// networks' units it answers again, and its bridge table still filters
// what enters from both its links.
func checkMultiRestore(t *testing.T) {
	t.Helper()
	if got := strings.TrimSpace(busybox(t, "", "wget", "-q", "-O", "-", "http://127.0.0.1:8086/").Stdout); got != "svc" {
		t.Errorf("svc's published port from the host: %q, want svc", got)
	}
	must(t, "nft", "flush", "ruleset")
	for _, n := range []string{"mfront", "mback"} {
		must(t, "systemctl", "reload", "cove-network@"+n+".service")
	}
	if got := strings.TrimSpace(busybox(t, "", "wget", "-q", "-O", "-", "http://127.0.0.1:8086/").Stdout); got != "svc" {
		t.Errorf("svc's published port after flush and reload: %q, want svc", got)
	}
	table := must(t, "nft", "list", "table", "bridge", plan.WorkloadTableName("svc"))
	for _, n := range []string{"mfront", "mback"} {
		if !strings.Contains(table, plan.HostIfName(n, "svc")) {
			t.Errorf("after reload, svc's bridge table has no rules for its link on %s:\n%s", n, table)
		}
	}
}
