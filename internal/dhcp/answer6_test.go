package dhcp

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/cove-project/cove/internal/network/plan"
)

var (
	// vmAddr6 is the IPv6 twin of vmLease.
	vmAddr6 = plan.Addr6For(testNet, vmLease.Addr)
	// eui64Src is a link-local address with vmMAC's EUI-64 interface ID.
	eui64Src = netip.AddrPortFrom(eui64(vmMAC), 546)
	// privateSrc is a link-local address of another kind.
	privateSrc = netip.MustParseAddrPort("[fe80::1c2b:3a4d:5e6f:7081]:546")
	// duidEN is a DUID that carries no MAC.
	duidEN = &dhcpv6.DUIDEN{EnterpriseNumber: 43793, EnterpriseIdentifier: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
)

// eui64 is the link-local address with mac's EUI-64 interface ID.
func eui64(mac plan.MAC) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 8: mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]})
}

// llt is the DUID-LLT of mac.
func llt(mac plan.MAC) dhcpv6.DUID {
	return &dhcpv6.DUIDLLT{HWType: iana.HWTypeEthernet, Time: 12345, LinkLayerAddr: net.HardwareAddr(mac[:])}
}

// message6 is a DHCPv6 message of type typ from the client with DUID
// cid, with an IA_NA (IAID 7) listing addrs unless noIA, and mods.
func message6(t *testing.T, typ dhcpv6.MessageType, cid dhcpv6.DUID, noIA bool, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage(dhcpv6.WithClientID(cid))
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = typ
	if !noIA {
		m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 7}})
	}
	for _, mod := range mods {
		mod(m)
	}
	// What the client sends is what the responder reads: through bytes.
	back, err := dhcpv6.MessageFromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// withAddrs lists addrs in the message's IA_NA.
func withAddrs(addrs ...string) dhcpv6.Modifier {
	var opts []dhcpv6.OptIAAddress
	for _, a := range addrs {
		opts = append(opts, dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(a), PreferredLifetime: time.Hour, ValidLifetime: time.Hour})
	}
	return dhcpv6.WithIANA(opts...)
}

// ourID names the test responder as the server.
func ourID() dhcpv6.Modifier { return dhcpv6.WithServerID(ourDUID()) }

// TestAnswer6Binds: a SOLICIT of the lease's client (known by its DUID-LLT)
// gets an ADVERTISE with preference 255 of the lease's IPv6 twin in its
// IA_NA (same IAID, lease time, T1 at half, T2 at 7/8), the server's
// DUID-LL of the bridge's MAC, the gateway as DNS server and the network
// as search domain, sent back to where it came from; a REQUEST, RENEW
// and REBIND get a REPLY binding the same, a SOLICIT with Rapid Commit
// too. What a REPLY binds is logged.
func TestAnswer6Binds(t *testing.T) {
	var logs []string
	r := testResponder(testNet, &logs)
	cases := []struct {
		name string
		m    *dhcpv6.Message
		want dhcpv6.MessageType
	}{
		{"solicit", message6(t, dhcpv6.MessageTypeSolicit, llt(vmMAC), false), dhcpv6.MessageTypeAdvertise},
		{"rapid", message6(t, dhcpv6.MessageTypeSolicit, llt(vmMAC), false, dhcpv6.WithRapidCommit), dhcpv6.MessageTypeReply},
		{"request", message6(t, dhcpv6.MessageTypeRequest, llt(vmMAC), false, ourID()), dhcpv6.MessageTypeReply},
		{"renew", message6(t, dhcpv6.MessageTypeRenew, llt(vmMAC), false, ourID(), withAddrs(vmAddr6.String())), dhcpv6.MessageTypeReply},
		{"rebind", message6(t, dhcpv6.MessageTypeRebind, llt(vmMAC), false, withAddrs(vmAddr6.String())), dhcpv6.MessageTypeReply},
	}
	for _, c := range cases {
		rep, ok := r.answer6(c.m, privateSrc)
		if !ok {
			t.Errorf("%s: no answer", c.name)
			continue
		}
		checkBinding(t, c.name, rep, c.m, c.want)
	}
	if !slices.Contains(logs, "DHCPv6 REPLY to REQUEST from vm1 ("+vmAddr6.String()+")") || len(logs) != 4 {
		t.Errorf("logs: %q", logs)
	}
}

