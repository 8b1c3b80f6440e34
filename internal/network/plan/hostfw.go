package plan

import (
	"fmt"
	"strings"
)

// HostChain is a base chain of one of the host's nftables tables (any
// table: iptables-nft's too) as far as it decides what reaches a
// network's workloads.
type HostChain struct {
	Family, Table, Chain string
	Hook                 string // "forward", "input", …
	Drop                 bool   // its policy drops what no rule accepted
}

// BlockingChains are the chains of cs that drop, by default, what a
// network's workloads send and receive through the host: a base chain on
// the forward hook (their traffic to and from the outside, and between
// them when br_netfilter passes bridged frames to it) or the input hook
// (their DNS and DHCP to the gateway) with policy drop, in a table that is
// not cove's. iptables' FORWARD as Docker and ufw leave it is one. A
// packet any base chain drops is dropped, whatever cove's tables accept,
// so such a chain must accept the network's bridge itself.
func BlockingChains(cs []HostChain) []HostChain {
	var out []HostChain
	for _, c := range cs {
		if c.Drop && (c.Hook == "forward" || c.Hook == "input") && !strings.HasPrefix(c.Table, TablePrefix) {
			out = append(out, c)
		}
	}
	return out
}

// BlockingWarning is what to tell about chains that BlockingChains found
// for network n: each chain, and the rules that would let n's traffic
// through, in iptables' words (the tables such chains come from).
func BlockingWarning(n Network, cs []HostChain) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "chain %s of table %s %s (hook %s) drops what no rule of its accepts (policy drop): ", c.Chain, c.Family, c.Table, c.Hook)
		switch c.Hook {
		case "forward":
			fmt.Fprintf(&b, "workloads on network %s reach nothing outside it (nor, with br_netfilter, each other) until it accepts their bridge, e.g. iptables -I %s -i %s -j ACCEPT; iptables -I %s -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT (with Docker installed: in chain DOCKER-USER)\n",
				n.Name, c.Chain, n.Bridge, c.Chain, n.Bridge)
		default:
			fmt.Fprintf(&b, "workloads on network %s get no answer from its DNS and DHCP on the gateway until it accepts their bridge, e.g. iptables -I %s -i %s -j ACCEPT\n",
				n.Name, c.Chain, n.Bridge)
		}
	}
	return b.String()
}
