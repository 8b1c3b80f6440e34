package plan

import (
	"fmt"
	"net/netip"
	"strings"
)

// The firewall of a network is one nftables table of family inet, named
// TableName(network), that cove creates whole and deletes whole. One table
// per network (not one shared table) lets each network's oneshot unit
// replace or remove its own rules atomically without knowing the other
// networks: isolation needs no cross-network rule, because each table
// drops what enters its own bridge from elsewhere. Other tables (the
// admin's, iptables-nft's) are never read or written.
//
// Layout, for a network with bridge BR:
//
//	chain forward   filter, hook forward, priority filter (0), policy accept
//	  iifname BR oifname BR accept                (same network, br_netfilter)
//	  oifname BR ct state established,related accept
//	  oifname BR ct status dnat accept            (published ports, below)
//	  oifname BR drop                             (isolation: nothing else enters)
//	  iifname BR accept | drop                    (egress; drop when internal)
//	chain postrouting  nat, hook postrouting, priority srcnat (100)
//	  ip saddr S4 ip daddr != S4 masquerade       (not when internal)
//	  ip6 saddr S6 ip6 daddr != S6 masquerade     (not when internal)
//
// Published ports slot in as two more base chains of the same table,
// "prerouting" (nat, dstnat) and "output" (nat, dstnat, for 127.0.0.1 and
// ::1 with route_localnet), each one rule "dnat to ... map @ports4/@ports6"
// over a map keyed by address family, protocol and port; workloads add and
// delete map elements, so the table is never rebuilt for a port, and the
// "ct status dnat accept" rule above already lets that traffic in.

// Verdict is what a rule does with a packet that matches.
type Verdict int

// Verdicts.
const (
	Accept Verdict = iota
	Drop
	Masquerade
)

// Rule is one nftables rule. Zero fields match anything.
type Rule struct {
	IIF, OIF string       // interface names
	Saddr    netip.Prefix // source inside (IPv4 or IPv6; restricts the family)
	NotDaddr netip.Prefix // destination outside (same family as Saddr)
	CtState  bool         // ct state established,related
	CtDNAT   bool         // ct status dnat
	Verdict  Verdict
}

// Chain is one base chain.
type Chain struct {
	Name     string
	Type     string // "filter" or "nat"
	Hook     string // "forward", "postrouting"
	Priority int
	Rules    []Rule
}

// Table is a network's whole rule set.
type Table struct {
	Name   string
	Chains []Chain
}

// TablePrefix starts the name of every table cove owns.
const TablePrefix = "cove-"

// TableName is the nftables table (family inet) of a network.
func TableName(network string) string { return TablePrefix + network }

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
	nat := Chain{Name: "postrouting", Type: "nat", Hook: "postrouting", Priority: 100}
	if !n.Internal {
		nat.Rules = []Rule{
			{Saddr: n.Subnet4, NotDaddr: n.Subnet4, Verdict: Masquerade},
			{Saddr: n.Subnet6, NotDaddr: n.Subnet6, Verdict: Masquerade},
		}
	}
	return Table{Name: TableName(n.Name), Chains: []Chain{fwd, nat}}
}

// String is the table in nft's syntax (for inspect and for reading).
func (t Table) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %q {\n", t.Name)
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

// String is the rule in nft's syntax.
func (r Rule) String() string {
	var parts []string
	if r.IIF != "" {
		parts = append(parts, fmt.Sprintf("iifname %q", r.IIF))
	}
	if r.OIF != "" {
		parts = append(parts, fmt.Sprintf("oifname %q", r.OIF))
	}
	ip := "ip"
	if r.Saddr.Addr().Is6() {
		ip = "ip6"
	}
	if r.Saddr.IsValid() {
		parts = append(parts, fmt.Sprintf("%s saddr %v", ip, r.Saddr))
	}
	if r.NotDaddr.IsValid() {
		parts = append(parts, fmt.Sprintf("%s daddr != %v", ip, r.NotDaddr))
	}
	if r.CtState {
		parts = append(parts, "ct state established,related")
	}
	if r.CtDNAT {
		parts = append(parts, "ct status dnat")
	}
	return strings.Join(append(parts, [...]string{"accept", "drop", "masquerade"}[r.Verdict]), " ")
}