// checkBinding checks an answer of type want to m that binds vmAddr6.
func checkBinding(t *testing.T, name string, rep reply6, m *dhcpv6.Message, want dhcpv6.MessageType) {
	t.Helper()
	got := rep.msg
	if got.Type() != want || got.TransactionID != m.TransactionID || rep.to != privateSrc {
		t.Errorf("%s: %v (xid %v) to %v, want %v (xid %v) to %v", name, got.Type(), got.TransactionID, rep.to, want, m.TransactionID, privateSrc)
	}
	if !got.Options.ClientID().Equal(m.Options.ClientID()) || !got.Options.ServerID().Equal(ourDUID()) {
		t.Errorf("%s: client %v, server %v", name, got.Options.ClientID(), got.Options.ServerID())
	}
	ia := got.Options.OneIANA()
	if ia == nil || ia.IaId != [4]byte{0, 0, 0, 7} || ia.T1 != 6*time.Hour || ia.T2 != 12*time.Hour/8*7 {
		t.Fatalf("%s: IA_NA %v", name, ia)
	}
	if as := ia.Options.Addresses(); len(as) != 1 || !as[0].IPv6Addr.Equal(net.IP(vmAddr6.AsSlice())) || as[0].ValidLifetime != 12*time.Hour || as[0].PreferredLifetime != 12*time.Hour {
		t.Errorf("%s: addresses %v, want %v for 12h", name, as, vmAddr6)
	}
	if dns := got.Options.DNS(); len(dns) != 1 || !dns[0].Equal(net.IP(testNet.Gateway6.AsSlice())) {
		t.Errorf("%s: DNS %v, want %v", name, dns, testNet.Gateway6)
	}
	if s := got.Options.DomainSearchList(); s == nil || !slices.Equal(s.Labels, []string{"lab"}) {
		t.Errorf("%s: search list %v", name, s)
	}
	rapid := got.GetOneOption(dhcpv6.OptionRapidCommit) != nil
	if pref := got.Options.Preference(); (want == dhcpv6.MessageTypeAdvertise) != (pref == 255) || rapid != (m.GetOneOption(dhcpv6.OptionRapidCommit) != nil) {
		t.Errorf("%s: preference %d, rapid commit %v", name, pref, rapid)
	}
}

// ourDUID is the test responder's DUID: DUID-LL of the bridge's MAC.
func ourDUID() dhcpv6.DUID {
	mac := plan.BridgeMAC("lab")
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr(mac[:])}
}

// TestAnswer6KnowsClients: a client is known by the EUI-64 link-local
// address it sends from, whatever its DUID, or else by the MAC in its
// DUID-LL or DUID-LLT (a DUID-EN carries no MAC). A client with neither,
// whose MAC holds no lease, or that sends from a stranger's EUI-64
// address with a leased VM's DUID-LLT (a disk cloned from that VM), gets
// nothing.
func TestAnswer6KnowsClients(t *testing.T) {
	var logs []string
	r := testResponder(testNet, &logs)
	ll := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr(vmMAC[:])}
	for _, c := range []struct {
		name string
		cid  dhcpv6.DUID
		src  netip.AddrPort
		ok   bool
	}{
		{"DUID-LL", ll, privateSrc, true},
		{"DUID-LLT", llt(vmMAC), privateSrc, true},
		{"DUID-EN from EUI-64", duidEN, eui64Src, true},
		{"another NIC's DUID-LLT from EUI-64", llt(stray), eui64Src, true},
		{"DUID-EN from a private address", duidEN, privateSrc, false},
		{"a stranger", llt(stray), netip.AddrPortFrom(eui64(stray), 546), false},
		{"a clone of the VM's disk", llt(vmMAC), netip.AddrPortFrom(eui64(stray), 546), false},
	} {
		rep, ok := r.answer6(message6(t, dhcpv6.MessageTypeSolicit, c.cid, false), c.src)
		if ok != c.ok {
			t.Errorf("%s: answered %v, want %v", c.name, ok, c.ok)
		}
		if ok && rep.to != c.src {
			t.Errorf("%s: sent to %v, want %v", c.name, rep.to, c.src)
		}
	}
}

