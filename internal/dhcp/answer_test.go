package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/cove-project/cove/internal/network/plan"
)

// The test network, its VM's lease, and a MAC no lease belongs to.
var (
	testNet = plan.Complete(plan.Network{Name: "lab", Subnet4: netip.MustParsePrefix("198.18.4.0/24")})
	vmLease = Lease{Workload: "vm1", Addr: netip.MustParseAddr("198.18.4.7")}
	vmMAC   = plan.WorkloadMAC("lab", "vm1")
	stray   = plan.MAC{0x02, 0, 0, 0, 0, 0x99}
)

// fakeLeases is a Leases of fixed leases, or an error.
type fakeLeases struct {
	leases map[plan.MAC]Lease
	err    error
}

func (f fakeLeases) Lookup(mac plan.MAC) (Lease, bool, error) {
	l, ok := f.leases[mac]
	return l, ok, f.err
}

// testResponder answers for n with vmLease as vmMAC's; what it logs
// goes to *logs.
func testResponder(n plan.Network, logs *[]string) *responder {
	c := Config{Network: n, Leases: fakeLeases{leases: map[plan.MAC]Lease{vmMAC: vmLease}}}
	c.Logf = func(format string, args ...any) { *logs = append(*logs, fmt.Sprintf(format, args...)) }
	return &responder{c: c.withDefaults()}
}

// request is a request of type typ from mac with modifiers.
func request(t *testing.T, typ dhcpv4.MessageType, mac plan.MAC, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac[:]), dhcpv4.WithMessageType(typ)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var (
	gw        = net.ParseIP("198.18.4.1").To4()
	broadcast = netip.MustParseAddrPort("255.255.255.255:68")
)

func withServerID(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(ip)))
}

func withRequested(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
}

// TestAnswer: which request gets which reply, sent where (RFC 2131
// §4.1, §4.3).
func TestAnswer(t *testing.T) {
	renewing := netip.AddrPortFrom(vmLease.Addr, 68)
	for _, c := range []struct {
		name string
		typ  dhcpv4.MessageType
		mac  plan.MAC
		mods []dhcpv4.Modifier
		want dhcpv4.MessageType // MessageTypeNone: no reply
		to   netip.AddrPort
	}{
		{"discover", dhcpv4.MessageTypeDiscover, vmMAC, nil, dhcpv4.MessageTypeOffer, broadcast},
		{"discover, broadcast flag", dhcpv4.MessageTypeDiscover, vmMAC, []dhcpv4.Modifier{dhcpv4.WithBroadcast(true)}, dhcpv4.MessageTypeOffer, broadcast},
		{"discover of a stranger", dhcpv4.MessageTypeDiscover, stray, nil, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"selecting ours", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{withServerID("198.18.4.1"), withRequested("198.18.4.7")}, dhcpv4.MessageTypeAck, broadcast},
		{"selecting another server", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{withServerID("198.18.4.2"), withRequested("198.18.4.7")}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"selecting another address", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{withServerID("198.18.4.1"), withRequested("198.18.4.8")}, dhcpv4.MessageTypeNak, broadcast},
		{"init-reboot", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{withRequested("198.18.4.7")}, dhcpv4.MessageTypeAck, broadcast},
		{"init-reboot elsewhere", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{withRequested("10.0.0.7")}, dhcpv4.MessageTypeNak, broadcast},
		{"renewing", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{dhcpv4.WithClientIP(net.ParseIP("198.18.4.7"))}, dhcpv4.MessageTypeAck, renewing},
		{"renewing, broadcast flag", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{dhcpv4.WithClientIP(net.ParseIP("198.18.4.7")), dhcpv4.WithBroadcast(true)}, dhcpv4.MessageTypeAck, renewing},
		{"renewing another address", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{dhcpv4.WithClientIP(net.ParseIP("198.18.4.9"))}, dhcpv4.MessageTypeNak, broadcast},
		{"request without an address", dhcpv4.MessageTypeRequest, vmMAC, nil, dhcpv4.MessageTypeNak, broadcast},
		{"request of a stranger", dhcpv4.MessageTypeRequest, stray, []dhcpv4.Modifier{withRequested("198.18.4.7")}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"malformed server identifier", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{dhcpv4.WithGeneric(dhcpv4.OptionServerIdentifier, []byte{198, 18, 4})}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"malformed requested address", dhcpv4.MessageTypeRequest, vmMAC, []dhcpv4.Modifier{dhcpv4.WithGeneric(dhcpv4.OptionRequestedIPAddress, []byte{1})}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"inform", dhcpv4.MessageTypeInform, vmMAC, []dhcpv4.Modifier{dhcpv4.WithClientIP(net.ParseIP("198.18.4.7"))}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"release", dhcpv4.MessageTypeRelease, vmMAC, nil, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"decline", dhcpv4.MessageTypeDecline, vmMAC, nil, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"an offer", dhcpv4.MessageTypeOffer, vmMAC, nil, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"bootp", dhcpv4.MessageTypeNone, vmMAC, []dhcpv4.Modifier{func(d *dhcpv4.DHCPv4) { d.Options = dhcpv4.Options{} }}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"a reply", dhcpv4.MessageTypeDiscover, vmMAC, []dhcpv4.Modifier{func(d *dhcpv4.DHCPv4) { d.OpCode = dhcpv4.OpcodeBootReply }}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"not ethernet", dhcpv4.MessageTypeDiscover, vmMAC, []dhcpv4.Modifier{func(d *dhcpv4.DHCPv4) { d.HWType = iana.HWTypeIEEE802 }}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"a long hardware address", dhcpv4.MessageTypeDiscover, vmMAC, []dhcpv4.Modifier{func(d *dhcpv4.DHCPv4) { d.ClientHWAddr = append(d.ClientHWAddr, 0, 0) }}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
		{"relayed", dhcpv4.MessageTypeDiscover, vmMAC, []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.ParseIP("198.18.4.50"))}, dhcpv4.MessageTypeNone, netip.AddrPort{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs []string
			req := request(t, c.typ, c.mac, c.mods...)
			rep, ok := testResponder(testNet, &logs).answer(req)
			if c.want == dhcpv4.MessageTypeNone {
				if ok {
					t.Errorf("want no reply, got %v to %v", rep.msg.Summary(), rep.to)
				}
				return
			}
			if !ok || rep.msg.MessageType() != c.want || rep.to != c.to {
				t.Fatalf("want %v to %v, got %v (%v)", c.want, c.to, rep.to, rep.msg)
			}
			checkHeader(t, req, rep.msg)
		})
	}
}

