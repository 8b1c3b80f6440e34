package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
)

// TestServeOnBridge follows /work/shared/docs/network-testing.md: in a
// network namespace of its own it makes a bridge with the test network's
// gateway and two "guests", veths on the bridge with vm1's MAC and a
// stranger's, and serves on a socket made as cove-dhcp@.socket makes it
// (0.0.0.0:67, SO_BINDTODEVICE the bridge, SO_BROADCAST). vm1's client,
// on a packet socket as a real guest's, gets its lease from the lease
// files through real broadcasts; the stranger gets no offer.
func TestServeOnBridge(t *testing.T) {
	enterSandbox(t)
	br := addLink(t, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "dbr0"}})
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("198.18.4.1"), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatalf("address the bridge: %v", err)
	}
	addGuest(t, br, "dv", vmMAC)
	addGuest(t, br, "ds", stray)

	leases := network.Leases{Root: t.TempDir()}
	if _, err := leases.Allocate(testNet, "vm1", vmLease.Addr); err != nil {
		t.Fatal(err)
	}
	pc := listenLikeSystemd(t, "dbr0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, []net.PacketConn{pc}, Config{Network: testNet, Leases: LeaseTable{Network: testNet.Name, Leases: leases}, Idle: -1})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	lease, err := guestClient(t, "dv1", 3).Request(ctx)
	if err != nil {
		t.Fatalf("vm1's guest: %v", err)
	}
	ack := lease.ACK
	if !ack.YourIPAddr.Equal(net.IP(vmLease.Addr.AsSlice())) || len(ack.Router()) != 1 || !ack.Router()[0].Equal(gw) ||
		len(ack.DNS()) != 1 || !ack.DNS()[0].Equal(gw) || ack.HostName() != "vm1" {
		t.Errorf("vm1's ACK: %v", ack)
	}
	if offer, err := guestClient(t, "ds1", 1).DiscoverOffer(ctx); err == nil {
		t.Errorf("the stranger got an OFFER: %v", offer)
	}
}

// enterSandbox moves the test's goroutine, locked to its OS thread for
// good, into a new network namespace with only lo, up. The thread is
// never unlocked: when the test ends the runtime discards it, and the
// namespace goes with its last reference. It skips without root (unless
// CI is set: CI runs as root).
func enterSandbox(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("network tests need root, and CI runs as root")
		}
		t.Skip("network tests need root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns)")
	}
	initial, _ := os.Readlink("/proc/self/ns/net")
	runtime.LockOSThread()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("unshare network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	cur, _ := os.Readlink("/proc/thread-self/ns/net")
	links, err := netlink.LinkList()
	if err != nil || cur == initial || len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("the test's namespace %s (the process's %s) has links %v (%v): refusing to touch it", cur, initial, links, err)
	}
	if err := netlink.LinkSetUp(links[0]); err != nil {
		t.Fatal(err)
	}
}

// addLink creates l, sets it up and returns it as the kernel has it.
func addLink(t *testing.T, l netlink.Link) netlink.Link {
	t.Helper()
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatalf("add link %s: %v", l.Attrs().Name, err)
	}
	got, err := netlink.LinkByName(l.Attrs().Name)
	if err == nil {
		err = netlink.LinkSetUp(got)
	}
	if err != nil {
		t.Fatalf("set %s up: %v", l.Attrs().Name, err)
	}
	return got
}

// addGuest makes the veth PREFIX0 on br and its peer PREFIX1 with mac,
// both up: a guest's NIC without an address.
func addGuest(t *testing.T, br netlink.Link, prefix string, mac plan.MAC) {
	t.Helper()
	addLink(t, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: prefix + "0", MasterIndex: br.Attrs().Index}, PeerName: prefix + "1", PeerHardwareAddr: mac[:]})
	peer, err := netlink.LinkByName(prefix + "1")
	if err == nil {
		err = netlink.LinkSetUp(peer)
	}
	if err != nil {
		t.Fatalf("set %s1 up: %v", prefix, err)
	}
}

// listenLikeSystemd is UDP 0.0.0.0:67 bound to dev with SO_BROADCAST, as
// systemd makes cove-dhcp@.socket's (BindToDevice=, Broadcast=).
func listenLikeSystemd(t *testing.T, dev string) net.PacketConn {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1), unix.BindToDevice(int(fd), dev))
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), 67).String())
	if err != nil {
		t.Fatalf("listen on %s: %v", dev, err)
	}
	return pc
}

// guestClient is a DHCP client on ifname's packet socket, as a guest's.
func guestClient(t *testing.T, ifname string, tries int) *nclient4.Client {
	t.Helper()
	c, err := nclient4.New(ifname, nclient4.WithTimeout(time.Second), nclient4.WithRetry(tries))
	if err != nil {
		t.Fatalf("DHCP client on %s: %v", ifname, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