// TestAnswer6Ignores: a REQUEST or RENEW without our server identifier or
// with another's, a SOLICIT, REBIND or CONFIRM with one, a SOLICIT
// without an IA_NA, an INFORMATION-REQUEST with one, a CONFIRM without an
// address and a message of a server's type get nothing.
func TestAnswer6Ignores(t *testing.T) {
	var logs []string
	r := testResponder(testNet, &logs)
	other := dhcpv6.WithServerID(llt(stray))
	for name, m := range map[string]*dhcpv6.Message{
		"request without server":  message6(t, dhcpv6.MessageTypeRequest, llt(vmMAC), false),
		"request to another":      message6(t, dhcpv6.MessageTypeRequest, llt(vmMAC), false, other),
		"renew to another":        message6(t, dhcpv6.MessageTypeRenew, llt(vmMAC), false, other),
		"solicit with server":     message6(t, dhcpv6.MessageTypeSolicit, llt(vmMAC), false, ourID()),
		"rebind with server":      message6(t, dhcpv6.MessageTypeRebind, llt(vmMAC), false, ourID()),
		"confirm with server":     message6(t, dhcpv6.MessageTypeConfirm, llt(vmMAC), false, ourID()),
		"solicit without IA_NA":   message6(t, dhcpv6.MessageTypeSolicit, llt(vmMAC), true),
		"information to another":  message6(t, dhcpv6.MessageTypeInformationRequest, llt(vmMAC), true, other),
		"an advertise":            message6(t, dhcpv6.MessageTypeAdvertise, llt(vmMAC), false, ourID()),
		"a reply":                 message6(t, dhcpv6.MessageTypeReply, llt(vmMAC), false, ourID()),
		"a reconfigure":           message6(t, dhcpv6.MessageTypeReconfigure, llt(vmMAC), false, ourID()),
		"release without server":  message6(t, dhcpv6.MessageTypeRelease, llt(vmMAC), false),
		"decline to another":      message6(t, dhcpv6.MessageTypeDecline, llt(vmMAC), false, other),
		"request of a stranger":   message6(t, dhcpv6.MessageTypeRequest, llt(stray), false, ourID()),
		"information of stranger": message6(t, dhcpv6.MessageTypeInformationRequest, llt(stray), true),
		"information with IA_NA":  message6(t, dhcpv6.MessageTypeInformationRequest, llt(vmMAC), false),
		"confirm of nothing":      message6(t, dhcpv6.MessageTypeConfirm, llt(vmMAC), false),
	} {
		if rep, ok := r.answer6(m, privateSrc); ok {
			t.Errorf("%s: answered %v", name, rep.msg.Summary())
		}
	}
}