// checkHeader checks what every reply to req carries (RFC 2131 Table 3)
// and that it survives the wire.
func checkHeader(t *testing.T, req, m *dhcpv4.DHCPv4) {
	t.Helper()
	if _, err := dhcpv4.FromBytes(m.ToBytes()); err != nil {
		t.Errorf("the reply does not parse: %v", err)
	}
	if m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != req.TransactionID || m.Flags != req.Flags ||
		!slices.Equal(m.ClientHWAddr, req.ClientHWAddr) || !m.ServerIdentifier().Equal(gw) || !m.GatewayIPAddr.IsUnspecified() {
		t.Errorf("reply header: %v", m)
	}
	wantYour := net.IPv4zero
	if m.MessageType() != dhcpv4.MessageTypeNak {
		wantYour = net.ParseIP(vmLease.Addr.String())
	}
	if !m.YourIPAddr.Equal(wantYour) {
		t.Errorf("yiaddr %v, want %v", m.YourIPAddr, wantYour)
	}
	if m.MessageType() == dhcpv4.MessageTypeNak && (m.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || m.Options.Has(dhcpv4.OptionRouter)) {
		t.Errorf("a NAK with lease options: %v", m)
	}
}

// TestOptions: an OFFER and an ACK carry the network's settings and
// the workload's name; without DNS, nothing about name service; the
// client identifier is echoed.
func TestOptions(t *testing.T) {
	var logs []string
	id := []byte{1, 2, 3, 4}
	req := request(t, dhcpv4.MessageTypeDiscover, vmMAC, dhcpv4.WithOption(dhcpv4.OptClientIdentifier(id)))
	rep, ok := testResponder(testNet, &logs).answer(req)
	if !ok {
		t.Fatal("no offer")
	}
	m := rep.msg
	got := fmt.Sprintf("mask %v router %v dns %v domain %q search %v host %q lease %v t1 %v t2 %v bcast %v id %v",
		net.IP(m.SubnetMask()), m.Router(), m.DNS(), m.DomainName(), m.DomainSearch().Labels, m.HostName(),
		m.IPAddressLeaseTime(0), m.IPAddressRenewalTime(0), m.IPAddressRebindingTime(0), m.BroadcastAddress(), m.Options.Get(dhcpv4.OptionClientIdentifier))
	want := `mask 255.255.255.0 router [198.18.4.1] dns [198.18.4.1] domain "lab" search [lab] host "vm1" lease 12h0m0s t1 6h0m0s t2 10h30m0s bcast 198.18.4.255 id [1 2 3 4]`
	if got != want {
		t.Errorf("offer options:\n got %s\nwant %s", got, want)
	}

	quiet := testNet
	quiet.NoDNS = true
	req = request(t, dhcpv4.MessageTypeRequest, vmMAC, withRequested("198.18.4.7"))
	rep, ok = testResponder(quiet, &logs).answer(req)
	if !ok || rep.msg.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("no ACK without DNS: %v", rep.msg)
	}
	for _, o := range []dhcpv4.OptionCode{dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName, dhcpv4.OptionDNSDomainSearchList} {
		if rep.msg.Options.Has(o) {
			t.Errorf("without DNS the ACK has %v: %v", o, rep.msg)
		}
	}
	if len(rep.msg.Router()) != 1 {
		t.Errorf("without DNS the ACK lost its router: %v", rep.msg)
	}
}

