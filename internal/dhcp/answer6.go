package dhcp

import (
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/cove-project/cove/internal/network/plan"
)

// reply6 is a DHCPv6 answer and where it goes: the address and port the
// client sent from (RFC 8415 §18.3: its link-local address, port 546).
type reply6 struct {
	msg *dhcpv6.Message
	to  netip.AddrPort
}

// answer6 is the reply to the DHCPv6 message m from src, if any (RFC
// 8415 §18.3). The client is the workload whose NIC's MAC its EUI-64
// link-local source address or else its DUID (DUID-LL or DUID-LLT)
// carries (clientMACs); its address is the IPv6 twin of that lease
// (plan.Addr6For), which an IA_NA binds.
//
//   - SOLICIT: an ADVERTISE with preference 255 (the client takes it at
//     once), or with Rapid Commit a REPLY;
//   - REQUEST, RENEW, REBIND: a REPLY binding the address (any other
//     address the client lists goes with lifetimes 0);
//   - CONFIRM: a REPLY saying whether the client's addresses are still
//     on the link (they are when they are its lease's);
//   - RELEASE, DECLINE: a REPLY with Success (nothing is ever allocated
//     here; a DECLINE is logged);
//   - INFORMATION-REQUEST: a REPLY with the name service alone.
//
// A relayed message, one without a client identifier, one that names
// another server (or, for SOLICIT, CONFIRM and REBIND, any server), one
// without an IA_NA where one is needed, a CONFIRM without an address
// (§18.3.3), an INFORMATION-REQUEST with an IA (§16.12), and a client
// that holds no lease get nothing, like every other message. Only the
// first IA_NA of a message is answered.
func (r *responder) answer6(m *dhcpv6.Message, src netip.AddrPort) (reply6, bool) {
	cid := m.Options.ClientID()
	if cid == nil || !r.serverIDFits(m) {
		return reply6{}, false
	}
	l, ok := r.lease6(cid, src.Addr())
	if !ok {
		return reply6{}, false
	}
	mods, ok := r.reply6Options(m, l)
	if !ok {
		return reply6{}, false
	}
	typ := dhcpv6.MessageTypeReply
	switch {
	case m.Type() != dhcpv6.MessageTypeSolicit:
	case m.GetOneOption(dhcpv6.OptionRapidCommit) == nil:
		typ, mods = dhcpv6.MessageTypeAdvertise, append(mods, dhcpv6.WithPreference(255))
	default:
		mods = append(mods, dhcpv6.WithRapidCommit)
	}
	rep := &dhcpv6.Message{MessageType: typ, TransactionID: m.TransactionID}
	rep.AddOption(dhcpv6.OptClientID(cid))
	for _, mod := range mods {
		mod(rep)
	}
	if rep.Type() == dhcpv6.MessageTypeReply {
		r.c.Logf("DHCPv6 REPLY to %v from %s (%v)", m.Type(), l.Workload, l.Addr)
	}
	return reply6{rep, src}, true
}

// serverIDFits says whether m's server identifier is as its type wants
// (RFC 8415 §16): ours for REQUEST, RENEW, RELEASE and DECLINE; none for
// SOLICIT, CONFIRM and REBIND; none or ours for INFORMATION-REQUEST.
// Every other type does not fit.
func (r *responder) serverIDFits(m *dhcpv6.Message) bool {
	sid := m.Options.ServerID()
	ours := sid != nil && sid.Equal(r.duid())
	switch m.Type() {
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		return ours
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeRebind:
		return sid == nil
	case dhcpv6.MessageTypeInformationRequest:
		return sid == nil || ours
	}
	return false
}

// duid is the responder's DUID: DUID-LL of the network's bridge MAC
// (plan.BridgeMAC), the same for every start.
func (r *responder) duid() dhcpv6.DUID {
	mac := plan.BridgeMAC(r.c.Network.Name)
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr(mac[:])}
}

// lease6 is the lease of the client with DUID cid sending from src, with
// its IPv6 address as Addr: that of the MAC clientMACs finds, if it holds
// one.
func (r *responder) lease6(cid dhcpv6.DUID, src netip.Addr) (Lease, bool) {
	for _, mac := range clientMACs(cid, src) {
		l, ok, err := r.c.Leases.Lookup(mac)
		if err != nil {
			r.c.Logf("DHCPv6 from %v: %v", mac, err)
			return Lease{}, false
		}
		if !ok {
			continue
		}
		if a6 := plan.Addr6For(r.c.Network, l.Addr); a6.IsValid() {
			return Lease{Workload: l.Workload, Addr: a6}, true
		}
	}
	return Lease{}, false
}

