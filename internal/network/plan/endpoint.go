package plan

import (
	"net/netip"
	"slices"
	"strings"
)

// Endpoint is a workload's attachment to one network: the host end of its
// veth (or its tap) on the network's bridge and the addresses and MAC the
// workload was given there.
type Endpoint struct {
	Network Network    // the network the endpoint is on
	HostIf  string     // the bridge port, e.g. HostIfName(network, workload)
	Addr4   netip.Addr // the workload's IPv4 address on the network (required)
	Addr6   netip.Addr // its IPv6 address (Addr6For of Addr4); zero: no IPv6
	MAC     MAC        // its MAC
	// Guest: the port is a VM's tap, whose guest chooses its own
	// link-local address; a container's is that of its MAC (LinkLocal).
	Guest bool
}

// WorkloadFirewall is the rule set of a workload, as data: at most two
// tables, both named WorkloadTableName(workload).
//
// "inet", only when ports is not empty, publishes the ports: a chain
// "prerouting" (nat, hook prerouting, priority dstnat -100) for packets
// that come from elsewhere (the network, other workloads, the workload
// itself through a host address) and a chain "output" (nat, hook output,
// priority -100) for connections the host makes itself, each with one
// rule per port and address family:
//
//	fib daddr type local tcp dport HOSTPORT dnat ip to ADDR4:CONTAINERPORT
//	fib daddr type local ip6 daddr != ::1 tcp dport HOSTPORT dnat ip6 to [ADDR6]:CONTAINERPORT
//	ip daddr HOSTADDR tcp dport HOSTPORT dnat ip to ADDR4:CONTAINERPORT   (HostAddr set)
//
// A port without HostAddr answers on every address of the host, 127.0.0.1
// included, but not on ::1: IPv6 has no route_localnet, so a DNAT to the
// workload would make a packet the workload drops; a proxy serves ::1
// instead (Port.Loopback6Proxied). A port with HostAddr answers there
// only, in its family; one on ::1 gets no rule here, only its proxy.
// Ports lead to the first endpoint (the workload's first network); the
// network's forward chain lets DNATed connections in.
//
// "bridge", only when eps is not empty, stops spoofing: a chain
// "prerouting" (filter, hook prerouting, priority -200) that drops, for
// each endpoint, frames entering the bridge from its HostIf with another
// source MAC; of another type than IPv4, IPv6 and ARP (VLAN tags included:
// a receiver takes a frame tagged with VLAN 0 as untagged); with another
// IPv4 source than Addr4 or 0.0.0.0 (DHCP); with another IPv6 source than
// Addr6, its link-local address or :: (neighbour discovery; all IPv6 when
// Addr6 is zero); and ARP with another sender address than Addr4 or
// 0.0.0.0 (probes). It also drops what only a router or a DHCP server
// sends, which would redirect the others' traffic: router advertisements
// and redirects, neighbour advertisements and duplicate address detection
// probes (solicitations from ::) for a target that is not the workload's
// (Addr6, or its link-local address: a probe for another's address in its
// detection would fail it), and UDP from the DHCP server ports 67 and 547
// (cove answers DHCP itself; a workload's own DHCP server would answer the
// network's VMs first). A container's link-local address is LinkLocal of
// its MAC (its interface on the network makes it so), and it may use no
// other; a VM's guest chooses its own (Guest: any of fe80::/10). Two are
// guarded against guests too: the bridge's (LinkLocal of BridgeMAC, the
// guests' router), which no workload may send from or advertise; and the
// workload's own LinkLocal of its MAC, which no frame from another port
// may carry as its source, as an advertisement's target or as a probe's (a
// port of any bridge: the kernel here has no "meta ibrname" in a bridge
// table, and the address, derived from the network's and the workload's
// names, is on no other bridge). So no workload can take the router's
// place or a container's in a neighbour cache, the host's included, and no
// container a guest's; a guest that makes its link-local address another
// way (stable privacy) has it unguarded only against the other guests.
//
// Whether the ports are free and allowed on the network
// (NoPrivilegedPorts) is for the caller to check first.
func WorkloadFirewall(workload string, eps []Endpoint, ports []Port) []Table {
	var tables []Table
	name := WorkloadTableName(workload)
	if len(ports) > 0 && len(eps) > 0 {
		rules := dnatRules(eps[0], ports)
		tables = append(tables, Table{Family: FamilyINet, Name: name, Chains: []Chain{
			{Name: "prerouting", Type: "nat", Hook: "prerouting", Priority: -100, Rules: rules},
			{Name: "output", Type: "nat", Hook: "output", Priority: -100, Rules: rules},
		}})
	}
	if len(eps) > 0 {
		var rules []Rule
		for _, ep := range eps {
			rules = append(rules, antiSpoofRules(ep)...)
		}
		tables = append(tables, Table{Family: FamilyBridge, Name: name, Chains: []Chain{
			{Name: "prerouting", Type: "filter", Hook: "prerouting", Priority: -200, Rules: rules},
		}})
	}
	return tables
}

