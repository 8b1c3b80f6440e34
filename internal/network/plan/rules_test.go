package plan

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// chainText is one chain of t, its rules one a line.
func chainText(t Table, chain string) string {
	for _, c := range t.Chains {
		if c.Name == chain {
			var lines []string
			for _, r := range c.Rules {
				lines = append(lines, r.String())
			}
			return strings.Join(lines, "\n")
		}
	}
	return ""
}

func TestFirewallInput(t *testing.T) {
	n := Complete(Network{Name: "web", Subnet4: netip.MustParsePrefix("10.78.0.0/24"), AllowHost: []HostService{{Port: 8443, Proto: TCP}}})
	gw6 := n.Gateway6.String()
	want := strings.Join([]string{
		`iifname "cove-web" ct state established,related accept`,
		`iifname "cove-web" ip daddr 10.78.0.1 udp dport 53 accept`,
		`iifname "cove-web" ip6 daddr ` + gw6 + ` udp dport 53 accept`,
		`iifname "cove-web" ip daddr 10.78.0.1 tcp dport 53 accept`,
		`iifname "cove-web" ip6 daddr ` + gw6 + ` tcp dport 53 accept`,
		`iifname "cove-web" ip daddr 10.78.0.1 tcp dport 8443 accept`,
		`iifname "cove-web" ip6 daddr ` + gw6 + ` tcp dport 8443 accept`,
		`iifname "cove-web" udp dport 67 accept`,
		`iifname "cove-web" udp dport 547 accept`,
		`iifname "cove-web" meta l4proto icmp accept`,
		`iifname "cove-web" meta l4proto ipv6-icmp accept`,
		`iifname "cove-web" drop`,
	}, "\n")
	if got := chainText(Firewall(n), "input"); got != want {
		t.Errorf("input chain:\n%s\nwant\n%s", got, want)
	}
	n.NoDNS = true
	if got := chainText(Firewall(n), "input"); strings.Contains(got, "dport 53") || !strings.Contains(got, "dport 8443") {
		t.Errorf("input chain without DNS:\n%s", got)
	}
	post := chainText(Firewall(n), "postrouting")
	for _, want := range []string{
		`oifname "cove-web" ip saddr 10.78.0.0/24 ct status dnat masquerade`,
		`oifname "cove-web" ip6 saddr ` + n.Subnet6.String() + ` ct status dnat masquerade`,
		`oifname "cove-web" ip saddr 127.0.0.0/8 masquerade`,
	} {
		if !strings.Contains(post, want) {
			t.Errorf("postrouting lacks %q:\n%s", want, post)
		}
	}
}

// TestFirewallIPv4Only: a network without IPv6 has no IPv6 rule (an
// invalid prefix would match every address).
func TestFirewallIPv4Only(t *testing.T) {
	n := Complete(Network{Name: "web", Subnet4: netip.MustParsePrefix("10.78.0.0/24"), NoIPv6: true})
	if n.Subnet6.IsValid() || n.Gateway6.IsValid() || Validate(n) != nil || Addr6For(n, netip.MustParseAddr("10.78.0.2")).IsValid() {
		t.Fatalf("network without IPv6: %+v (%v)", n, Validate(n))
	}
	fw := Firewall(n)
	for _, chain := range []string{"forward", "input", "postrouting"} {
		if got := chainText(fw, chain); strings.Contains(got, "ip6") || strings.Contains(got, "invalid") || strings.Contains(got, "dport 547") {
			t.Errorf("%s chain of a network without IPv6:\n%s", chain, got)
		}
	}
	if got := chainText(fw, "postrouting"); strings.Count(got, "masquerade") != 3 {
		t.Errorf("postrouting: want masquerade of the subnet out, of DNAT to the bridge and of 127.0.0.0/8:\n%s", got)
	}
}

func TestTableNames(t *testing.T) {
	names := []string{TableName("web"), TableName("wl-web"), WorkloadTableName("web"), WorkloadTableName("net-web")}
	for i, a := range names {
		if !strings.HasPrefix(a, TablePrefix) || slices.Contains(names[:i], a) {
			t.Errorf("table names %v: want distinct, each starting with %q", names, TablePrefix)
		}
	}
}

// testEndpoint is a workload's endpoint on the default network.
func testEndpoint() Endpoint {
	n := Default()
	a4 := netip.MustParseAddr("10.77.0.2")
	return Endpoint{Network: n, HostIf: "cvweb", Addr4: a4, Addr6: Addr6For(n, a4), MAC: MAC{2, 0, 0, 0, 0, 2}}
}

