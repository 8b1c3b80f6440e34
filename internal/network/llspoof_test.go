package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestLinkLocalSpoofing: the bridge and a container's eth0 get the
// link-local addresses of their MACs (plan.LinkLocal) even where the
// namespace's default is random ones, and once the workloads' bridge
// tables are there a container can no longer take the router's
// link-local address, another container's or one a VM's guest chose
// (stable privacy): mallory's unsolicited neighbour advertisement for
// bob's link-local address no longer moves the host's entry for it to
// mallory's MAC, one for the bridge's no longer moves bob's, one for the
// guest's no longer moves the host's, and a datagram from bob's or the
// guest's link-local address no longer reaches the host. Without the
// tables (the control, first) each of them does.
func TestLinkLocalSpoofing(t *testing.T) {
	sandbox(t)
	must(t, os.WriteFile("/proc/sys/net/ipv6/conf/default/addr_gen_mode", []byte("3"), 0)) // random
	n, l := plan.Default(), Leases{Root: t.TempDir()}
	must(t, EnsureBridge(n))
	must(t, Setup(n))
	nsM, m := randomLLContainer(t, l, n, "mallory")
	nsB, b := randomLLContainer(t, l, n, "bob")
	serve(t, nsB, b.Addr6, 80)
	router, bobLL := plan.LinkLocal(plan.BridgeMAC(n.Name)), plan.LinkLocal(b.MAC)
	br, err := netlink.LinkByName(n.Bridge)
	must(t, err)
	waitLinkLocal(t, nsM)
	waitLinkLocal(t, nsB)
	// The bridge's too: an advertisement for a tentative address of the
	// host's (the control's, below) fails its duplicate address detection;
	// and the kernel adds it only once the bridge has a port up.
	waitBridgeLinkLocal(t, br)
	checkContainerLinkLocals(t, br, router, nsB, b, m)
	must(t, InNetns(nsM, func() error { // bob's and the guest's addresses on mallory's eth0, to send from
		return onEth0(func(eth0 netlink.Link) error {
			for _, ll := range []netip.Addr{bobLL, guestLL} {
				a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(ll.AsSlice()), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
				if err := netlink.AddrAdd(eth0, a); err != nil {
					return err
				}
			}
			return staticNeighbour(eth0, router, plan.BridgeMAC(n.Name))
		})
	}))
	type spoofed struct{ hostMoved, bobMoved, received, guestMoved, guestReceived bool }
	spoofs := func() (s spoofed) {
		onBridge := func(f func(netlink.Link) error) error { return f(br) }
		onBob := func(f func(netlink.Link) error) error { return InNetns(nsB, func() error { return onEth0(f) }) }
		s.hostMoved = entryMoves(t, onBridge, bobLL, b.MAC, m, nsM)
		s.bobMoved = entryMoves(t, onBob, router, plan.BridgeMAC(n.Name), m, nsM)
		s.received = sentFromTo(t, nsM, bobLL, router, n.Bridge)
		s.guestMoved = entryMoves(t, onBridge, guestLL, plan.WorkloadMAC(n.Name, "vm"), m, nsM)
		s.guestReceived = sentFromTo(t, nsM, guestLL, router, n.Bridge)
		return s
	}
	if s := spoofs(); s != (spoofed{true, true, true, true, true}) {
		t.Fatalf("control: without the tables a spoof failed: %+v", s)
	}
	must(t, SetupWorkload("mallory", []plan.Endpoint{m.Endpoint(n)}, nil))
	must(t, SetupWorkload("bob", []plan.Endpoint{b.Endpoint(n)}, nil))
	s := spoofs()
	for _, c := range []struct {
		passed bool
		what   string
	}{
		{s.hostMoved, "the host took mallory's neighbour advertisement for bob's link-local address"},
		{s.bobMoved, "bob took mallory's neighbour advertisement for the router's link-local address"},
		{s.received, "a datagram mallory sent from bob's link-local address reached the host"},
		{s.guestMoved, "the host took mallory's neighbour advertisement for a guest's link-local address"},
		{s.guestReceived, "a datagram mallory sent from a guest's link-local address reached the host"},
	} {
		if c.passed {
			t.Error(c.what)
		}
	}
	must(t, flushNeighbours())
	if _, err := dial(nsM, b.Addr6, 80, probeTimeout); err != nil {
		t.Errorf("mallory no longer reaches bob over IPv6 from its own address: %v", err)
	}
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(b.Addr6, 80).String(), probeTimeout); err != nil {
		t.Errorf("the host no longer reaches bob over IPv6: %v", err)
	} else {
		c.Close()
	}
	must(t, TeardownWorkload("mallory"))
	must(t, TeardownWorkload("bob"))
}

