package network

import (
	"encoding/binary"
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

// TestAntiSpoofing: a container that sends from an address that is not
// its own (a second IPv4 or IPv6 address it adds, the IPv4 one also in a
// VLAN-tagged frame, ARP claiming another address, another MAC) reaches
// nobody once its bridge table is there,
// while it still reaches others from its own; without the table (the
// control, first) each of those spoofs works.
func TestAntiSpoofing(t *testing.T) {
	n, nsM, m, nsB, b := malloryAndBob(t)
	for _, a := range []netip.Addr{b.Addr4, b.Addr6} {
		serve(t, nsB, a, 80)
	}
	serveUDP(t, nsB, b.Addr4, 53)
	fake4 := netip.MustParseAddr("10.77.0.200")
	fake6 := plan.Addr6For(n, fake4)
	must(t, InNetns(nsM, func() error { return onEth0(func(eth0 netlink.Link) error { return addAddrs(eth0, fake4, fake6) }) }))
	// bob knows mallory's MAC for the fake addresses (as a victim of a
	// one-way spoof needs no answer): only the source checks stop them,
	// not the ARP check.
	must(t, InNetns(nsB, func() error {
		return onEth0(func(eth0 netlink.Link) error {
			return errors.Join(staticNeighbour(eth0, fake4, m.MAC), staticNeighbour(eth0, fake6, m.MAC))
		})
	}))
	own := []probe{
		{what: "mallory -> bob from its IPv4 address", from: nsM, src: m.Addr4, to: b.Addr4, port: 80, seen: m.Addr4},
		{what: "mallory -> bob from its IPv6 address", from: nsM, src: m.Addr6, to: b.Addr6, port: 80, seen: m.Addr6},
	}
	spoofed := []probe{
		{what: "mallory -> bob from a second IPv4 address", from: nsM, src: fake4, to: b.Addr4, port: 80, seen: fake4},
		{what: "mallory -> bob from a second IPv6 address", from: nsM, src: fake6, to: b.Addr6, port: 80, seen: fake6},
	}
	otherMAC := plan.MAC{0x02, 0, 0, 0, 0, 0x99}

	expectReach(t, append(own, spoofed...)...)
	if err := taggedSpoof(nsM, m.MAC, b, fake4); err != nil {
		t.Errorf("control: without mallory's table, a VLAN-tagged UDP datagram from %v is not answered: %v", fake4, err)
	}
	if !hostLearnsARP(t, nsM, m, fake4, n) {
		t.Fatal("control: without mallory's table, the host ignores its ARP for another address")
	}
	withMAC(t, nsM, otherMAC, func() { expectReach(t, own[0]) }, nsM, nsB)
	if t.Failed() {
		t.FailNow()
	}

	must(t, SetupWorkload("mallory", []plan.Endpoint{m.Endpoint(n)}, nil))
	expectReach(t, own...)
	expectBlocked(t, spoofed...)
	if err := taggedSpoof(nsM, m.MAC, b, fake4); err == nil {
		t.Errorf("a VLAN-tagged UDP datagram from %v got through", fake4)
	}
	if hostLearnsARP(t, nsM, m, fake4, n) {
		t.Error("the host learned an ARP entry for an address mallory does not hold")
	}
	withMAC(t, nsM, otherMAC, func() { expectBlocked(t, own[0]) }, nsM, nsB)
	expectReach(t, own...)
	must(t, TeardownWorkload("mallory"))
}

// malloryAndBob puts the test in a sandbox with the default network up
// and two containers on it, mallory and bob, without their tables.
func malloryAndBob(t *testing.T) (n plan.Network, nsM netns.NsHandle, m Attachment, nsB netns.NsHandle, b Attachment) {
	t.Helper()
	sandbox(t)
	n, l := plan.Default(), Leases{Root: t.TempDir()}
	must(t, EnsureBridge(n))
	must(t, Setup(n))
	nsM, m = container(t, l, n, "mallory")
	nsB, b = container(t, l, n, "bob")
	return n, nsM, m, nsB, b
}

// onEth0 runs f with the eth0 of the calling thread's namespace.
func onEth0(f func(eth0 netlink.Link) error) error {
	eth0, err := netlink.LinkByName("eth0")
	if err != nil {
		return err
	}
	return f(eth0)
}

// staticNeighbour makes a permanent neighbour entry: a is at mac.
func staticNeighbour(link netlink.Link, a netip.Addr, mac plan.MAC) error {
	return netlink.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT, IP: net.IP(a.AsSlice()), HardwareAddr: mac[:]})
}

