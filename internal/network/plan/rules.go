package plan

import (
	"fmt"
	"net/netip"
	"strings"
)

// cove's firewall is nftables tables that cove creates whole and deletes
// whole, each in one netlink batch, so a change is atomic and needs no
// rule handles; other tables (the admin's, iptables-nft's) are never read
// or written. Every name starts with TablePrefix.
//
// One table per network, "inet cove-net-NETWORK" (TableName), belongs to
// the network's oneshot unit: it can replace or remove its own rules
// without knowing other networks, because isolation needs no
// cross-network rule (each table drops what enters its own bridge from
// elsewhere). Layout, for a network with bridge BR, gateways GW4 and GW6:
//
//	chain forward   filter, hook forward, priority filter (0), policy accept
//	  iifname BR oifname BR accept                (same network, br_netfilter)
//	  oifname BR ct state established,related accept
//	  oifname BR ct status dnat accept            (published ports)
//	  oifname BR drop                             (isolation: nothing else enters)
//	  iifname BR accept | drop                    (egress; drop when internal)
//	chain input     filter, hook input, priority filter (0), policy accept
//	  iifname BR ct state established,related accept
//	  iifname BR ip daddr GW4 udp dport 53 accept (and tcp, and ip6 daddr
//	                                               GW6; not with NoDNS)
//	  iifname BR ip daddr GW4 PROTO dport PORT accept   (each AllowHost, and GW6)
//	  iifname BR udp dport 67 accept              (DHCP, sent to broadcast)
//	  iifname BR udp dport 547 accept             (DHCPv6; with GW6)
//	  iifname BR meta l4proto icmp accept
//	  iifname BR meta l4proto ipv6-icmp accept    (neighbour discovery)
//	  iifname BR drop                             (no other host service)
//	chain postrouting  nat, hook postrouting, priority srcnat (100)
//	  ip saddr S4 ip daddr != S4 masquerade       (not when internal)
//	  ip6 saddr S6 ip6 daddr != S6 masquerade     (not when internal)
//	  oifname BR ip saddr S4 ct status dnat masquerade    (hairpin)
//	  oifname BR ip6 saddr S6 ct status dnat masquerade   (hairpin)
//	  oifname BR ip saddr 127.0.0.0/8 masquerade  (the host via 127.0.0.1)
//
// The input chain drops what the network sends to any address of the
// host (the gateway, the uplink's, 127.0.0.1 too: the bridge has
// route_localnet=1) except the services allowed, and those only on the
// gateway's addresses. The hairpin rules let a workload reach a published
// port through a host address even when the port leads back onto its own
// bridge (to another workload or to itself): the server sees the gateway
// and replies through the host, so the client sees replies from the
// address it dialled. They match the source subnet, not "iifname BR":
// with br_netfilter (loaded wherever Docker is), such a connection is
// bridged, not routed, and its postrouting hook has no input interface.
// The localhost rule gives a connection the host makes to
// 127.0.0.1:PORT, DNATed to a workload, a source address the workload
// can answer. IPv6 has no route_localnet: the rules leave ::1 alone, and
// a proxy serves [::1]:PORT (Port.Loopback6Proxied).
//
// Two tables per workload, both named "cove-wl-WORKLOAD"
// (WorkloadTableName), are created when it joins and deleted when it
// leaves; see WorkloadFirewall.

// Verdict is what a rule does with a packet that matches.
type Verdict int

// Verdicts.
const (
	Accept Verdict = iota
	Drop
	Masquerade
	DNAT // to Rule.DNATTo
)

// Table families.
const (
	FamilyINet   = "inet"
	FamilyBridge = "bridge"
)

// Layer-4 protocols a rule matches (meta l4proto), named as nft lists
// them; TCP and UDP are the ones of Port and HostService.
const (
	ICMP   = "icmp"
	ICMPv6 = "ipv6-icmp"
)

// ICMPv6 message types a workload must not send to others (see
// WorkloadFirewall): a router's, and a neighbour advertisement or a
// duplicate address detection probe (a solicitation from ::) for an
// address that is not its own.
const (
	NDRouterAdvert    uint8 = 134
	NDNeighborSolicit uint8 = 135
	NDNeighborAdvert  uint8 = 136
	NDRedirect        uint8 = 137
)

// The ports of DHCP servers, whose answers no workload may send.
const (
	DHCPServerPort  uint16 = 67
	DHCP6ServerPort uint16 = 547
)

// DHCP6Servers is All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1), the
// link-scoped group a DHCPv6 client sends to: a network's DHCPv6 socket
// is a member on its bridge (see dhcp.Serve).
var DHCP6Servers = netip.MustParseAddr("ff02::1:2")

// EtherType is the type of an Ethernet frame (bridge family).
type EtherType uint16

// Ethernet frame types.
const (
	EtherIP   EtherType = 0x0800
	EtherARP  EtherType = 0x0806
	EtherIPv6 EtherType = 0x86dd
)

