package nettest

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestConnect: a running container joins a network besides its own with
// cove network connect (eth1, an address of it, its subnet's route, no
// second default route), reaches and resolves the workloads there, and
// keeps its published port on its first network; it cannot join twice
// nor leave its first network; docker network disconnect and connect
// (the real CLI through the API) take the link away and give it back;
// stopping the container gives back the connected network's lease and
// link too.
func TestConnect(t *testing.T) {
	twoNetworks(t, "cfront", "10.84.0.0/24", "cback", "10.85.0.0/24")
	db := runServer(t, "cdb", "cback")
	runServer(t, "cweb", "cfront", "-p", "8087:8080")
	if got := lookup(t, "cweb", "cdb."); got != "" {
		t.Fatalf("cweb, on cfront only, resolved cdb to %s before the connect", got)
	}
	if r := inside(t, coveBin, "network", "connect", "--alias", "bad\nname", "cback", "cweb"); r.Code == 0 || !strings.Contains(r.Stderr, "an alias is") {
		t.Errorf("cove network connect with a bad alias: exit %d, %q", r.Code, r.Stderr)
	}
	mustCove(t, "network", "connect", "--alias", "Front-Door", "cback", "cweb")
	checkConnected(t, true)
	if got := lookup(t, "cweb", "cdb."); got != db.String() {
		t.Errorf("cweb resolving cdb after the connect: %q, want %v", got, db)
	}
	web := lookup(t, "cdb", "cweb.")
	if got := lookup(t, "cdb", "front-door."); got == "" || got != web {
		t.Errorf("cdb resolving cweb's alias from the connect: %q, want cweb's address there %q", got, web)
	}
	if got := strings.TrimSpace(busybox(t, "", "wget", "-q", "-O", "-", "http://127.0.0.1:8087/").Stdout); got != "cweb" {
		t.Errorf("cweb's published port after the connect: %q, want cweb", got)
	}
	for args, want := range map[[2]string]string{{"connect", "cback"}: "on that network already", {"disconnect", "cfront"}: "its first network"} {
		if r := inside(t, coveBin, "network", args[0], args[1], "cweb"); r.Code == 0 || !strings.Contains(r.Stderr, want) {
			t.Errorf("cove network %s %s cweb: exit %d, %q; want a refusal saying %q", args[0], args[1], r.Code, r.Stderr, want)
		}
	}
	docker := dockerCLI(t)
	for _, args := range [][]string{{"disconnect", "cback", "cweb"}, {"connect", "--alias", "side", "cback", "cweb"}} {
		if r := docker(append([]string{"network"}, args...)...); r.Code != 0 {
			t.Fatalf("docker network %s: exit %d: %s%s", args, r.Code, r.Stdout, r.Stderr)
		}
		checkConnected(t, args[0] == "connect")
	}
	if got := lookup(t, "cdb", "side."); got == "" {
		t.Error("cdb does not resolve cweb's alias from docker network connect --alias")
	}
	mustCove(t, "stop", "cweb")
	// Its release unit gives both networks back after its unit has ended.
	eventually(t, 10*time.Second, "cweb's link and lease on cback to go after it stopped", func() bool {
		return inside(t, "ip", "link", "show", plan.HostIfName("cback", "cweb")).Code != 0 &&
			strings.TrimSpace(must(t, "sh", "-c", "grep -rlx cweb /run/cove/networks/cback/leases || true")) == ""
	})
}

// checkConnected checks cweb's link on cback, from inside (eth1 with an
// address of cback and its subnet's route, one default route, via eth0;
// cdb answers on its name) and on the host (the link, its rules in
// cweb's bridge table), or that none of it is there.
func checkConnected(t *testing.T, on bool) {
	t.Helper()
	addr := inside(t, coveBin, "exec", "cweb", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth1").Stdout
	routes := mustCove(t, "exec", "cweb", "--", "ip", "-4", "route")
	table := must(t, "nft", "list", "table", "bridge", plan.WorkloadTableName("cweb"))
	has := regexp.MustCompile(`inet 10\.85\.0\.\d+/24`).MatchString(addr) && regexp.MustCompile(`(?m)^10\.85\.0\.0/24 dev eth1`).MatchString(routes) &&
		strings.Contains(table, plan.HostIfName("cback", "cweb")) && fetch(t, "cweb", "http://cdb:8080/") == "cdb"
	gone := addr == "" && !strings.Contains(routes, "10.85.0.0/24") && !strings.Contains(table, plan.HostIfName("cback", "cweb"))
	if on && !has || !on && !gone {
		t.Errorf("cweb on cback (want %v): eth1 %q, routes\n%s\nbridge table\n%s", on, addr, routes, table)
	}
	if !regexp.MustCompile(`(?m)^default via 10\.84\.0\.1 dev eth0`).MatchString(routes) || strings.Count(routes, "default") != 1 {
		t.Errorf("cweb's default route is not its first network's alone:\n%s", routes)
	}
}
