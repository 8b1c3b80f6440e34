package dns

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
)

// peerZone is a mapZone whose askers may have peer zones (Peers).
type peerZone struct {
	*mapZone
	peers map[netip.Addr][]Zone
}

func (z peerZone) ZonesOf(asker netip.Addr) []Zone { return z.peers[asker] }

// TestPeers: a name the zone does not hold is answered from the zones of
// the asker's other networks, NAME and NAME.NETWORK, authoritatively
// there; an asker without peers gets them forwarded.
func TestPeers(t *testing.T) {
	db := []netip.Addr{netip.MustParseAddr("10.78.0.2")}
	back := &mapZone{domain: "back", names: map[string][]netip.Addr{"db": db, "db.back": db, "back": nil}}
	up := startUpstream(t, func(req *mdns.Msg) *mdns.Msg { return reply(req, mdns.RcodeNameError) })
	zone := peerZone{testZone(), map[netip.Addr][]Zone{}}
	r := startResponder(t, Config{Zone: zone, Upstreams: []netip.AddrPort{up.addr}})
	if m := query(t, "udp", r.addr, "db.", mdns.TypeA); m.Authoritative || m.Rcode != mdns.RcodeNameError {
		t.Errorf("db from an asker on one network: %s authoritative %v, want the upstream's NXDOMAIN", mdns.RcodeToString[m.Rcode], m.Authoritative)
	}
	zone.peers[netip.MustParseAddr("127.0.0.1")] = []Zone{back}
	for _, name := range []string{"db.", "db.back.", "web."} {
		want := "10.78.0.2"
		if name == "web." {
			want = "10.77.0.2" // its own network's first
		}
		if m := query(t, "udp", r.addr, name, mdns.TypeA); m.Rcode != mdns.RcodeSuccess || !slices.Equal(addrs(m), []string{want}) {
			t.Errorf("%s from an asker also on back: %s %v, want %s", name, mdns.RcodeToString[m.Rcode], addrs(m), want)
		}
	}
	if m := query(t, "udp", r.addr, "nothere.back.", mdns.TypeA); !m.Authoritative || m.Rcode != mdns.RcodeNameError {
		t.Errorf("nothere.back.: %s authoritative %v, want back's NXDOMAIN", mdns.RcodeToString[m.Rcode], m.Authoritative)
	}
}

// TestLeaseZoneOf: a LeaseZone's peers are the other declared networks
// where the workload holding the asker's address (IPv4 or its IPv6
// twin) holds a lease; an address nobody holds has none.
func TestLeaseZoneOf(t *testing.T) {
	dir := t.TempDir()
	cat := network.Catalog{Dir: filepath.Join(dir, "networks")}
	leases := network.Leases{Root: filepath.Join(dir, "leases")}
	if err := os.MkdirAll(cat.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, subnet := range map[string]string{"back": "10.78.0.0/24", "metrics": "10.79.0.0/24"} {
		if err := os.WriteFile(cat.Path(name), []byte("version = 1\nkind = \"network\"\n[network]\nsubnet4 = \""+subnet+"\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	front := plan.Default()
	backNet, err := cat.Named("back")
	if err != nil {
		t.Fatal(err)
	}
	lease := func(n plan.Network, w string) netip.Addr {
		a, err := leases.Allocate(n, w, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	api, web := lease(front, "api"), lease(front, "web")
	lease(backNet, "api")
	z := LeaseZone{Network: front, Leases: leases, Catalog: &cat}
	for _, c := range []struct {
		asker netip.Addr
		want  []string
	}{
		{api, []string{"back"}},
		{plan.Addr6For(front, api), []string{"back"}},
		{web, nil},
		{netip.MustParseAddr("10.77.0.250"), nil},
	} {
		var got []string
		for _, p := range z.ZonesOf(c.asker) {
			got = append(got, p.(LeaseZone).Network.Name)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("peers of %v: %v, want %v", c.asker, got, c.want)
		}
	}
	if (LeaseZone{Network: front, Leases: leases}).ZonesOf(api) != nil {
		t.Errorf("a LeaseZone without a catalog has peers")
	}
}
