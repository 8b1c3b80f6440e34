package network

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/cove-project/cove/internal/network/plan"
)

// publishing is a sandbox with the outside, the default network, and
// two containers on it, web (serving TCP on port 80 and UDP on port 53
// of both its addresses) and db.
type publishing struct {
	n              plan.Network
	host, world    netns.NsHandle
	nsWeb, nsDB    netns.NsHandle
	web            Attachment
	gw4, gw6, loop netip.Addr
}

// newPublishing sets up a publishing sandbox.
func newPublishing(t *testing.T) publishing {
	t.Helper()
	sandbox(t)
	s := publishing{n: plan.Default(), host: thisNS(t), world: outside(t, 9)}
	l := Leases{Root: t.TempDir()}
	must(t, EnsureBridge(s.n))
	must(t, Setup(s.n))
	s.nsWeb, s.web = container(t, l, s.n, "web")
	s.nsDB, _ = container(t, l, s.n, "db")
	for _, a := range []netip.Addr{s.web.Addr4, s.web.Addr6} {
		serve(t, s.nsWeb, a, 80)
		serveUDP(t, s.nsWeb, a, 53)
	}
	s.gw4, s.gw6, s.loop = s.n.Gateway4, s.n.Gateway6, netip.MustParseAddr("127.0.0.1")
	assertRoutes(t, "lo", "up0", s.n.Bridge, "cv*")
	return s
}

// published are web's ports: 8080 on every address, 8081 on uplink4
// only, 8082 on uplink6 only, and 5353/udp.
var published = []plan.Port{
	{HostPort: 8080, ContainerPort: 80, Proto: plan.TCP},
	{HostAddr: uplink4, HostPort: 8081, ContainerPort: 80, Proto: plan.TCP},
	{HostAddr: uplink6, HostPort: 8082, ContainerPort: 80, Proto: plan.TCP},
	{HostPort: 5353, ContainerPort: 53, Proto: plan.UDP},
}

// reachable are the probes that published makes answer, with the
// source address web sees: the client's own from the outside and from
// the host's uplink addresses, the gateway's when masqueraded (from
// 127.0.0.1, and hairpinned from a container of the network, web itself
// too).
func (s publishing) reachable() []probe {
	return []probe{
		{what: "outside -> uplink", from: s.world, to: uplink4, port: 8080, seen: outside4},
		{what: "outside -> uplink6", from: s.world, to: uplink6, port: 8080, seen: outside6},
		{what: "outside -> uplink (udp)", from: s.world, to: uplink4, port: 5353, proto: plan.UDP, seen: outside4},
		{what: "outside -> uplink6 (udp)", from: s.world, to: uplink6, port: 5353, proto: plan.UDP, seen: outside6},
		{what: "outside -> uplink4 only", from: s.world, to: uplink4, port: 8081, seen: outside4},
		{what: "outside -> uplink6 only", from: s.world, to: uplink6, port: 8082, seen: outside6},
		{what: "host -> uplink", from: s.host, to: uplink4, port: 8080, seen: uplink4},
		{what: "host -> uplink6", from: s.host, to: uplink6, port: 8080, seen: uplink6},
		{what: "host -> 127.0.0.1", from: s.host, to: s.loop, port: 8080, seen: s.gw4},
		{what: "host -> 127.0.0.1 (udp)", from: s.host, to: s.loop, port: 5353, proto: plan.UDP, seen: s.gw4},
		{what: "db -> uplink (hairpin)", from: s.nsDB, to: uplink4, port: 8080, seen: s.gw4},
		{what: "db -> uplink6 (hairpin)", from: s.nsDB, to: uplink6, port: 8080, seen: s.gw6},
		{what: "db -> uplink4 only (hairpin)", from: s.nsDB, to: uplink4, port: 8081, seen: s.gw4},
		{what: "web -> uplink (hairpin to itself)", from: s.nsWeb, to: uplink4, port: 8080, seen: s.gw4},
		{what: "web -> uplink6 (hairpin to itself)", from: s.nsWeb, to: uplink6, port: 8080, seen: s.gw6},
	}
}

// TestPublishedPorts: a published port answers from the outside on the
// host's uplink addresses (IPv4 and IPv6, TCP and UDP), from the host
// itself on those and on 127.0.0.1 (not on ::1: IPv6 has no
// route_localnet), and from containers of the network through a host
// address, to another container and to itself; a port bound to one host
// address answers on no other; after
// TeardownWorkload nothing answers and the workload's tables are gone.
func TestPublishedPorts(t *testing.T) {
	s := newPublishing(t)
	expectBlocked(t, s.reachable()[:3]...) // control: nothing is published yet
	for range 2 {                          // idempotent
		must(t, SetupWorkload("web", []plan.Endpoint{s.web.Endpoint(s.n)}, published))
	}
	expectReach(t, s.reachable()...)
	expectBlocked(t,
		probe{what: "outside -> uplink6, port bound to uplink4", from: s.world, to: uplink6, port: 8081},
		probe{what: "outside -> uplink4, port bound to uplink6", from: s.world, to: uplink4, port: 8082},
		probe{what: "host -> 127.0.0.1, port bound to uplink4", from: s.host, to: s.loop, port: 8081},
		probe{what: "db -> gateway, port bound to uplink4", from: s.nsDB, to: s.gw4, port: 8081},
		probe{what: "outside -> uplink, port not published", from: s.world, to: uplink4, port: 8083},
		probe{what: "host -> ::1", from: s.host, to: netip.IPv6Loopback(), port: 8080},
	)
	wl := plan.WorkloadTableName("web")
	if got, _ := Tables(); !slices.Equal(got, []string{"bridge " + wl, "inet " + plan.TableName(s.n.Name), "inet " + wl}) {
		t.Errorf("tables with web published: %v", got)
	}
	for range 2 { // idempotent
		must(t, TeardownWorkload("web"))
	}
	expectBlocked(t, s.reachable()...)
	if got, _ := Tables(); !slices.Equal(got, []string{"inet " + plan.TableName(s.n.Name)}) {
		t.Errorf("tables after TeardownWorkload: %v, want only the network's", got)
	}
}

// TestSetupWorkloadReplaces: SetupWorkload replaces the workload's
// tables whole: without ports there is no inet table, and a port that is
// no longer published stops answering.
func TestSetupWorkloadReplaces(t *testing.T) {
	s := newPublishing(t)
	ep := []plan.Endpoint{s.web.Endpoint(s.n)}
	must(t, SetupWorkload("web", ep, published[:1]))
	expectReach(t, probe{what: "outside -> 8080", from: s.world, to: uplink4, port: 8080})
	must(t, SetupWorkload("web", ep, published[1:2]))
	expectReach(t, probe{what: "outside -> 8081", from: s.world, to: uplink4, port: 8081})
	expectBlocked(t, probe{what: "outside -> 8080, no longer published", from: s.world, to: uplink4, port: 8080})
	must(t, SetupWorkload("web", ep, nil))
	wl := plan.WorkloadTableName("web")
	if got, _ := Tables(); !slices.Equal(got, []string{"bridge " + wl, "inet " + plan.TableName(s.n.Name)}) {
		t.Errorf("tables of a workload without ports: %v, want its bridge table only", got)
	}
	expectBlocked(t, probe{what: "outside -> 8081, no longer published", from: s.world, to: uplink4, port: 8081})
	must(t, TeardownWorkload("web"))
}
