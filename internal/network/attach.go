package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// Attachment is what a container got on a network.
type Attachment struct {
	HostIf string     // the host end of the veth, a port of the bridge
	Addr4  netip.Addr // eth0's IPv4 address
	Addr6  netip.Addr // eth0's IPv6 address (plan.Addr6For of Addr4)
	MAC    plan.MAC   // eth0's MAC
}

// AttachContainer joins the network namespace ns (an open
// /proc/PID/ns/net, see netns.GetFromPid) to n: a veth whose host end
// (plan.HostIfName) is a port of n's bridge and whose other end is
// created directly inside ns as eth0 (so no temporary name ever exists
// on the host), with mac, addr4 and its IPv6 twin, a default route via
// each gateway, and lo and eth0 up. The bridge must exist (EnsureBridge).
// The host end disappears with the namespace; Detach removes it sooner.
// Run it in the host's network namespace (the bridge's).
func AttachContainer(n plan.Network, workload string, ns netns.NsHandle, addr4 netip.Addr, mac plan.MAC) (Attachment, error) {
	at := Attachment{HostIf: plan.HostIfName(n.Name, workload), Addr4: addr4, Addr6: plan.Addr6For(n, addr4), MAC: mac}
	if !plan.Usable(n, addr4) {
		return at, fmt.Errorf("attach %s to network %s: %v is not a host address of %v", workload, n.Name, addr4, n.Subnet4)
	}
	if err := createVeth(n, at, ns); err != nil {
		return at, fmt.Errorf("attach %s to network %s: %w", workload, n.Name, err)
	}
	if err := inNetns(ns, func() error { return configureEth0(n, at) }); err != nil {
		_ = Detach(n, workload)
		return at, fmt.Errorf("attach %s to network %s: %w", workload, n.Name, err)
	}
	return at, nil
}

// createVeth creates the veth pair with its peer as eth0 in ns, attaches
// the host end to the bridge and brings it up. A host end left by an
// earlier, failed attempt is deleted first.
func createVeth(n plan.Network, at Attachment, ns netns.NsHandle) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s: netlink RTM_GETLINK: %w", n.Bridge, err)
	}
	if old, err := netlink.LinkByName(at.HostIf); err == nil {
		if err := netlink.LinkDel(old); err != nil {
			return fmt.Errorf("delete stale veth %s: netlink RTM_DELLINK: %w", at.HostIf, err)
		}
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = at.HostIf, br.Attrs().MTU
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerHardwareAddr: net.HardwareAddr(at.MAC[:]), PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s (peer eth0 in the container): netlink RTM_NEWLINK: %w", at.HostIf, err)
	}
	host, err := netlink.LinkByName(at.HostIf)
	if err == nil {
		err = netlink.LinkSetMaster(host, br)
	}
	if err == nil {
		err = netlink.LinkSetUp(host)
	}
	if err != nil {
		netlink.LinkDel(veth)
		return fmt.Errorf("enslave veth %s to %s and set up: netlink RTM_NEWLINK: %w", at.HostIf, n.Bridge, err)
	}
	return nil
}

// configureEth0 runs inside the container's namespace: addresses, lo and
// eth0 up, default routes.
func configureEth0(n plan.Network, at Attachment) error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("set lo up: netlink RTM_NEWLINK: %w", err)
	}
	eth0, err := netlink.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("find eth0: netlink RTM_GETLINK: %w", err)
	}
	for _, a := range []*netlink.Addr{
		{IPNet: ipNet(at.Addr4, n.Subnet4.Bits())},
		{IPNet: ipNet(at.Addr6, n.Subnet6.Bits()), Flags: unix.IFA_F_NODAD},
	} {
		if err := netlink.AddrReplace(eth0, a); err != nil {
			return fmt.Errorf("add address %v to eth0: netlink RTM_NEWADDR: %w", a.IPNet, err)
		}
	}
	if err := netlink.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("set eth0 up: netlink RTM_NEWLINK: %w", err)
	}
	for _, gw := range []netip.Addr{n.Gateway4, n.Gateway6} {
		r := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(gw.AsSlice())}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("add default route via %v: netlink RTM_NEWROUTE: %w", gw, err)
		}
	}
	return nil
}

// Detach deletes the host end of workload's veth on n if it is still
// there (the peer goes with it); none is no error.
func Detach(n plan.Network, workload string) error {
	name := plan.HostIfName(n.Name, workload)
	link, err := netlink.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err == nil {
		err = netlink.LinkDel(link)
	}
	// ENODEV: the kernel removed it meanwhile (the namespace of its peer
	// is being torn down as the unit stops).
	if err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("detach %s from network %s: veth %s: netlink RTM_DELLINK: %w", workload, n.Name, name, err)
	}
	return nil
}

// inNetns runs f on a fresh OS thread switched into ns and switches it
// back. If switching back fails the thread stays locked, so the Go
// runtime discards it instead of reusing a thread in the wrong namespace.
func inNetns(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: setns: %w", err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave network namespace: setns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