// clientMACs are the Ethernet addresses a DHCPv6 client may be known by:
// the one in its source address when that is a link-local address with
// an EUI-64 interface ID (RFC 4291 appendix A), and only that one: it is
// the NIC on this bridge. Otherwise the one in its DUID (DUID-LL,
// DUID-LLT), which may be stale: a DUID-LLT is kept for good (RFC 8415
// §11.2), also on a disk cloned from another VM. A client with another
// DUID and a link-local address of another kind (stable privacy, RFC
// 7217) has none.
func clientMACs(cid dhcpv6.DUID, src netip.Addr) []plan.MAC {
	if mac, ok := plan.LinkLocalMAC(src); ok {
		return []plan.MAC{mac}
	}
	var hw net.HardwareAddr
	switch d := cid.(type) {
	case *dhcpv6.DUIDLL:
		if d.HWType == iana.HWTypeEthernet {
			hw = d.LinkLayerAddr
		}
	case *dhcpv6.DUIDLLT:
		if d.HWType == iana.HWTypeEthernet {
			hw = d.LinkLayerAddr
		}
	}
	var mac plan.MAC
	if len(hw) != len(mac) {
		return nil
	}
	copy(mac[:], hw)
	return []plan.MAC{mac}
}

// reply6Options are what the answer to m from the client with lease l
// (its IPv6 address) carries besides the client identifier (see
// answer6): the server identifier, the message's own part and the name
// service (unless the network has none: the gateway as DNS server, the
// network as search domain, as in a container's resolv.conf). ok is
// false when m is not answered.
func (r *responder) reply6Options(m *dhcpv6.Message, l Lease) ([]dhcpv6.Modifier, bool) {
	mods := []dhcpv6.Modifier{dhcpv6.WithServerID(r.duid())}
	switch m.Type() {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		ia := m.Options.OneIANA()
		if ia == nil {
			return nil, false
		}
		mods = append(mods, dhcpv6.WithOption(r.binding(ia, l.Addr)))
	case dhcpv6.MessageTypeConfirm:
		status, ok := confirmed(m, l.Addr)
		if !ok {
			return nil, false
		}
		mods = append(mods, dhcpv6.WithOption(&dhcpv6.OptStatusCode{StatusCode: status}))
	case dhcpv6.MessageTypeInformationRequest:
		if m.GetOneOption(dhcpv6.OptionIANA) != nil || m.GetOneOption(dhcpv6.OptionIATA) != nil || m.GetOneOption(dhcpv6.OptionIAPD) != nil {
			return nil, false
		}
	case dhcpv6.MessageTypeDecline:
		r.c.Logf("DHCPv6 DECLINE from %s: its address %v is in use on the network", l.Workload, l.Addr)
		fallthrough
	case dhcpv6.MessageTypeRelease:
		mods = append(mods, dhcpv6.WithOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess}))
	}
	if n := r.c.Network; !n.NoDNS {
		mods = append(mods, dhcpv6.WithDNS(net.IP(n.Gateway6.AsSlice())))
		if plan.ValidDomain(n.Name) {
			mods = append(mods, dhcpv6.WithDomainSearchList(n.Name))
		}
	}
	return mods, true
}

// binding is the IA_NA of the answer to a client's ia: the same IAID,
// address a for the lease time (renewal at half of it, rebinding at 7/8,
// as for IPv4), and every other address ia lists with lifetimes 0 (RFC
// 8415 §18.3.4: the client must stop using it).
func (r *responder) binding(ia *dhcpv6.OptIANA, a netip.Addr) *dhcpv6.OptIANA {
	t := r.c.LeaseTime
	out := &dhcpv6.OptIANA{IaId: ia.IaId, T1: t / 2, T2: t / 8 * 7}
	out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.IP(a.AsSlice()), PreferredLifetime: t, ValidLifetime: t})
	for _, old := range ia.Options.Addresses() {
		if o, ok := netip.AddrFromSlice(old.IPv6Addr); !ok || o.Unmap() != a {
			out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: old.IPv6Addr}) // lifetimes 0
		}
	}
	return out
}

// confirmed is the status of a CONFIRM (RFC 8415 §18.3.3): Success when
// every address in its IA_NAs is a, NotOnLink otherwise; ok is false for
// a CONFIRM without an address, which gets no answer.
func confirmed(m *dhcpv6.Message, a netip.Addr) (status iana.StatusCode, ok bool) {
	status = iana.StatusSuccess
	for _, ia := range m.Options.IANA() {
		for _, addr := range ia.Options.Addresses() {
			ok = true
			if o, valid := netip.AddrFromSlice(addr.IPv6Addr); !valid || o.Unmap() != a {
				status = iana.StatusNotOnLink
			}
		}
	}
	return status, ok
}