// String is nft's name of the type.
func (e EtherType) String() string {
	switch e {
	case EtherIP:
		return "ip"
	case EtherARP:
		return "arp"
	case EtherIPv6:
		return "ip6"
	}
	return fmt.Sprintf("0x%04x", uint16(e))
}

// Rule is one nftables rule: it matches when every field that is set
// matches (zero fields match anything), tested in the order of the
// fields, which is also the order nft lists them in. The address fields
// of one rule are all of one family, which they restrict the rule to (in
// a bridge table: to frames of that type).
type Rule struct {
	IIF, OIF      string         // interface names
	NotIIF        string         // the input interface is another (bridge: a frame from another port)
	NotEtherSaddr MAC            // the frame's source MAC is another (bridge; zero: no test)
	NotEtherTypes []EtherType    // the frame's type is none of these (bridge)
	FibDaddrLocal bool           // fib daddr type local: to an address of this host
	Saddr         netip.Prefix   // source inside
	NotSaddr      []netip.Prefix // source inside none of these
	Daddr         netip.Prefix   // destination inside
	NotDaddr      netip.Prefix   // destination outside
	NotARPSaddr   []netip.Addr   // an ARP frame whose sender address is none of these (bridge)
	L4Proto       string         // TCP, UDP, ICMP or ICMPv6
	Sport         uint16         // source port (L4Proto TCP or UDP)
	Dport         uint16         // destination port (L4Proto TCP or UDP)
	ICMPv6Type    uint8          // the ICMPv6 message type (L4Proto ICMPv6; 0: any)
	NDTarget      netip.Prefix   // a neighbour advertisement or solicitation whose target is inside (with its ICMPv6Type)
	NotNDTarget   []netip.Prefix // one whose target is inside none of these (with its ICMPv6Type)
	CtState       bool           // ct state established,related
	CtDNAT        bool           // ct status dnat
	Verdict       Verdict
	DNATTo        netip.AddrPort // the new destination, with Verdict DNAT
}

// Chain is one base chain.
type Chain struct {
	Name     string
	Type     string // "filter" or "nat"
	Hook     string // "prerouting", "input", "forward", "output", "postrouting"
	Priority int
	Rules    []Rule
}

// Table is one nftables table: a network's or a workload's.
type Table struct {
	Family string // FamilyINet or FamilyBridge
	Name   string
	Chains []Chain
}

// TablePrefix starts the name of every table cove owns.
const TablePrefix = "cove-"

// TableName is the nftables table (family inet) of a network.
func TableName(network string) string { return TablePrefix + "net-" + network }

// WorkloadTableName is the name of both tables of a workload (families
// inet and bridge). It never equals a TableName.
func WorkloadTableName(workload string) string { return TablePrefix + "wl-" + workload }

// Firewall is the rule set of n, as data; see the layout above.
func Firewall(n Network) Table {
	br := n.Bridge
	egress := Accept
	if n.Internal {
		egress = Drop
	}
	fwd := Chain{Name: "forward", Type: "filter", Hook: "forward", Priority: 0, Rules: []Rule{
		{IIF: br, OIF: br, Verdict: Accept},
		{OIF: br, CtState: true, Verdict: Accept},
		{OIF: br, CtDNAT: true, Verdict: Accept},
		{OIF: br, Verdict: Drop},
		{IIF: br, Verdict: egress},
	}}
	input := Chain{Name: "input", Type: "filter", Hook: "input", Priority: 0, Rules: inputRules(n)}
	nat := Chain{Name: "postrouting", Type: "nat", Hook: "postrouting", Priority: 100}
	for _, sub := range n.Subnets() {
		if !n.Internal {
			nat.Rules = append(nat.Rules, Rule{Saddr: sub, NotDaddr: sub, Verdict: Masquerade})
		}
	}
	for _, sub := range n.Subnets() {
		nat.Rules = append(nat.Rules, Rule{OIF: br, Saddr: sub, CtDNAT: true, Verdict: Masquerade})
	}
	nat.Rules = append(nat.Rules, Rule{OIF: br, Saddr: netip.MustParsePrefix("127.0.0.0/8"), Verdict: Masquerade})
	return Table{Family: FamilyINet, Name: TableName(n.Name), Chains: []Chain{fwd, input, nat}}
}

// inputRules is the input chain of n: what workloads may send to the
// host itself.
func inputRules(n Network) []Rule {
	br := n.Bridge
	rules := []Rule{{IIF: br, CtState: true, Verdict: Accept}}
	var services []HostService
	if !n.NoDNS {
		services = append(services, HostService{Port: 53, Proto: UDP}, HostService{Port: 53, Proto: TCP})
	}
	for _, s := range append(services, n.AllowHost...) {
		for _, gw := range n.Gateways() {
			rules = append(rules, Rule{IIF: br, Daddr: host(gw), L4Proto: s.Proto, Dport: s.Port, Verdict: Accept})
		}
	}
	rules = append(rules, Rule{IIF: br, L4Proto: UDP, Dport: DHCPServerPort, Verdict: Accept})
	if n.Subnet6.IsValid() {
		rules = append(rules, Rule{IIF: br, L4Proto: UDP, Dport: DHCP6ServerPort, Verdict: Accept})
	}
	return append(rules,
		Rule{IIF: br, L4Proto: ICMP, Verdict: Accept},
		Rule{IIF: br, L4Proto: ICMPv6, Verdict: Accept},
		Rule{IIF: br, Verdict: Drop},
	)
}

