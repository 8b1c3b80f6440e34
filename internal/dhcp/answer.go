package dhcp

import (
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"

	"github.com/cove-project/cove/internal/network/plan"
)

// reply is an answer and where it goes.
type reply struct {
	msg *dhcpv4.DHCPv4
	to  netip.AddrPort
}

// answer is the reply to req, if any (RFC 2131 §4.3): a DISCOVER gets an
// OFFER of the client's lease; a REQUEST gets an ACK of it, or a NAK when
// it asks for another address (after an OFFER of ours, at INIT-REBOOT or
// when renewing); a REQUEST that chose another server, a DECLINE, a
// RELEASE, an INFORM and every other message get nothing. So do a MAC
// that no lease belongs to, a reply (op BOOTREPLY), a hardware type other
// than Ethernet, a relayed request (giaddr set: cove serves its bridge
// only), a message without a DHCP message type (BOOTP) and one whose
// server identifier is malformed. A DECLINE is logged: the client saw its
// address in use.
func (r *responder) answer(req *dhcpv4.DHCPv4) (reply, bool) {
	mac, ok := clientMAC(req)
	if !ok || !unspecified(req.GatewayIPAddr) {
		return reply{}, false
	}
	typ := req.MessageType()
	if typ != dhcpv4.MessageTypeDiscover && typ != dhcpv4.MessageTypeRequest && typ != dhcpv4.MessageTypeDecline {
		return reply{}, false
	}
	l, ok, err := r.c.Leases.Lookup(mac)
	if err != nil {
		r.c.Logf("%v from %v: %v", typ, mac, err)
		return reply{}, false
	}
	switch {
	case !ok:
		return reply{}, false
	case typ == dhcpv4.MessageTypeDecline:
		r.c.Logf("DHCPDECLINE from %v (%s): its address %v is in use on the network", mac, l.Workload, l.Addr)
		return reply{}, false
	case typ == dhcpv4.MessageTypeDiscover:
		return r.grant(req, dhcpv4.MessageTypeOffer, l), true
	}
	want, ours, ok := requested(req, r.c.Network.Gateway4)
	switch {
	case !ok || !ours:
		return reply{}, false
	case want != l.Addr:
		r.c.Logf("DHCPNAK to %v (%s): it asked for %v, its lease is %v", mac, l.Workload, want, l.Addr)
		return r.nak(req), true
	}
	r.c.Logf("DHCPACK %v to %v (%s)", l.Addr, mac, l.Workload)
	return r.grant(req, dhcpv4.MessageTypeAck, l), true
}

// requested is the address a REQUEST asks for (RFC 2131 §4.3.2): the
// requested IP address option after an OFFER (SELECTING, with a server
// identifier: ours is false when it names another server) and at
// INIT-REBOOT, else ciaddr (RENEWING, REBINDING). ok is false for a
// malformed server identifier or requested address.
func requested(req *dhcpv4.DHCPv4, self netip.Addr) (want netip.Addr, ours, ok bool) {
	if req.Options.Has(dhcpv4.OptionServerIdentifier) {
		sid := addr4(req.ServerIdentifier())
		if !sid.IsValid() {
			return netip.Addr{}, false, false
		}
		if sid != self {
			return netip.Addr{}, false, true
		}
	}
	if req.Options.Has(dhcpv4.OptionRequestedIPAddress) {
		want = addr4(req.RequestedIPAddress())
		return want, true, want.IsValid()
	}
	return addr4(req.ClientIPAddr), true, true
}

// grant is the OFFER or ACK (typ) of lease l to req's client, with the
// network's settings (see options), sent as destination says.
func (r *responder) grant(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType, l Lease) reply {
	m := r.base(req, typ)
	m.YourIPAddr = net.IP(l.Addr.AsSlice())
	if typ == dhcpv4.MessageTypeAck {
		m.ClientIPAddr = req.ClientIPAddr
	}
	for _, o := range r.options(l) {
		m.Options.Update(o)
	}
	return reply{m, r.destination(req, l)}
}

// nak is the NAK to req: always broadcast (RFC 2131 §4.1).
func (r *responder) nak(req *dhcpv4.DHCPv4) reply {
	return reply{r.base(req, dhcpv4.MessageTypeNak), netip.AddrPortFrom(r.c.broadcast, r.c.clientPort)}
}