func TestWorkloadFirewallPorts(t *testing.T) {
	ep := testEndpoint()
	a6 := ep.Addr6.String()
	ports := []Port{
		{HostPort: 8080, ContainerPort: 80, Proto: TCP},
		{HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Proto: UDP},
		{HostAddr: netip.MustParseAddr("fd18::2"), HostPort: 8443, ContainerPort: 443, Proto: TCP},
		{HostAddr: netip.IPv6Loopback(), HostPort: 9443, ContainerPort: 443, Proto: TCP}, // its proxy's, no rule
	}
	tables := WorkloadFirewall("web", []Endpoint{ep, {HostIf: "cvother", Addr4: netip.MustParseAddr("10.78.0.2")}}, ports)
	if len(tables) != 2 || tables[0].Family != FamilyINet || tables[1].Family != FamilyBridge || tables[0].Name != "cove-wl-web" || tables[1].Name != "cove-wl-web" {
		t.Fatalf("tables %v", tables)
	}
	want := strings.Join([]string{
		"fib daddr type local tcp dport 8080 dnat ip to 10.77.0.2:80",
		"fib daddr type local ip6 daddr != ::1 tcp dport 8080 dnat ip6 to [" + a6 + "]:80",
		"ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.77.0.2:53",
		"ip6 daddr fd18::2 tcp dport 8443 dnat ip6 to [" + a6 + "]:443",
	}, "\n")
	for _, chain := range []string{"prerouting", "output"} {
		if got := chainText(tables[0], chain); got != want {
			t.Errorf("%s chain:\n%s\nwant (ports lead to the first endpoint)\n%s", chain, got, want)
		}
	}
	if got := WorkloadFirewall("web", []Endpoint{ep}, nil); len(got) != 1 || got[0].Family != FamilyBridge {
		t.Errorf("without ports: %v, want the bridge table only", got)
	}
	if got := WorkloadFirewall("web", nil, ports); len(got) != 0 {
		t.Errorf("without endpoints: %v, want no table", got)
	}
}

// TestLinkLocal: RFC 4291's modified EUI-64, the kernel's link-local
// address of a MAC, for a universal and a locally administered one, and
// back; no MAC of an address of another kind.
func TestLinkLocal(t *testing.T) {
	for mac, want := range map[MAC]string{
		{0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}: "fe80::21a:2bff:fe3c:4d5e",
		{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}: "fe80::ff:fe00:2",
	} {
		if got := LinkLocal(mac).String(); got != want {
			t.Errorf("LinkLocal(%v) = %s, want %s", mac, got, want)
		}
		if back, ok := LinkLocalMAC(LinkLocal(mac)); !ok || back != mac {
			t.Errorf("LinkLocalMAC(%s) = %v, %v; want %v", want, back, ok, mac)
		}
	}
	for _, a := range []string{"fe80::4adb:ad5d:bb25:6115", "fd00::ff:fe00:2", "10.0.0.1"} { // stable privacy, not link-local, IPv4
		if mac, ok := LinkLocalMAC(netip.MustParseAddr(a)); ok {
			t.Errorf("LinkLocalMAC(%s) = %v, want none", a, mac)
		}
	}
}

