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

// Attachment is what a workload got on a network: a container's veth or
// a VM's tap.
type Attachment struct {
	HostIf string     // the host end of the veth, or the tap: a port of the bridge
	Addr4  netip.Addr // the workload's IPv4 address (a container's eth0, a VM's guest NIC)
	Addr6  netip.Addr // its IPv6 address (plan.Addr6For of Addr4)
	MAC    plan.MAC   // its MAC (eth0's; the guest NIC's)
	Guest  bool       // HostIf is a VM's tap (plan.Endpoint.Guest)
}

// AttachContainer joins the network namespace ns (an open
// /proc/PID/ns/net, see netns.GetFromPid) to n as its nic'th interface: a
// veth whose host end (plan.HostIfName) is a port of n's bridge and whose
// other end is created directly inside ns as ethNIC (so no temporary name
// ever exists on the host), with mac, addr4 and its IPv6 twin, and lo and
// it up; eth0 (nic 0, the container's first network) also gets a default
// route via each gateway, a later one only the routes of its subnets. The
// bridge must exist (EnsureBridge). The host end disappears with the
// namespace; Detach removes it sooner. Run it in the host's network
// namespace (the bridge's).
func AttachContainer(n plan.Network, workload string, ns netns.NsHandle, addr4 netip.Addr, mac plan.MAC, nic int) (Attachment, error) {
	name := fmt.Sprintf("eth%d", nic)
	veth := func(attrs netlink.LinkAttrs, at Attachment) netlink.Link {
		return &netlink.Veth{LinkAttrs: attrs, PeerName: name, PeerHardwareAddr: net.HardwareAddr(at.MAC[:]), PeerNamespace: netlink.NsFd(int(ns))}
	}
	at, err := attachPort(n, workload, addr4, mac, "veth", "netlink RTM_NEWLINK", veth)
	if err != nil {
		return at, err
	}
	if err := InNetns(ns, func() error { return configureNIC(n, at, name, nic == 0) }); err != nil {
		_ = Detach(n, workload)
		return at, fmt.Errorf("attach %s to network %s: %w", workload, n.Name, err)
	}
	return at, nil
}

// AttachTap attaches a VM to n: a persistent tap device named
// plan.HostIfName (single queue, no packet information header, owned by
// root), a port of n's bridge with its MTU, and up, for QEMU to attach
// the guest's NIC to by name (-netdev tap,ifname=). The guest is to have
// mac and addr4 (with its IPv6 twin): the VM launcher gives them to QEMU
// (mac=) and to the guest (its kernel command line); the tap itself has a
// MAC of its own, which is not the guest's. The bridge must exist
// (EnsureBridge). The tap outlives QEMU: Detach removes it. Run it in
// the host's network namespace (the bridge's).
func AttachTap(n plan.Network, workload string, addr4 netip.Addr, mac plan.MAC) (Attachment, error) {
	tap := func(attrs netlink.LinkAttrs, _ Attachment) netlink.Link {
		return &netlink.Tuntap{LinkAttrs: attrs, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_NO_PI}
	}
	at, err := attachPort(n, workload, addr4, mac, "tap", "open /dev/net/tun, ioctl TUNSETIFF, TUNSETPERSIST", tap)
	at.Guest = true
	return at, err
}

// isTap reports whether l is a tap (AttachTap's), not a veth.
func isTap(l netlink.Link) bool {
	_, ok := l.(*netlink.Tuntap)
	return ok
}