// guestLL is a link-local address a VM's guest chose itself (stable
// privacy): no MAC's EUI-64 address.
var guestLL = netip.MustParseAddr("fe80::5a2b:1c3d:4e5f:6071")

// waitBridgeLinkLocal waits until bridge br's link-local address is no
// longer tentative: one bound or advertised before fails its detection.
func waitBridgeLinkLocal(t *testing.T, br netlink.Link) {
	t.Helper()
	waitUsableLinkLocal(t, br.Attrs().Name, func(f func(netlink.Link) error) error { return f(br) })
}

// checkContainerLinkLocals checks that the bridge br has the link-local
// address router and bob (b, in nsB) that of its MAC, and that bob's and
// mallory's (m's) attachments are no guests'.
func checkContainerLinkLocals(t *testing.T, br netlink.Link, router netip.Addr, nsB netns.NsHandle, b, m Attachment) {
	t.Helper()
	if got := linkLocals(t, br); !slices.Equal(got, []netip.Addr{router}) {
		t.Errorf("bridge link-local addresses %v, want %v (plan.LinkLocal of its MAC)", got, router)
	}
	must(t, InNetns(nsB, func() error {
		return onEth0(func(eth0 netlink.Link) error {
			if got, want := linkLocals(t, eth0), plan.LinkLocal(b.MAC); !slices.Equal(got, []netip.Addr{want}) {
				t.Errorf("bob's eth0 link-local addresses %v, want %v", got, want)
			}
			return nil
		})
	}))
	for _, at := range []Attachment{b, m} {
		if l, err := netlink.LinkByName(at.HostIf); err != nil || at.Guest || isTap(l) {
			t.Errorf("a container's attachment is a guest's (Guest %v, link %v, %v)", at.Guest, l, err)
		}
	}
}

// randomLLContainer is container in a namespace whose default is random
// link-local addresses (addr_gen_mode 3).
func randomLLContainer(t *testing.T, l Leases, n plan.Network, name string) (netns.NsHandle, Attachment) {
	t.Helper()
	ns := newNS(t)
	must(t, InNetns(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/addr_gen_mode", []byte("3"), 0)
	}))
	a, err := l.Allocate(n, name, netip.Addr{})
	must(t, err)
	at, err := AttachContainer(n, name, ns, a, plan.WorkloadMAC(n.Name, name), 0)
	must(t, err)
	return ns, at
}

// linkLocals are the link-local addresses of link.
func linkLocals(t *testing.T, link netlink.Link) []netip.Addr {
	t.Helper()
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
	must(t, err)
	var out []netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() {
			out = append(out, ip)
		}
	}
	return out
}

// entryMoves gives the link that on runs its function with (in its
// namespace) a stale neighbour entry for a at mac, has mallory (m, in
// nsM) advertise a as its own (unsolicited, override) and says whether
// the entry moved to mallory's MAC.
func entryMoves(t *testing.T, on func(func(netlink.Link) error) error, a netip.Addr, mac plan.MAC, m Attachment, nsM netns.NsHandle) bool {
	t.Helper()
	in := func(f func(netlink.Link) error) { must(t, on(f)) }
	in(func(l netlink.Link) error {
		return netlink.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, State: netlink.NUD_STALE, IP: net.IP(a.AsSlice()), HardwareAddr: mac[:]})
	})
	advertiseAs(t, nsM, m, plan.LinkLocal(m.MAC), a) // from its own address: only the target is wrong
	var now net.HardwareAddr
	in(func(l netlink.Link) error {
		neighs, err := netlink.NeighList(l.Attrs().Index, netlink.FAMILY_V6)
		for _, e := range neighs {
			if e.IP.Equal(net.IP(a.AsSlice())) {
				now = e.HardwareAddr
			}
		}
		return err
	})
	return slices.Equal(now, m.MAC[:])
}