// base is a reply of type typ to req with what every reply carries (RFC
// 2131 Table 3): xid, flags and chaddr of the request, the server
// identifier, and the client identifier if the client sent one (RFC
// 6842).
func (r *responder) base(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	m := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		ClientHWAddr:  req.ClientHWAddr,
		Options: dhcpv4.OptionsFromList(
			dhcpv4.OptMessageType(typ),
			dhcpv4.OptServerIdentifier(net.IP(r.c.Network.Gateway4.AsSlice())),
		),
	}
	if id := req.Options.Get(dhcpv4.OptionClientIdentifier); id != nil {
		m.Options.Update(dhcpv4.OptClientIdentifier(id))
	}
	return m
}

// options are the settings of lease l: the subnet mask and broadcast
// address of the network's Subnet4, its gateway as router, the lease
// time (renewal at half of it, rebinding at 7/8, RFC 2131 §4.4.5), the
// workload's name as host name and, unless the network has no DNS, its
// gateway as DNS server and its name as domain and search domain (as a
// container's resolv.conf has them; without DNS nothing about name
// service is offered).
func (r *responder) options(l Lease) []dhcpv4.Option {
	n := r.c.Network
	gw := net.IP(n.Gateway4.AsSlice())
	t := r.c.LeaseTime
	opts := []dhcpv4.Option{
		dhcpv4.OptSubnetMask(net.CIDRMask(n.Subnet4.Bits(), 32)),
		dhcpv4.OptBroadcastAddress(net.IP(plan.Last(n.Subnet4).AsSlice())),
		dhcpv4.OptRouter(gw),
		dhcpv4.OptIPAddressLeaseTime(t),
		dhcpv4.OptRenewTimeValue(t / 2),
		dhcpv4.OptRebindingTimeValue(t / 8 * 7),
		dhcpv4.OptHostName(l.Workload),
	}
	if !n.NoDNS {
		opts = append(opts, dhcpv4.OptDNS(gw))
		if plan.ValidDomain(n.Name) {
			opts = append(opts, dhcpv4.OptDomainName(n.Name), dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{n.Name}}))
		}
	}
	return opts
}

// destination is where a grant of l to req goes (RFC 2131 §4.1; giaddr
// is 0, see answer): to ciaddr when the client has its address
// configured and says so (ciaddr is l's address: renewing), else
// broadcast. A client without its address that clears the broadcast
// flag is broadcast to as well, which §4.1 allows where unicasting is
// not possible: a frame to its MAC and yiaddr needs a raw socket
// (CAP_NET_RAW) or an entry in the host's ARP table (CAP_NET_ADMIN),
// and the responder has no capability. Clients listen on a packet
// socket and take both.
func (r *responder) destination(req *dhcpv4.DHCPv4, l Lease) netip.AddrPort {
	if addr4(req.ClientIPAddr) == l.Addr {
		return netip.AddrPortFrom(l.Addr, r.c.clientPort)
	}
	return netip.AddrPortFrom(r.c.broadcast, r.c.clientPort)
}

// clientMAC is the Ethernet address of a request's client; ok is false
// for anything that is not a BOOTREQUEST from Ethernet.
func clientMAC(req *dhcpv4.DHCPv4) (plan.MAC, bool) {
	var mac plan.MAC
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != len(mac) {
		return mac, false
	}
	copy(mac[:], req.ClientHWAddr)
	return mac, true
}

// addr4 is ip as an IPv4 netip.Addr; invalid when it is none.
func addr4(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		return netip.Addr{}
	}
	return a
}

// unspecified says whether ip is 0.0.0.0 (or absent).
func unspecified(ip net.IP) bool { return ip == nil || ip.IsUnspecified() }

// leaseTime is t as a lease time that can be sent: whole seconds, at
// least a minute, less than "infinity" (2^32-1 s).
func leaseTime(t time.Duration) time.Duration {
	t = t.Truncate(time.Second)
	switch {
	case t < time.Minute:
		return time.Minute
	case t >= (1<<32-1)*time.Second:
		return (1<<32 - 2) * time.Second
	}
	return t
}