// attachPort gives workload its Attachment on n (addr4, which must be a
// host address of n, its IPv6 twin, mac, and the link plan.HostIfName)
// and creates that link with the bridge's MTU, as an up port of n's
// bridge. link makes the link from its attributes (name and MTU set) and
// the attachment; kind ("veth", "tap") and how (the calls that create it)
// name it in errors. A link of its name left by an earlier attempt (a
// failed start, a crashed run) is deleted first; on error the new link
// is deleted again.
func attachPort(n plan.Network, workload string, addr4 netip.Addr, mac plan.MAC, kind, how string, link func(netlink.LinkAttrs, Attachment) netlink.Link) (Attachment, error) {
	at := Attachment{HostIf: plan.HostIfName(n.Name, workload), Addr4: addr4, Addr6: plan.Addr6For(n, addr4), MAC: mac}
	if !plan.Usable(n, addr4) {
		return at, fmt.Errorf("attach %s to network %s: %v is not a host address of %v", workload, n.Name, addr4, n.Subnet4)
	}
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return at, fmt.Errorf("attach %s to network %s: find bridge %s: netlink RTM_GETLINK: %w", workload, n.Name, n.Bridge, err)
	}
	if old, err := netlink.LinkByName(at.HostIf); err == nil {
		if err := netlink.LinkDel(old); err != nil {
			return at, fmt.Errorf("attach %s to network %s: delete stale link %s: netlink RTM_DELLINK: %w", workload, n.Name, at.HostIf, err)
		}
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = at.HostIf, br.Attrs().MTU
	l := link(attrs, at)
	if err := netlink.LinkAdd(l); err != nil {
		return at, fmt.Errorf("attach %s to network %s: create %s %s: %s: %w", workload, n.Name, kind, at.HostIf, how, err)
	}
	if err := enslave(l, br); err != nil {
		netlink.LinkDel(l)
		return at, fmt.Errorf("attach %s to network %s: make %s %s a port of %s: %w", workload, n.Name, kind, at.HostIf, n.Bridge, err)
	}
	return at, nil
}

// enslave makes link (as created: its name) an up port of bridge br with
// br's MTU.
func enslave(link netlink.Link, br netlink.Link) error {
	host, err := netlink.LinkByName(link.Attrs().Name)
	if err != nil {
		return fmt.Errorf("netlink RTM_GETLINK: %w", err)
	}
	if host.Attrs().MTU != br.Attrs().MTU {
		if err := netlink.LinkSetMTU(host, br.Attrs().MTU); err != nil {
			return fmt.Errorf("set MTU %d: netlink RTM_NEWLINK: %w", br.Attrs().MTU, err)
		}
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return fmt.Errorf("set master: netlink RTM_NEWLINK: %w", err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("set up: netlink RTM_NEWLINK: %w", err)
	}
	return nil
}

// configureNIC runs inside the container's namespace: addresses (with
// IPv6, the link-local one of its MAC), lo and the interface name up,
// with gateway default routes.
func configureNIC(n plan.Network, at Attachment, name string, gateway bool) error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("set lo up: netlink RTM_NEWLINK: %w", err)
	}
	nic, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: netlink RTM_GETLINK: %w", name, err)
	}
	for _, a := range addrs(n, at.Addr4, at.Addr6) {
		if err := netlink.AddrReplace(nic, a); err != nil {
			return fmt.Errorf("add address %v to %s: netlink RTM_NEWADDR: %w", a.IPNet, name, err)
		}
	}
	if at.Addr6.IsValid() {
		if err := linkLocalFromMAC(nic); err != nil {
			return err
		}
	}
	if err := netlink.LinkSetUp(nic); err != nil {
		return fmt.Errorf("set %s up: netlink RTM_NEWLINK: %w", name, err)
	}
	if !gateway {
		return nil
	}
	for _, gw := range n.Gateways() {
		r := &netlink.Route{LinkIndex: nic.Attrs().Index, Gw: net.IP(gw.AsSlice())}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("add default route via %v: netlink RTM_NEWROUTE: %w", gw, err)
		}
	}
	return nil
}

// Detach deletes workload's link on n, the host end of its veth (the
// peer goes with it) or its tap, if it is still there; none is no error.
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
		return fmt.Errorf("detach %s from network %s: link %s: netlink RTM_DELLINK: %w", workload, n.Name, name, err)
	}
	return nil
}

// InNetns runs f on a fresh OS thread switched into ns (a network
// namespace's descriptor, or a pidfd: that process's) and switches it
// back. If switching back fails the thread stays locked, so the Go
// runtime discards it instead of reusing a thread in the wrong namespace.
// A process f starts is in ns (a child inherits its parent thread's
// namespaces), and so is what f opens under /proc/sys/net.
func InNetns(ns netns.NsHandle, f func() error) error {
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
