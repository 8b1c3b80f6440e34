package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestLookup: a view of leases and claims in temporary directories says
// which networks a workload is on, with the IPv6 address, MAC and host
// interface that go with its lease, which ports it publishes (an older
// claim without the container port: the host side), and who is on a
// network; a broken network file and an undeclared network's leases are
// left out.
func TestLookup(t *testing.T) {
	dir := t.TempDir()
	l := Lookup{Catalog: Catalog{Dir: filepath.Join(dir, "networks")}, Leases: Leases{Root: filepath.Join(dir, "leases")}, Ports: PortClaims{Root: filepath.Join(dir, "ports")}}
	must(t, os.MkdirAll(l.Catalog.Dir, 0o755))
	must(t, os.WriteFile(l.Catalog.Path("web"), []byte("version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.78.0.0/24\"\n"), 0o644))
	must(t, os.WriteFile(l.Catalog.Path("broken"), []byte("version = 1\nkind = \"network\"\n"), 0o644))
	cove, web := plan.Default(), mustNamed(t, l.Catalog, "web")
	lease := func(n plan.Network, workload string) netip.Addr {
		a, err := l.Leases.Allocate(n, workload, netip.Addr{})
		must(t, err)
		return a
	}
	a1, a2, b1 := lease(cove, "a"), lease(web, "a"), lease(cove, "b")
	lease(plan.Complete(plan.Network{Name: "gone", Subnet4: netip.MustParsePrefix("10.79.0.0/24")}), "a")
	must(t, l.Ports.Claim("a", ports(t, "8080:80", "127.0.0.1:5353:53/udp")))
	must(t, os.WriteFile(filepath.Join(l.Ports.Root, "tcp-any-9090"), []byte("b\n"), 0o644)) // an earlier cove's claim: no container port

	v, err := l.Read()
	must(t, err)
	if got := names(v.Networks); !reflect.DeepEqual(got, []string{"cove", "web"}) {
		t.Errorf("networks %v, want cove and web (broken left out)", got)
	}
	want := []plan.Endpoint{
		{Network: cove, HostIf: plan.HostIfName("cove", "a"), Addr4: a1, Addr6: plan.Addr6For(cove, a1), MAC: plan.WorkloadMAC("cove", "a")},
		{Network: web, HostIf: plan.HostIfName("web", "a"), Addr4: a2, Addr6: plan.Addr6For(web, a2), MAC: plan.WorkloadMAC("web", "a")},
	}
	if got := v.Endpoints("a"); !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints of a:\n%+v\nwant\n%+v", got, want)
	}
	wantPorts := []plan.Port{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Proto: "udp"}}
	if got := v.Published("a"); !reflect.DeepEqual(got, wantPorts) {
		t.Errorf("ports of a: %v, want %v", got, wantPorts)
	}
	if got := v.Published("b"); !reflect.DeepEqual(got, []plan.Port{{HostPort: 9090, Proto: "tcp"}}) {
		t.Errorf("ports of b: %v, want host port 9090 without its container port", got)
	}
	if got := v.Published("c"); len(got) != 0 {
		t.Errorf("ports of c: %v, want none", got)
	}
	ms := v.Members("cove")
	if len(ms) != 2 || ms[0].Workload != "a" || ms[0].Endpoint.Addr4 != a1 || ms[1].Workload != "b" || ms[1].Endpoint.Addr4 != b1 {
		t.Errorf("members of cove: %+v, want a at %v and b at %v", ms, a1, b1)
	}
	if ms := v.Members("gone"); ms != nil {
		t.Errorf("members of an undeclared network: %+v", ms)
	}
}

// mustNamed is network name of c, failing the test on an error.
func mustNamed(t *testing.T, c Catalog, name string) plan.Network {
	t.Helper()
	n, err := c.Named(name)
	must(t, err)
	return n
}

// names are the names of nets.
func names(nets []plan.Network) []string {
	var ns []string
	for _, n := range nets {
		ns = append(ns, n.Name)
	}
	return ns
}