// sentFromTo sends from inside ns a UDP datagram from src to dst (both
// link-local, on eth0) and says whether a socket on dst (on link hostIf
// of the calling thread's namespace) received it within 500 ms (arrives).
func sentFromTo(t *testing.T, ns netns.NsHandle, src, dst netip.Addr, hostIf string) bool {
	t.Helper()
	return arrives(t, dst, hostIf, 500*time.Millisecond, func() error {
		return InNetns(ns, func() error {
			s, err := net.DialUDP("udp6", &net.UDPAddr{IP: net.IP(src.AsSlice()), Zone: "eth0"}, &net.UDPAddr{IP: net.IP(dst.AsSlice()), Zone: "eth0", Port: int(plan.DHCP6ServerPort)})
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.Write([]byte("spoof"))
			return err
		})
	})
}

// arrives listens on dst (on link zone) at the DHCPv6 server's port,
// which the network's input chain lets in, runs send and says whether a
// datagram arrived within wait.
func arrives(t *testing.T, dst netip.Addr, zone string, wait time.Duration, send func() error) bool {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IP(dst.AsSlice()), Zone: zone, Port: int(plan.DHCP6ServerPort)})
	must(t, err)
	defer c.Close()
	must(t, send())
	c.SetReadDeadline(time.Now().Add(wait))
	_, err = c.Read(make([]byte, 16))
	return err == nil
}

// TestDuplicateAddressProbes: a container's duplicate address detection
// probes (neighbour solicitations from ::) reach the others only for its
// own addresses, so that it cannot fail another's detection of a new
// address. Without the tables (the control, first) mallory's detection
// of the router's link-local address and of bob's fails: the host and bob
// got its probes and defended their addresses. With them it does not:
// neither got a probe (and what mallory would send from those addresses
// is dropped anyway).
func TestDuplicateAddressProbes(t *testing.T) {
	n, nsM, m, nsB, b := malloryAndBob(t)
	router, bobLL := plan.LinkLocal(plan.BridgeMAC(n.Name)), plan.LinkLocal(b.MAC)
	br, err := netlink.LinkByName(n.Bridge)
	must(t, err)
	waitBridgeLinkLocal(t, br)
	waitLinkLocal(t, nsB)
	waitLinkLocal(t, nsM)
	for _, a := range []netip.Addr{router, bobLL} {
		if !detectionFails(t, nsM, a) {
			t.Fatalf("control: without the tables mallory's detection of %v did not fail", a)
		}
	}
	must(t, SetupWorkload("mallory", []plan.Endpoint{m.Endpoint(n)}, nil))
	must(t, SetupWorkload("bob", []plan.Endpoint{b.Endpoint(n)}, nil))
	for _, a := range []netip.Addr{router, bobLL} {
		if detectionFails(t, nsM, a) {
			t.Errorf("mallory's duplicate address detection probe for %v was answered", a)
		}
	}
	must(t, TeardownWorkload("mallory"))
	must(t, TeardownWorkload("bob"))
}

// detectionFails adds a to eth0 in ns with duplicate address detection,
// waits until the detection ends (up to 3 s), removes a again and says
// whether the detection failed (another node defended a).
func detectionFails(t *testing.T, ns netns.NsHandle, a netip.Addr) (failed bool) {
	t.Helper()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(64, 128)}}
	must(t, InNetns(ns, func() error {
		return onEth0(func(eth0 netlink.Link) error {
			if err := netlink.AddrAdd(eth0, addr); err != nil {
				return err
			}
			defer netlink.AddrDel(eth0, addr)
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				addrs, err := netlink.AddrList(eth0, netlink.FAMILY_V6)
				if err != nil {
					return err
				}
				for _, got := range addrs { // a failed one stays tentative
					if got.IP.Equal(addr.IP) && (got.Flags&unix.IFA_F_DADFAILED != 0 || got.Flags&unix.IFA_F_TENTATIVE == 0) {
						failed = got.Flags&unix.IFA_F_DADFAILED != 0
						return nil
					}
				}
			}
			return fmt.Errorf("the detection of %v on eth0 did not end in 3s", a)
		})
	}))
	return failed
}
