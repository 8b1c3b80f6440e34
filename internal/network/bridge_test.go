package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/cove-project/cove/internal/network/plan"
)

// ping sends one ICMP echo from inside ns to dst and waits (bounded) for
// the reply.
func ping(ns netns.NsHandle, dst netip.Addr) error {
	return InNetns(ns, func() error {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		id := os.Getpid() & 0xffff
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("cove")}}
		b, _ := msg.Marshal(nil)
		if _, err := c.WriteTo(b, &net.IPAddr{IP: net.IP(dst.AsSlice())}); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return fmt.Errorf("ping %v: %w", dst, err)
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if e, ok := m.Body.(*icmp.Echo); err == nil && ok && m.Type == ipv4.ICMPTypeEchoReply && e.ID == id && from.String() == dst.String() {
				return nil
			}
		}
	})
}

// TestBridgeTwoContainers: two containers on the default network get
// their addresses and MACs and reach each other and the gateway, by ICMP
// and TCP over IPv4 and IPv6, without NAT between them.
func TestBridgeTwoContainers(t *testing.T) {
	sandbox(t)
	n, l := plan.Default(), Leases{Root: t.TempDir()}
	for range 2 { // idempotent
		must(t, EnsureBridge(n))
		must(t, Setup(n))
	}
	ns1, at1 := container(t, l, n, "web")
	ns2, at2 := container(t, l, n, "db")
	assertRoutes(t, "lo", n.Bridge, "cv*")
	checkEth0(t, ns1, at1)
	must(t, ping(ns1, at2.Addr4))
	must(t, ping(ns2, n.Gateway4))
	serve(t, ns2, at2.Addr4, 5432)
	serve(t, ns2, at2.Addr6, 5432)
	for _, dst := range []netip.Addr{at2.Addr4, at2.Addr6} {
		seen, err := dial(ns1, dst, 5432, 2*time.Second)
		if err != nil {
			t.Fatalf("web -> db %v: %v", dst, err)
		}
		if want := map[bool]netip.Addr{true: at1.Addr4, false: at1.Addr6}[dst.Is4()]; seen != want.String() {
			t.Errorf("db saw web as %s, want %v (no NAT inside a network)", seen, want)
		}
	}
}

// checkEth0 asserts the container's eth0 carries the attachment's MAC and
// addresses and its default route goes via the gateway.
func checkEth0(t *testing.T, ns netns.NsHandle, at Attachment) {
	t.Helper()
	must(t, InNetns(ns, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if got := eth0.Attrs().HardwareAddr.String(); got != at.MAC.String() {
			return fmt.Errorf("eth0 MAC %s, want %v", got, at.MAC)
		}
		addrs, err := netlink.AddrList(eth0, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		found := 0
		for _, a := range addrs {
			if ip, _ := netip.AddrFromSlice(a.IP); ip.Unmap() == at.Addr4 || ip == at.Addr6 {
				found++
			}
		}
		if found != 2 {
			return fmt.Errorf("eth0 addresses %v, want %v and %v", addrs, at.Addr4, at.Addr6)
		}
		return nil
	}))
}