// TestWorkloadFirewallAntiSpoofing: a container's port may send IPv6
// from no link-local address but that of its MAC and advertise no other;
// a VM's guest may choose its own (any of fe80::/10), but not the bridge's
// and not another port's own; a port without IPv6 sends none.
func TestWorkloadFirewallAntiSpoofing(t *testing.T) {
	ep := testEndpoint()
	guest := Endpoint{Network: ep.Network, HostIf: "cvvm", Addr4: netip.MustParseAddr("10.77.0.3"),
		Addr6: Addr6For(ep.Network, netip.MustParseAddr("10.77.0.3")), MAC: MAC{2, 0, 0, 0, 0, 4}, Guest: true}
	noV6 := Endpoint{HostIf: "cvnosix", Addr4: netip.MustParseAddr("10.78.0.2"), MAC: MAC{2, 0, 0, 0, 0, 3}}
	tables := WorkloadFirewall("web", []Endpoint{ep, guest, noV6}, nil)
	want := strings.Join([]string{
		`iifname "cvweb" ether saddr != 02:00:00:00:00:02 drop`,
		`iifname "cvweb" ether type != ip ether type != ip6 ether type != arp drop`,
		`iifname "cvweb" ip saddr != 10.77.0.2 ip saddr != 0.0.0.0 drop`,
		`iifname "cvweb" ip6 saddr != ` + ep.Addr6.String() + ` ip6 saddr != fe80::ff:fe00:2 ip6 saddr != :: drop`, // its own only
		`iifname "cvweb" ip6 saddr fe80::d459:63ff:fe53:5944 drop`,                                                 // the bridge's link-local address
		`iifname "cvweb" icmpv6 type nd-router-advert drop`,
		`iifname "cvweb" icmpv6 type nd-redirect drop`,
		`iifname "cvweb" icmpv6 type nd-neighbor-advert @th,64,128 != 0xfd5d137d9e338f870000000000000002 ` +
			`@th,64,128 != 0xfe80000000000000000000fffe000002 drop`,
		`iifname "cvweb" icmpv6 type nd-neighbor-advert @th,64,128 0xfe80000000000000d45963fffe535944 drop`,
		`iifname "cvweb" ip6 saddr :: icmpv6 type nd-neighbor-solicit @th,64,128 != 0xfd5d137d9e338f870000000000000002 ` +
			`@th,64,128 != 0xfe80000000000000000000fffe000002 drop`, // duplicate address detection for its own only
		`iifname "cvweb" udp sport 547 drop`,
		`iifname != "cvweb" ip6 saddr fe80::ff:fe00:2 drop`, // its own
		`iifname != "cvweb" icmpv6 type nd-neighbor-advert @th,64,128 0xfe80000000000000000000fffe000002 drop`,
		`iifname != "cvweb" ip6 saddr :: icmpv6 type nd-neighbor-solicit @th,64,128 0xfe80000000000000000000fffe000002 drop`,
		`iifname "cvweb" arp saddr ip != 10.77.0.2 arp saddr ip != 0.0.0.0 drop`,
		`iifname "cvweb" udp sport 67 drop`,
		`iifname "cvvm" ether saddr != 02:00:00:00:00:04 drop`,
		`iifname "cvvm" ether type != ip ether type != ip6 ether type != arp drop`,
		`iifname "cvvm" ip saddr != 10.77.0.3 ip saddr != 0.0.0.0 drop`,
		`iifname "cvvm" ip6 saddr != ` + guest.Addr6.String() + ` ip6 saddr != fe80::/10 ip6 saddr != :: drop`, // the guest's choice
		`iifname "cvvm" ip6 saddr fe80::d459:63ff:fe53:5944 drop`,
		`iifname "cvvm" icmpv6 type nd-router-advert drop`,
		`iifname "cvvm" icmpv6 type nd-redirect drop`,
		`iifname "cvvm" icmpv6 type nd-neighbor-advert @th,64,128 != 0xfd5d137d9e338f870000000000000003 ` +
			`@th,64,128 & 0xffc00000000000000000000000000000 != 0xfe800000000000000000000000000000 drop`,
		`iifname "cvvm" icmpv6 type nd-neighbor-advert @th,64,128 0xfe80000000000000d45963fffe535944 drop`,
		`iifname "cvvm" ip6 saddr :: icmpv6 type nd-neighbor-solicit @th,64,128 != 0xfd5d137d9e338f870000000000000003 ` +
			`@th,64,128 & 0xffc00000000000000000000000000000 != 0xfe800000000000000000000000000000 drop`,
		`iifname "cvvm" udp sport 547 drop`,
		`iifname != "cvvm" ip6 saddr fe80::ff:fe00:4 drop`,
		`iifname != "cvvm" icmpv6 type nd-neighbor-advert @th,64,128 0xfe80000000000000000000fffe000004 drop`,
		`iifname != "cvvm" ip6 saddr :: icmpv6 type nd-neighbor-solicit @th,64,128 0xfe80000000000000000000fffe000004 drop`,
		`iifname "cvvm" arp saddr ip != 10.77.0.3 arp saddr ip != 0.0.0.0 drop`,
		`iifname "cvvm" udp sport 67 drop`,
		`iifname "cvnosix" ether saddr != 02:00:00:00:00:03 drop`,
		`iifname "cvnosix" ether type != ip ether type != ip6 ether type != arp drop`,
		`iifname "cvnosix" ip saddr != 10.78.0.2 ip saddr != 0.0.0.0 drop`,
		`iifname "cvnosix" ether type != ip ether type != arp drop`,
		`iifname "cvnosix" arp saddr ip != 10.78.0.2 arp saddr ip != 0.0.0.0 drop`,
		`iifname "cvnosix" udp sport 67 drop`,
	}, "\n")
	if len(tables) != 1 {
		t.Fatalf("tables %v", tables)
	}
	if c := tables[0].Chains[0]; c.Name != "prerouting" || c.Type != "filter" || c.Hook != "prerouting" || c.Priority != -200 {
		t.Errorf("chain %+v", c)
	}
	if got := chainText(tables[0], "prerouting"); got != want {
		t.Errorf("anti-spoofing chain:\n%s\nwant\n%s", got, want)
	}
	if s := tables[0].String(); !strings.HasPrefix(s, `table bridge "cove-wl-web" {`) {
		t.Errorf("table text:\n%s", s)
	}
}
