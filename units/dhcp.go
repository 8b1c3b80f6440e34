package units

import (
	"net/netip"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// DHCPServerPort is the port a network's DHCP responder listens on.
const DHCPServerPort = 67

// CompileDHCP returns the socket unit of network n's DHCP responder,
// spec.DHCPSocketName(n.Name): UDP port 67 on every address
// (0.0.0.0, where requests from clients without an address arrive,
// sent to 255.255.255.255) but bound to the network's bridge
// (BindToDevice=, so each network has its own socket and hears only its
// own bridge), with SO_BROADCAST (Broadcast=: the responder broadcasts
// replies to clients without an address) and FreeBind. The first request
// starts cove-dhcp@NETWORK.service (the packaged template), which answers
// and exits when idle; the socket stays. Like the DNS socket it is bound
// to, ordered after and wanted by the network's unit and has no default
// dependencies; every network has one (VMs on it get their lease by
// DHCP, whatever its DNS). Where systemd manages devices (udev), BindToDevice
// also binds the socket to the bridge's device unit, so it starts once
// the bridge is there and stops if it goes.
func CompileDHCP(n plan.Network) Unit {
	u := networkSocket(spec.DHCPSocketName(n.Name), "DHCP responder of cove network "+n.Name, n)
	u.add(SectionSocket, "Listen", "ListenDatagram", Listen{"Datagram", netip.AddrPortFrom(netip.IPv4Unspecified(), DHCPServerPort).String()})
	u.add(SectionSocket, "BindToDevice", "", Str(n.Bridge))
	u.add(SectionSocket, "Broadcast", "", Bool(true))
	u.add(SectionSocket, "FreeBind", "", Bool(true))
	return u
}