// TestAnswerLogs: ACKs, NAKs and DECLINEs are logged, and so is a lease
// table that cannot be read (which gets no reply).
func TestAnswerLogs(t *testing.T) {
	var logs []string
	r := testResponder(testNet, &logs)
	r.answer(request(t, dhcpv4.MessageTypeRequest, vmMAC, withRequested("198.18.4.7")))
	r.answer(request(t, dhcpv4.MessageTypeRequest, vmMAC, withRequested("198.18.4.8")))
	r.answer(request(t, dhcpv4.MessageTypeDecline, vmMAC))
	r.c.Leases = fakeLeases{err: errors.New("disk on fire")}
	if _, ok := r.answer(request(t, dhcpv4.MessageTypeDiscover, vmMAC)); ok {
		t.Error("a reply although the leases could not be read")
	}
	want := []string{"DHCPACK 198.18.4.7", "DHCPNAK", "DHCPDECLINE", "disk on fire"}
	if len(logs) != len(want) {
		t.Fatalf("logged %q, want %d lines", logs, len(want))
	}
	for i, w := range want {
		if !strings.Contains(logs[i], w) || !strings.Contains(logs[i], vmMAC.String()) {
			t.Errorf("log line %d: %q, want %q and the MAC", i, logs[i], w)
		}
	}
}

// TestLeaseTime: lease times are whole seconds, at least a minute, and
// never "infinity".
func TestLeaseTime(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0: time.Minute, 1500 * time.Millisecond: time.Minute, 90*time.Second + 1: 90 * time.Second,
		12 * time.Hour: 12 * time.Hour, 1 << 62: (1<<32 - 2) * time.Second,
	} {
		if got := leaseTime(in); got != want {
			t.Errorf("leaseTime(%v) = %v, want %v", in, got, want)
		}
	}
}

// FuzzAnswer: no datagram makes the parser or the responder panic, and
// every reply parses again.
func FuzzAnswer(f *testing.F) {
	for _, m := range []*dhcpv4.DHCPv4{
		mustNew(f, dhcpv4.MessageTypeDiscover),
		mustNew(f, dhcpv4.MessageTypeRequest, withRequested("198.18.4.7"), withServerID("198.18.4.1")),
		mustNew(f, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.ParseIP("198.18.4.7"))),
	} {
		f.Add(m.ToBytes())
	}
	f.Add([]byte{})
	f.Add(make([]byte, 240))
	var logs []string
	r := testResponder(testNet, &logs)
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		if rep, ok := r.answer(req); ok {
			if _, err := dhcpv4.FromBytes(rep.msg.ToBytes()); err != nil {
				t.Errorf("reply %v does not parse: %v", rep.msg, err)
			}
		}
		logs = logs[:0]
	})
}

// mustNew is a request from vmMAC for FuzzAnswer's corpus.
func mustNew(f *testing.F, typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(vmMAC[:]), dhcpv4.WithMessageType(typ)}, mods...)...)
	if err != nil {
		f.Fatal(err)
	}
	return m
}
