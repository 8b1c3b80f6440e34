package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// EnsureBridge makes n's bridge exist with its gateway addresses, up, and
// forwarding on, in the network namespace of the calling thread; it is
// idempotent. The bridge gets a MAC derived from the network, so it does
// not change when ports come and go, and with IPv6 the link-local address
// of that MAC (plan.LinkLocal; the guests' router, which the workloads'
// anti-spoofing tables guard) when it comes up: a bridge made by a cove
// before this one, on a host whose default is another kind of link-local
// address, keeps its own until the network is stopped and started again.
// Forwarding is switched on with
// net.ipv4.ip_forward and net.ipv6.conf.all.forwarding of this namespace
// only; on a host that takes its own IPv6 default route from router
// advertisements with accept_ra=1, the latter stops that (accept_ra=2 on
// the uplink keeps it), as with Docker and podman.
//
// It also sets net.ipv4.conf.BRIDGE.route_localnet=1: a connection the
// host makes to 127.0.0.1:PORT of a published port is DNATed in the
// output hook to a workload, and the kernel routes a packet with a
// 127.0.0.0/8 source out of an interface only where route_localnet is on
// (the network's postrouting chain then masquerades it to the gateway).
// It also makes the kernel accept packets for 127.0.0.0/8 that arrive on
// the bridge; the network's input chain drops those (it lets workloads
// reach only the allowed services, on the gateway's addresses), and a
// workload's anti-spoofing table drops packets it sends from 127.0.0.0/8.
func EnsureBridge(n plan.Network) error {
	br, err := ensureBridgeLink(n)
	if err != nil {
		return err
	}
	for _, a := range addrs(n, n.Gateway4, n.Gateway6) {
		if err := netlink.AddrReplace(br, a); err != nil {
			return fmt.Errorf("ensure bridge %s: add address %v: netlink RTM_NEWADDR: %w", n.Bridge, a.IPNet, err)
		}
	}
	if n.Subnet6.IsValid() {
		if err := linkLocalFromMAC(br); err != nil {
			return fmt.Errorf("ensure bridge %s: %w", n.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("ensure bridge %s: set up: netlink RTM_NEWLINK: %w", n.Bridge, err)
	}
	for _, key := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv6/conf/" + n.Bridge + "/forwarding", "net/ipv4/conf/" + n.Bridge + "/route_localnet"} {
		if err := sysctl(key, "1"); err != nil {
			return fmt.Errorf("ensure bridge %s: %w", n.Bridge, err)
		}
	}
	return nil
}

// ensureBridgeLink finds or creates the bridge link of n.
func ensureBridgeLink(n plan.Network) (netlink.Link, error) {
	link, err := netlink.LinkByName(n.Bridge)
	if err == nil {
		if link.Type() != "bridge" {
			return nil, fmt.Errorf("ensure bridge %s: a link of type %s has that name", n.Bridge, link.Type())
		}
		return link, nil
	}
	if !errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil, fmt.Errorf("ensure bridge %s: netlink RTM_GETLINK: %w", n.Bridge, err)
	}
	mac := plan.BridgeMAC(n.Name)
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.HardwareAddr = n.Bridge, net.HardwareAddr(mac[:])
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("ensure bridge %s: create: netlink RTM_NEWLINK: %w", n.Bridge, err)
	}
	return netlink.LinkByName(n.Bridge)
}

// linkLocalFromMAC makes the kernel give link l the link-local address
// plan.LinkLocal of its MAC (address generation mode "eui64", whatever
// the namespace's default: a host with stable_secret set would give
// another). It takes effect when l comes up.
func linkLocalFromMAC(l netlink.Link) error {
	if err := netlink.LinkSetIP6AddrGenMode(l, nl.IN6_ADDR_GEN_MODE_EUI64); err != nil {
		return fmt.Errorf("link-local address from the MAC: set addrgenmode eui64 on %s: netlink RTM_SETLINK: %w", l.Attrs().Name, err)
	}
	return nil
}

// RemoveBridge deletes n's bridge (its addresses and routes go with it);
// no bridge is no error. The forwarding sysctls stay: other bridges or
// the admin may need them.
func RemoveBridge(n plan.Network) error {
	link, err := netlink.LinkByName(n.Bridge)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove bridge %s: netlink RTM_GETLINK: %w", n.Bridge, err)
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("remove bridge %s: a link of type %s has that name; not touched", n.Bridge, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("remove bridge %s: netlink RTM_DELLINK: %w", n.Bridge, err)
	}
	return nil
}

// sysctl writes value to /proc/sys/KEY of the calling thread's network
// namespace, unless it already holds it.
func sysctl(key, value string) error {
	path := "/proc/sys/" + key
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: write: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

// ipNet is an address with a prefix length as the net package has it.
// addrs are the netlink addresses a4 and a6 of n's subnets (a6 when n
// has IPv6; without duplicate address detection: the addresses are
// cove's to give).
func addrs(n plan.Network, a4, a6 netip.Addr) []*netlink.Addr {
	out := []*netlink.Addr{{IPNet: ipNet(a4, n.Subnet4.Bits())}}
	if n.Subnet6.IsValid() {
		out = append(out, &netlink.Addr{IPNet: ipNet(a6, n.Subnet6.Bits()), Flags: unix.IFA_F_NODAD})
	}
	return out
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, a.BitLen())}
}
