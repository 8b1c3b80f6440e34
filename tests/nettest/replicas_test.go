package nettest

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReplicasOnNetwork: each instance of a replicated workload on
// network cove has its own address and serves as itself; the workload's
// name resolves to all of them, and after cove scale down only to those
// left (the removed instances' leases are released). Nothing is left
// afterwards.
func TestReplicasOnNetwork(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	applySpec(t, "web", httpdSpec("", "replicas = 3"))
	runServer(t, "client", "cove")
	addrs := lookupAll(t, "client", "web")
	if len(addrs) != 3 {
		t.Fatalf("web resolves to %v, want the three instances' addresses", addrs)
	}
	for i, inst := range []string{"web@1", "web@2", "web@3"} {
		a := leaseOf(t, inst)
		if !slices.Contains(addrs, a.String()) {
			t.Errorf("%s's lease %v is not among web's addresses %v", inst, a, addrs)
		}
		if got, want := fetch(t, "client", "http://"+a.String()+":8080/"), "web-"+string(rune('1'+i)); got != want {
			t.Errorf("http://%v:8080/ (%s) answered %q, want %q", a, inst, got, want)
		}
	}
	mustCove(t, "scale", "web=1")
	eventually(t, 10*time.Second, "web to resolve to one instance", func() bool {
		return len(lookupAll(t, "client", "web")) == 1
	})
	if got := lookupAll(t, "client", "web"); len(got) != 1 || got[0] != leaseOf(t, "web@1").String() {
		t.Errorf("after cove scale web=1, web resolves to %v, want web@1's address", got)
	}
}

// lookupAll resolves name with nslookup inside container from and
// returns every IPv4 address of the answer, sorted.
func lookupAll(t *testing.T, from, name string) []string {
	t.Helper()
	r := inside(t, coveBin, "exec", from, "--", "nslookup", "-type=a", name)
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^Address:\s+([0-9.]+)$`).FindAllStringSubmatch(r.Stdout, -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	slices.Sort(out)
	return out
}