// dnatRules forwards each port to ep: one rule per port and family of
// the workload's addresses that the port's HostAddr (if any) has.
func dnatRules(ep Endpoint, ports []Port) []Rule {
	var rules []Rule
	for _, p := range ports {
		for _, to := range []netip.Addr{ep.Addr4, ep.Addr6} {
			if !to.IsValid() || p.HostAddr.IsValid() && (p.HostAddr.Is4() != to.Is4() || p.HostAddr == netip.IPv6Loopback()) {
				continue
			}
			r := Rule{FibDaddrLocal: true, L4Proto: p.Proto, Dport: p.HostPort, Verdict: DNAT, DNATTo: netip.AddrPortFrom(to, p.ContainerPort)}
			if to.Is6() {
				r.NotDaddr = host(netip.IPv6Loopback()) // see Firewall: no route_localnet
			}
			if p.HostAddr.IsValid() {
				r.FibDaddrLocal, r.Daddr, r.NotDaddr = false, host(p.HostAddr), netip.Prefix{}
			}
			rules = append(rules, r)
		}
	}
	return rules
}

// antiSpoofRules drops what ep's workload sends with a source that is not
// its own; see WorkloadFirewall.
func antiSpoofRules(ep Endpoint) []Rule {
	in := ep.HostIf
	rules := []Rule{
		{IIF: in, NotEtherSaddr: ep.MAC, Verdict: Drop},
		{IIF: in, NotEtherTypes: []EtherType{EtherIP, EtherIPv6, EtherARP}, Verdict: Drop},
		{IIF: in, NotSaddr: []netip.Prefix{host(ep.Addr4), host(netip.IPv4Unspecified())}, Verdict: Drop},
	}
	if ep.Addr6.IsValid() {
		router, own := host(LinkLocal(BridgeMAC(ep.Network.Name))), host(LinkLocal(ep.MAC))
		ll := own // what the workload's link-local address may be
		if ep.Guest {
			ll = netip.MustParsePrefix("fe80::/10")
		}
		mine, unspec := []netip.Prefix{host(ep.Addr6), ll}, host(netip.IPv6Unspecified())
		rules = append(rules, Rule{IIF: in, NotSaddr: []netip.Prefix{host(ep.Addr6), ll, unspec}, Verdict: Drop},
			Rule{IIF: in, Saddr: router, Verdict: Drop},
			Rule{IIF: in, L4Proto: ICMPv6, ICMPv6Type: NDRouterAdvert, Verdict: Drop},
			Rule{IIF: in, L4Proto: ICMPv6, ICMPv6Type: NDRedirect, Verdict: Drop},
			Rule{IIF: in, L4Proto: ICMPv6, ICMPv6Type: NDNeighborAdvert, NotNDTarget: mine, Verdict: Drop},
			Rule{IIF: in, L4Proto: ICMPv6, ICMPv6Type: NDNeighborAdvert, NDTarget: router, Verdict: Drop},
			Rule{IIF: in, Saddr: unspec, L4Proto: ICMPv6, ICMPv6Type: NDNeighborSolicit, NotNDTarget: mine, Verdict: Drop},
			Rule{IIF: in, L4Proto: UDP, Sport: DHCP6ServerPort, Verdict: Drop},
			Rule{NotIIF: in, Saddr: own, Verdict: Drop},
			Rule{NotIIF: in, L4Proto: ICMPv6, ICMPv6Type: NDNeighborAdvert, NDTarget: own, Verdict: Drop},
			Rule{NotIIF: in, Saddr: unspec, L4Proto: ICMPv6, ICMPv6Type: NDNeighborSolicit, NDTarget: own, Verdict: Drop})
	} else {
		rules = append(rules, Rule{IIF: in, NotEtherTypes: []EtherType{EtherIP, EtherARP}, Verdict: Drop})
	}
	return append(rules,
		Rule{IIF: in, NotARPSaddr: []netip.Addr{ep.Addr4, netip.IPv4Unspecified()}, Verdict: Drop},
		Rule{IIF: in, L4Proto: UDP, Sport: DHCPServerPort, Verdict: Drop})
}

// MergeNames is names followed by those of more that names lacks, compared
// as DNS compares names (case-insensitively), each once.
func MergeNames(names, more []string) []string {
	out := make([]string, 0, len(names)+len(more))
	seen := map[string]bool{}
	for _, n := range append(slices.Clip(names), more...) {
		if k := strings.ToLower(n); !seen[k] {
			out, seen[k] = append(out, n), true
		}
	}
	return out
}