// taggedSpoof sends from inside ns (the container with MAC mac, which
// holds src) a UDP datagram from src to the server on port 53 of the
// container at, in a frame with an 802.1Q tag of VLAN 0 (priority
// only, which the receiver treats as untagged), and waits for the
// answer, which comes back untagged.
func taggedSpoof(ns netns.NsHandle, mac plan.MAC, at Attachment, src netip.Addr) error {
	return InNetns(ns, func() error {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			return err
		}
		defer c.Close()
		from := c.LocalAddr().(*net.UDPAddr).AddrPort()
		frame := append(append(append([]byte{}, at.MAC[:]...), mac[:]...), 0x81, 0x00, 0, 0, 0x08, 0x00)
		if err := sendFrame(append(frame, udp4(from, netip.AddrPortFrom(at.Addr4, 53), []byte("cove"))...), 0x8100); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(probeTimeout))
		_, err = c.Read(make([]byte, 64))
		return err
	})
}

// udp4 is an IPv4 packet carrying a UDP datagram (without checksum).
func udp4(src, dst netip.AddrPort, payload []byte) []byte {
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, unix.IPPROTO_UDP, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip = append(append(ip, src.Addr().AsSlice()...), dst.Addr().AsSlice()...)
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := binary.BigEndian.AppendUint16(nil, src.Port())
	udp = binary.BigEndian.AppendUint16(udp, dst.Port())
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	return append(append(append(ip, udp...), 0, 0), payload...)
}

// withMAC runs f while the eth0 of ns has mac instead of its own; before
// and after, it empties the neighbour tables of the namespaces flush so
// they learn the MAC anew.
func withMAC(t *testing.T, ns netns.NsHandle, mac plan.MAC, f func(), flush ...netns.NsHandle) {
	t.Helper()
	setMAC := func(mac net.HardwareAddr) {
		must(t, InNetns(ns, func() error {
			return onEth0(func(eth0 netlink.Link) error { return netlink.LinkSetHardwareAddr(eth0, mac) })
		}))
		for _, ns := range flush {
			must(t, InNetns(ns, flushNeighbours))
		}
	}
	var old net.HardwareAddr
	must(t, InNetns(ns, func() error {
		return onEth0(func(eth0 netlink.Link) error { old = eth0.Attrs().HardwareAddr; return nil })
	}))
	setMAC(mac[:])
	defer setMAC(old)
	f()
}

// flushNeighbours deletes the IPv4 and IPv6 neighbour entries of the
// calling thread's namespace.
func flushNeighbours() error {
	neighs, err := netlink.NeighList(0, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, n := range neighs {
		if n.State&netlink.NUD_PERMANENT == 0 && n.State&netlink.NUD_NOARP == 0 {
			netlink.NeighDel(&n) // gone meanwhile is fine
		}
	}
	return nil
}

// hostLearnsARP sends from ns (the container at) an ARP request for the
// gateway claiming sender address spa, then a genuine one; once the host
// (the calling thread's namespace) has learned the container's own
// address from the latter, it says whether it learned spa too.
func hostLearnsARP(t *testing.T, ns netns.NsHandle, at Attachment, spa netip.Addr, n plan.Network) bool {
	t.Helper()
	br, err := netlink.LinkByName(n.Bridge)
	must(t, err)
	must(t, flushNeighbours())
	must(t, InNetns(ns, func() error {
		return errors.Join(sendARP(at.MAC, spa, n.Gateway4), sendARP(at.MAC, at.Addr4, n.Gateway4))
	}))
	learned := func(a netip.Addr) bool {
		neighs, err := netlink.NeighList(br.Attrs().Index, netlink.FAMILY_V4)
		must(t, err)
		return slices.ContainsFunc(neighs, func(e netlink.Neigh) bool { return e.IP.Equal(net.IP(a.AsSlice())) })
	}
	for deadline := time.Now().Add(2 * time.Second); !learned(at.Addr4); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the host did not learn %v from its ARP request in 2s", at.Addr4)
		}
	}
	time.Sleep(50 * time.Millisecond) // in case the two frames were taken out of order
	return learned(spa)
}

// sendARP broadcasts on eth0 of the calling thread's namespace an ARP
// request for tpa from sender (sha, spa).
func sendARP(sha plan.MAC, spa, tpa netip.Addr) error {
	return sendFrame(arpRequest(sha, spa, tpa), unix.ETH_P_ARP)
}

// arpRequest is the Ethernet frame of a broadcast ARP request for tpa
// from sender (sha, spa).
func arpRequest(sha plan.MAC, spa, tpa netip.Addr) []byte {
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	frame := append(append(bcast, sha[:]...), 0x08, 0x06) // Ethernet: dst, src, type ARP
	frame = append(frame, 0, 1, 0x08, 0x00, 6, 4, 0, 1)   // Ethernet, IPv4, lengths, request
	frame = append(append(append(frame, sha[:]...), spa.AsSlice()...), make([]byte, 6)...)
	return append(frame, tpa.AsSlice()...)
}

// sendFrame sends a whole Ethernet frame (of type proto) on eth0 of the
// calling thread's namespace.
func sendFrame(frame []byte, proto uint16) error {
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(proto)))
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: eth0.Index, Protocol: htons(proto), Halen: 6}
	copy(to.Addr[:], frame[:6])
	return unix.Sendto(fd, frame, 0, to)
}

// htons is v in network byte order, as packet sockets take protocols.
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}