// TestAnswer6Status: a RENEW listing an address that is not the lease's
// gets it back with lifetimes 0 beside the lease's; a CONFIRM of the
// lease's address gets Success, of another NotOnLink; a RELEASE and a
// DECLINE get Success (a DECLINE is logged); an INFORMATION-REQUEST gets
// the name service and no IA_NA; a network without DNS offers none.
func TestAnswer6Status(t *testing.T) {
	var logs []string
	r := testResponder(testNet, &logs)
	renew := message6(t, dhcpv6.MessageTypeRenew, llt(vmMAC), false, ourID(), withAddrs("fd00::99", vmAddr6.String()))
	rep, ok := r.answer6(renew, privateSrc)
	if !ok {
		t.Fatal("renew: no answer")
	}
	var got []string
	for _, a := range rep.msg.Options.OneIANA().Options.Addresses() {
		got = append(got, a.IPv6Addr.String()+" "+a.ValidLifetime.String())
	}
	if want := []string{vmAddr6.String() + " 12h0m0s", "fd00::99 0s"}; !slices.Equal(got, want) {
		t.Errorf("renew binds %v, want %v", got, want)
	}
	for _, c := range []struct {
		name string
		m    *dhcpv6.Message
		want iana.StatusCode
	}{
		{"confirm", message6(t, dhcpv6.MessageTypeConfirm, llt(vmMAC), false, withAddrs(vmAddr6.String())), iana.StatusSuccess},
		{"confirm elsewhere", message6(t, dhcpv6.MessageTypeConfirm, llt(vmMAC), false, withAddrs("fd00::99")), iana.StatusNotOnLink},
		{"release", message6(t, dhcpv6.MessageTypeRelease, llt(vmMAC), false, ourID(), withAddrs(vmAddr6.String())), iana.StatusSuccess},
		{"decline", message6(t, dhcpv6.MessageTypeDecline, llt(vmMAC), false, ourID(), withAddrs(vmAddr6.String())), iana.StatusSuccess},
	} {
		rep, ok := r.answer6(c.m, privateSrc)
		if !ok || rep.msg.Type() != dhcpv6.MessageTypeReply || rep.msg.Options.Status() == nil || rep.msg.Options.Status().StatusCode != c.want {
			t.Errorf("%s: answered %v (%v), want a REPLY with status %v", c.name, ok, rep.msg, c.want)
		}
	}
	if !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, "DECLINE from vm1: its address "+vmAddr6.String()) }) {
		t.Errorf("the DECLINE was not logged: %q", logs)
	}
	info, ok := r.answer6(message6(t, dhcpv6.MessageTypeInformationRequest, llt(vmMAC), true), privateSrc)
	if !ok || info.msg.Options.OneIANA() != nil || len(info.msg.Options.DNS()) != 1 {
		t.Errorf("information request: answered %v: %v", ok, info.msg)
	}
	quiet := testNet
	quiet.NoDNS = true
	rep, ok = testResponder(quiet, &logs).answer6(message6(t, dhcpv6.MessageTypeSolicit, llt(vmMAC), false), privateSrc)
	if !ok || rep.msg.Options.DNS() != nil || rep.msg.Options.DomainSearchList() != nil {
		t.Errorf("a network without DNS: answered %v: %v", ok, rep.msg)
	}
}

// TestServeDHCPv6: Serve answers a DHCPv6 SOLICIT that arrives on an IPv6
// socket (here [::1]) from where it came, and asks for a router
// advertisement after it (Config.Advertise); a stranger's SOLICIT and a
// datagram that does not parse get no answer and ask for none.
func TestServeDHCPv6(t *testing.T) {
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	client, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var advertised atomic.Int32
	c := Config{Network: testNet, Leases: fakeLeases{leases: map[plan.MAC]Lease{vmMAC: vmLease}}, Advertise: func() { advertised.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, []net.PacketConn{pc}, c) }()
	defer func() { cancel(); <-done }()
	for _, b := range [][]byte{{1, 2, 3}, message6(t, dhcpv6.MessageTypeSolicit, llt(stray), false).ToBytes(), message6(t, dhcpv6.MessageTypeSolicit, llt(vmMAC), false).ToBytes()} {
		if _, err := client.WriteTo(b, pc.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := client.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	m, err := dhcpv6.MessageFromBytes(buf[:n])
	if err != nil || m.Type() != dhcpv6.MessageTypeAdvertise || m.Options.OneIANA() == nil || !m.Options.OneIANA().Options.OneAddress().IPv6Addr.Equal(net.IP(vmAddr6.AsSlice())) {
		t.Fatalf("answer %v (%v), want an ADVERTISE of %v", m, err, vmAddr6)
	}
	client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, _, err := client.ReadFrom(buf); err == nil {
		t.Errorf("a second answer came")
	}
	if got := advertised.Load(); got != 1 {
		t.Errorf("asked for %d router advertisements, want 1", got)
	}
}
