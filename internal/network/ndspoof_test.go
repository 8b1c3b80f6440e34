package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestRouterAndNeighbourSpoofing: a container that plays a router or a
// DHCP server, or advertises another's IPv6 address, misleads nobody
// once its bridge table is there: an unsolicited neighbour advertisement
// for bob's address no longer moves the host's neighbour entry to
// mallory's MAC, a router advertisement no longer gives bob a route
// through mallory, and a datagram from the DHCP server port no longer
// reaches bob; without the table (the control, first) each of them does.
func TestRouterAndNeighbourSpoofing(t *testing.T) {
	n, nsM, m, nsB, b := malloryAndBob(t)
	serve(t, nsB, b.Addr6, 80)
	serveUDP(t, nsB, b.Addr4, 53)
	waitLinkLocal(t, nsM)

	spoofs := func() (poisoned, routed, dhcp bool) {
		return hostTakesAdvert(t, nsM, m, b), bobTakesRouter(t, nsM, nsB), fromDHCPPort(nsM, m, b) == nil
	}
	if poisoned, routed, dhcp := spoofs(); !poisoned || !routed || !dhcp {
		t.Fatalf("control: without mallory's table, a spoof failed: neighbour advertisement taken %v, router advertisement taken %v, DHCP server port answered %v",
			poisoned, routed, dhcp)
	}
	must(t, InNetns(nsB, flushRARoutes))
	must(t, SetupWorkload("mallory", []plan.Endpoint{m.Endpoint(n)}, nil))
	poisoned, routed, dhcp := spoofs()
	if poisoned {
		t.Error("the host took mallory's neighbour advertisement for bob's address")
	}
	if routed {
		t.Error("bob took mallory's router advertisement")
	}
	if dhcp {
		t.Error("a datagram from mallory's DHCP server port reached bob")
	}
	if _, err := dial(nsM, b.Addr6, 80, probeTimeout); err != nil {
		t.Errorf("mallory no longer reaches bob over IPv6 from its own address: %v", err)
	}
	must(t, TeardownWorkload("mallory"))
}

// waitLinkLocal waits until eth0 of ns has a link-local address that is
// no longer tentative (duplicate address detection takes a second): a
// router advertisement must come from one.
func waitLinkLocal(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	waitUsableLinkLocal(t, "eth0", func(f func(netlink.Link) error) error {
		return InNetns(ns, func() error { return onEth0(f) })
	})
}

// waitUsableLinkLocal waits until the link that on runs its function
// with (in its namespace; named name in the failure) has a link-local
// address that is no longer tentative.
func waitUsableLinkLocal(t *testing.T, name string, on func(func(netlink.Link) error) error) {
	t.Helper()
	ready := func() bool {
		var ok bool
		must(t, on(func(link netlink.Link) error {
			addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
			ok = slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
				return a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0
			})
			return err
		}))
		return ok
	}
	for deadline := time.Now().Add(5 * time.Second); !ready(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s has no usable link-local address after 5s", name)
		}
	}
}

// hostTakesAdvert makes the host (the calling thread's namespace) learn
// bob's MAC for its IPv6 address, has mallory (in ns) advertise that
// address as its own (unsolicited, override), and says whether the
// host's entry moved to mallory's MAC.
func hostTakesAdvert(t *testing.T, ns netns.NsHandle, m, b Attachment) bool {
	t.Helper()
	must(t, flushNeighbours())
	c, err := net.DialTimeout("tcp", netip.AddrPortFrom(b.Addr6, 80).String(), time.Second)
	must(t, err)
	c.Close()
	if mac, _ := hostNeighbour(t, b.Addr6); mac != b.MAC {
		t.Fatalf("the host has %v for %v after a connection, want bob's %v", mac, b.Addr6, b.MAC)
	}
	advertiseAs(t, ns, m, m.Addr6, b.Addr6)
	mac, _ := hostNeighbour(t, b.Addr6)
	return mac == m.MAC
}

// advertiseAs has mallory (m, in ns) send from src (zero: the kernel's
// choice) an unsolicited neighbour advertisement with the override flag
// that a is at its MAC, and gives the receivers 200 ms to take it.
func advertiseAs(t *testing.T, ns netns.NsHandle, m Attachment, src, a netip.Addr) {
	t.Helper()
	na := []byte{plan.NDNeighborAdvert, 0, 0, 0, 0x20, 0, 0, 0} // override, not solicited
	na = append(append(na, a.AsSlice()...), 2, 1)               // target; target link-layer address option
	must(t, InNetns(ns, func() error { return sendICMPv6(src, append(na, m.MAC[:]...)) }))
	time.Sleep(200 * time.Millisecond)
}

// hostNeighbour is the host's neighbour entry for a on any link.
func hostNeighbour(t *testing.T, a netip.Addr) (plan.MAC, bool) {
	t.Helper()
	neighs, err := netlink.NeighList(0, netlink.FAMILY_V6)
	must(t, err)
	for _, e := range neighs {
		if e.IP.Equal(net.IP(a.AsSlice())) && len(e.HardwareAddr) == 6 {
			return plan.MAC(e.HardwareAddr), true
		}
	}
	return plan.MAC{}, false
}

// bobTakesRouter has mallory (nsM) send a router advertisement from its
// link-local address and says whether bob (nsB) made a route of it.
func bobTakesRouter(t *testing.T, nsM, nsB netns.NsHandle) bool {
	t.Helper()
	ra := []byte{plan.NDRouterAdvert, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0} // lifetime 1800 s
	must(t, InNetns(nsM, func() error { return sendICMPv6(netip.Addr{}, ra) }))
	var routed bool
	for deadline := time.Now().Add(500 * time.Millisecond); !routed && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		must(t, InNetns(nsB, func() error {
			rs, err := raRoutes()
			routed = len(rs) > 0
			return err
		}))
	}
	return routed
}

// raRoutes are the IPv6 routes of the calling thread's namespace that a
// router advertisement made.
func raRoutes() ([]netlink.Route, error) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Protocol: unix.RTPROT_RA}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return rs, nil
}

// flushRARoutes deletes the routes router advertisements made.
func flushRARoutes() error {
	rs, err := raRoutes()
	for _, r := range rs {
		err = errors.Join(err, netlink.RouteDel(&r))
	}
	return err
}

// sendICMPv6 sends msg (an ICMPv6 message; the kernel fills in its
// checksum) to all nodes on eth0 of the calling thread's namespace, from
// src (zero: the kernel's choice, the link-local address), with the hop
// limit 255 that neighbour discovery requires.
func sendICMPv6(src netip.Addr, msg []byte) error {
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return fmt.Errorf("ICMPv6 socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255); err != nil {
		return err
	}
	if src.IsValid() {
		sa := &unix.SockaddrInet6{Addr: src.As16()}
		if src.IsLinkLocalUnicast() {
			sa.ZoneId = uint32(eth0.Index)
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind %v: %w", src, err)
		}
	}
	return unix.Sendto(fd, msg, 0, &unix.SockaddrInet6{Addr: netip.MustParseAddr("ff02::1").As16(), ZoneId: uint32(eth0.Index)})
}

// fromDHCPPort sends, from mallory's address and the DHCP server port,
// a datagram to bob's UDP server and waits for its answer.
func fromDHCPPort(ns netns.NsHandle, m, b Attachment) error {
	return InNetns(ns, func() error {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(m.Addr4, plan.DHCPServerPort)))
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.WriteToUDPAddrPort([]byte("offer"), netip.AddrPortFrom(b.Addr4, 53)); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(probeTimeout))
		_, err = c.Read(make([]byte, 64))
		return err
	})
}