// host is the prefix of one address.
func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// String is the table in nft's syntax (for inspect and for reading).
func (t Table) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %q {\n", t.Family, t.Name)
	for _, c := range t.Chains {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype %s hook %s priority %d; policy accept;\n", c.Name, c.Type, c.Hook, c.Priority)
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// String is the rule in nft's syntax, as nft lists it (without the
// counter).
func (r Rule) String() string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if r.IIF != "" {
		add("iifname %q", r.IIF)
	}
	if r.NotIIF != "" {
		add("iifname != %q", r.NotIIF)
	}
	if r.OIF != "" {
		add("oifname %q", r.OIF)
	}
	if r.NotEtherSaddr != (MAC{}) {
		add("ether saddr != %v", r.NotEtherSaddr)
	}
	for _, e := range r.NotEtherTypes {
		add("ether type != %v", e)
	}
	if r.FibDaddrLocal {
		add("fib daddr type local")
	}
	ip := r.IPFamily()
	if r.Saddr.IsValid() {
		add("%s saddr %s", ip, prefixString(r.Saddr))
	}
	for _, s := range r.NotSaddr {
		add("%s saddr != %s", ip, prefixString(s))
	}
	if r.Daddr.IsValid() {
		add("%s daddr %s", ip, prefixString(r.Daddr))
	}
	if r.NotDaddr.IsValid() {
		add("%s daddr != %s", ip, prefixString(r.NotDaddr))
	}
	for _, a := range r.NotARPSaddr {
		add("arp saddr ip != %v", a)
	}
	switch {
	case r.Sport != 0 || r.Dport != 0:
		if r.Sport != 0 {
			add("%s sport %d", r.L4Proto, r.Sport)
		}
		if r.Dport != 0 {
			add("%s dport %d", r.L4Proto, r.Dport)
		}
	case r.ICMPv6Type != 0:
		add("icmpv6 type %s", icmpv6TypeNames[r.ICMPv6Type])
	case r.L4Proto != "":
		add("meta l4proto %s", r.L4Proto)
	}
	if r.NDTarget.IsValid() {
		add("%s", ndTargetString(r.NDTarget, ""))
	}
	for _, p := range r.NotNDTarget {
		add("%s", ndTargetString(p, "!= "))
	}
	if r.CtState {
		add("ct state established,related")
	}
	if r.CtDNAT {
		add("ct status dnat")
	}
	return strings.Join(append(p, r.verdictString()), " ")
}

// verdictString is the statement that ends the rule.
func (r Rule) verdictString() string {
	switch r.Verdict {
	case Drop:
		return "drop"
	case Masquerade:
		return "masquerade"
	case DNAT:
		if r.DNATTo.Addr().Is6() {
			return fmt.Sprintf("dnat ip6 to %v", r.DNATTo)
		}
		return fmt.Sprintf("dnat ip to %v", r.DNATTo)
	}
	return "accept"
}

// IPFamily is "ip" or "ip6": the family of the rule's addresses (and of
// its DNAT destination), "ip" when it has none.
func (r Rule) IPFamily() string {
	for _, p := range append([]netip.Prefix{r.Saddr, r.Daddr, r.NotDaddr}, r.NotSaddr...) {
		if p.IsValid() && p.Addr().Is6() {
			return "ip6"
		}
	}
	if r.DNATTo.Addr().Is6() {
		return "ip6"
	}
	return "ip"
}

// icmpv6TypeNames are nft's names of the ICMPv6 types rules match.
var icmpv6TypeNames = map[uint8]string{NDRouterAdvert: "nd-router-advert", NDNeighborSolicit: "nd-neighbor-solicit",
	NDNeighborAdvert: "nd-neighbor-advert", NDRedirect: "nd-redirect"}

// ndTargetString is a test that a neighbour advertisement's target is
// inside p (op "") or outside it (op "!= "), as nft lists it: the raw 128
// bits at offset 64 of the transport header, masked for a prefix.
func ndTargetString(p netip.Prefix, op string) string {
	a := p.Masked().Addr().As16()
	if p.IsSingleIP() {
		return fmt.Sprintf("@th,64,128 %s0x%x", op, a)
	}
	var mask [16]byte
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return fmt.Sprintf("@th,64,128 & 0x%x %s0x%x", mask, op, a)
}

// prefixString is a prefix as nft lists it: a whole address without
// "/32" or "/128".
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.Masked().String()
}
