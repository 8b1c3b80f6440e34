package units

import (
	"net/netip"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// CompileDHCP returns the socket unit of network n's DHCP responder,
// spec.DHCPSocketName(n.Name): UDP port 67 on every address
// (0.0.0.0, where requests from clients without an address arrive,
// sent to 255.255.255.255) but bound to the network's bridge
// (BindToDevice=, so each network has its own socket and hears only its
// own bridge), with SO_BROADCAST (Broadcast=: the responder broadcasts
// replies to clients without an address) and FreeBind. With IPv6 it also
// holds UDP port 547 on [::] (IPv6 only), bound to the bridge as well,
// where DHCPv6 clients' messages to plan.DHCP6Servers arrive once the
// socket is a member of that group: the responder joins it when it
// starts, and the membership stays with the socket, which systemd keeps
// open; so with IPv6 the socket also wants the responder, which starts
// once when the socket does and exits when idle. The first request starts
// cove-dhcp@NETWORK.service (the packaged template), which answers
// and exits when idle; the socket stays. Like the DNS socket it is bound
// to, ordered after and wanted by the network's unit and has no default
// dependencies; every network has one (VMs on it get their lease by
// DHCP, whatever its DNS). Where systemd manages devices (udev), BindToDevice
// also binds the socket to the bridge's device unit, so it starts once
// the bridge is there and stops if it goes.
func CompileDHCP(n plan.Network) Unit {
	u := networkSocket(spec.DHCPSocketName(n.Name), "DHCP responder of cove network "+n.Name, n)
	u.add(SectionSocket, "Listen", "ListenDatagram", Listen{"Datagram", netip.AddrPortFrom(netip.IPv4Unspecified(), plan.DHCPServerPort).String()})
	if n.Subnet6.IsValid() {
		u.add(SectionUnit, "Wants", "", Names{spec.DHCPServiceName(n.Name)})
		u.add(SectionSocket, "Listen", "ListenDatagram", Listen{"Datagram", netip.AddrPortFrom(netip.IPv6Unspecified(), plan.DHCP6ServerPort).String()})
		u.add(SectionSocket, "BindIPv6Only", "", Str("ipv6-only"))
	}
	u.add(SectionSocket, "BindToDevice", "", Str(n.Bridge))
	u.add(SectionSocket, "Broadcast", "", Bool(true))
	u.add(SectionSocket, "FreeBind", "", Bool(true))
	return u
}

// CompileRA returns the socket unit of the router advertisements of
// network n, which has IPv6 (callers skip a network without):
// spec.RASocketName(n.Name), a datagram socket at launch.RASocket(n.Name)
// that only root may write to, removed when the socket stops. The DHCP
// responder writes to it when it answers a client; the first datagram
// starts cove-ra@NETWORK.service (the packaged template), which
// advertises the bridge as the network's router, answers router
// solicitations, and exits when idle. It is bound to, ordered after and
// wanted by the network's unit, like the DHCP socket.
func CompileRA(n plan.Network) Unit {
	u := networkSocket(spec.RASocketName(n.Name), "router advertisements of cove network "+n.Name, n)
	u.add(SectionSocket, "Listen", "ListenDatagram", Listen{"Datagram", launch.RASocket(n.Name)})
	u.add(SectionSocket, "SocketMode", "", Mode(0o600))
	u.add(SectionSocket, "RemoveOnStop", "", Bool(true))
	return u
}
