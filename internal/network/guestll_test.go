package network

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestGuestLinkLocalLearnt: a VM's guest keeps the first link-local
// address it uses (one of stable privacy here, not its MAC's), and the
// other guests cannot take it. Once vm has sent from guestLL, its
// datagram from a second address is dropped, eve's from guestLL no
// longer reaches the host, and eve2's advertisement of it (from eve2's
// own address, whose datagram still arrives) no longer moves the host's
// entry; an address learnt from a duplicate address detection probe is
// the prober's as well: eve3's datagram from it is dropped. Without the
// tables (the control, first) each of them passes.
func TestGuestLinkLocalLearnt(t *testing.T) {
	sandbox(t)
	n, l := plan.Default(), Leases{Root: t.TempDir()}
	must(t, EnsureBridge(n))
	must(t, Setup(n))
	second, probed := netip.MustParseAddr("fe80::1111:2222:3333:4444"), netip.MustParseAddr("fe80::dad:1:2:3")
	guests := map[string]*tapGuest{}
	for _, name := range []string{"vm", "eve", "eve2", "eve3", "dad"} {
		guests[name] = attachGuest(t, l, n, name)
	}
	vm, eve, eve2, eve3, dad := guests["vm"], guests["eve"], guests["eve2"], guests["eve3"], guests["dad"]
	br, err := netlink.LinkByName(n.Bridge)
	must(t, err)
	waitBridgeLinkLocal(t, br)
	type passed struct{ second, eve, advert, probed bool }
	attempts := func() passed {
		return passed{
			second: vm.datagram(t, n, second),
			eve:    eve.datagram(t, n, guestLL),
			advert: advertMoves(t, br, eve2, guestLL, vm.at.MAC),
			probed: eve3.datagram(t, n, probed),
		}
	}
	if p := attempts(); p != (passed{true, true, true, true}) {
		t.Fatalf("control: without the tables an attempt failed: %+v", p)
	}
	for _, g := range guests {
		must(t, SetupWorkload(g.name, []plan.Endpoint{g.at.Endpoint(n)}, nil))
	}
	if !vm.datagram(t, n, guestLL) {
		t.Fatal("with the tables, vm's datagram from its first link-local address did not reach the host")
	}
	if !eve2.datagram(t, n, eve2LL) {
		t.Fatal("with the tables, eve2's datagram from its first link-local address did not reach the host")
	}
	_, err = dad.tap.Write(probeFrame(dad.at.MAC, probed))
	must(t, err)
	p := attempts()
	noneSucceeds(t,
		attempt{p.second, "vm's datagram from a second link-local address reached the host"},
		attempt{p.eve, "eve's datagram from vm's link-local address reached the host"},
		attempt{p.advert, "the host took eve2's advertisement of vm's link-local address"},
		attempt{p.probed, "eve3's datagram from the address dad probed for reached the host"},
	)
	if !vm.datagram(t, n, guestLL) {
		t.Error("vm's datagram from its own link-local address no longer reaches the host")
	}
	for _, g := range guests {
		must(t, TeardownWorkload(g.name))
		must(t, Detach(n, g.name))
	}
}

// tapGuest is a simulated VM guest: its workload's tap, attached as a
// VM's is, and the test's end of it.
type tapGuest struct {
	name string
	at   Attachment
	tap  *os.File
}

// attachGuest attaches a tap for VM name to n and waits until the bridge
// forwards what it sends (arpGateway).
func attachGuest(t *testing.T, l Leases, n plan.Network, name string) *tapGuest {
	t.Helper()
	a, err := l.Allocate(n, name, netip.Addr{})
	must(t, err)
	at, err := AttachTap(n, name, a, plan.WorkloadMAC(n.Name, name))
	must(t, err)
	g := &tapGuest{name: name, at: at, tap: openTap(t, at.HostIf)}
	must(t, arpGateway(g.tap, at.MAC, at.Addr4, n))
	return g
}

// datagram says whether a datagram the guest sends from src reaches the
// host (guestDatagram).
func (g *tapGuest) datagram(t *testing.T, n plan.Network, src netip.Addr) bool {
	t.Helper()
	return guestDatagram(t, g.tap, g.at.MAC, src, n)
}

// advertMoves gives the bridge br a stale neighbour entry for a at mac,
// has guest g advertise a as its own (unsolicited, override; from
// eve2LL's) and says whether the entry moved to g's MAC.
func advertMoves(t *testing.T, br netlink.Link, g *tapGuest, a netip.Addr, mac plan.MAC) bool {
	t.Helper()
	onBridge := func(f func(netlink.Link) error) error { return f(br) }
	return advertisementMoves(t, onBridge, a, mac, g.at.MAC, func() {
		na := append([]byte{plan.NDNeighborAdvert, 0, 0, 0, 0x20, 0, 0, 0}, a.AsSlice()...) // override, not solicited
		na = append(append(na, 2, 1), g.at.MAC[:]...)                                       // target link-layer address option
		allNodes := plan.MAC{0x33, 0x33, 0, 0, 0, 1}
		_, err := g.tap.Write(ip6Frame(g.at.MAC, allNodes, eve2LL, netip.MustParseAddr("ff02::1"), unix.IPPROTO_ICMPV6, na, 2))
		must(t, err)
		time.Sleep(200 * time.Millisecond)
	})
}

// eve2LL is the link-local address eve2 uses (stable privacy).
var eve2LL = netip.MustParseAddr("fe80::e2e2:1:2:3")

// probeFrame is a duplicate address detection probe from MAC sha for
// target: a neighbour solicitation from :: to target's solicited-node
// group.
func probeFrame(sha plan.MAC, target netip.Addr) []byte {
	t := target.As16()
	group := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]})
	ns := append([]byte{plan.NDNeighborSolicit, 0, 0, 0, 0, 0, 0, 0}, t[:]...)
	return ip6Frame(sha, plan.MAC{0x33, 0x33, 0xff, t[13], t[14], t[15]}, netip.IPv6Unspecified(), group, unix.IPPROTO_ICMPV6, ns, 2)
}
