package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// Zone is what the responder answers itself. Lookup is called for every
// query, so a zone that reads its names from disk is always current.
type Zone interface {
	// Lookup returns the IPv4 and IPv6 addresses of name, a query name in
	// lower case without the trailing dot. ok is false for a name the
	// zone does not hold (it is forwarded); true with no address of the
	// asked type is answered NOERROR with no records. An error means the
	// zone could not be read: a name the zone owns (see Authority) is
	// answered SERVFAIL, another is forwarded.
	Lookup(name string) (v4, v6 []netip.Addr, ok bool, err error)
}

// Authority is what a Zone may implement besides Lookup: the domain and
// the address ranges it owns, whose names are never forwarded.
type Authority interface {
	// Owns reports whether name (as for Lookup) is in the zone's domain:
	// such a name that Lookup does not hold is answered NXDOMAIN.
	Owns(name string) bool
	// LookupAddr returns the names (without the trailing dot) of address
	// a for a PTR query. owned is false for an address outside the
	// zone's ranges (the query is forwarded); an owned address without a
	// name is answered NXDOMAIN. An error is answered SERVFAIL.
	LookupAddr(a netip.Addr) (names []string, owned bool, err error)
}

// Peers is what a Zone may implement besides Lookup: the zones of the
// other networks the workload at address asker is on, whose names it
// resolves through this zone's responder too (a container's more
// networks: spec's container.networks). Another asker gets none.
type Peers interface {
	ZonesOf(asker netip.Addr) []Zone
}

// LeaseZone is the zone of a cove network: its workloads by the names
// their leases hold, at their leased IPv4 address and the IPv6 address
// that goes with it (plan.Addr6For). Every lookup lists the lease
// directory anew. With a Catalog, it is a Peers: the zones of the
// other declared networks the asker holds a lease of.
type LeaseZone struct {
	Network plan.Network
	Leases  network.Leases
	Catalog *network.Catalog // nil: no peers
}

// ZonesOf implements Peers: the networks of the catalog other than z's
// where the workload holding asker (an address of z's network, IPv4 or
// its IPv6 twin) holds a lease too.
func (z LeaseZone) ZonesOf(asker netip.Addr) []Zone {
	if z.Catalog == nil {
		return nil
	}
	held, err := z.Leases.List(z.Network.Name)
	if err != nil {
		return nil
	}
	workload := ""
	for a4, w := range held {
		if a4 == asker.Unmap() || slices.Contains(z.addr6(a4), asker) {
			workload = w
			break
		}
	}
	names, err := z.Catalog.Names()
	if workload == "" || err != nil {
		return nil
	}
	var zones []Zone
	for _, name := range names {
		if _, err := z.Leases.Of(name, workload); name == z.Network.Name || err != nil {
			continue
		}
		if n, err := z.Catalog.Named(name); err == nil {
			zones = append(zones, LeaseZone{Network: n, Leases: z.Leases})
		}
	}
	return zones
}

// Lookup implements Zone: name is WORKLOAD or WORKLOAD.NETWORK, an
// alias of a workload (container.aliases, in any case) or ALIAS.NETWORK,
// or NETWORK itself, which is in the zone without addresses (unless a
// workload is called so). A replicated workload's name answers the
// addresses of all its instances (leases held by NAME@1 …), and so does
// a name several workloads have as alias.
func (z LeaseZone) Lookup(name string) (v4, v6 []netip.Addr, ok bool, err error) {
	held, err := z.Leases.Names(z.Network.Name)
	if err != nil {
		return nil, nil, false, fmt.Errorf("look up %s in network %s: %w", name, z.Network.Name, err)
	}
	candidates := []string{name}
	if w, in := strings.CutSuffix(name, "."+z.Network.Name); in {
		candidates = append(candidates, w)
	}
	for _, w := range candidates {
		for a, names := range held {
			if spec.BaseName(names[0]) == w || slices.ContainsFunc(names[1:], func(alias string) bool { return strings.EqualFold(alias, w) }) {
				v4 = append(v4, a)
			}
		}
		if len(v4) > 0 {
			slices.SortFunc(v4, netip.Addr.Compare)
			for _, a := range v4 {
				v6 = append(v6, z.addr6(a)...)
			}
			return v4, v6, true, nil
		}
	}
	return nil, nil, name == z.Network.Name, nil
}

// Owns implements Authority: NETWORK and every name below it.
func (z LeaseZone) Owns(name string) bool {
	return name == z.Network.Name || strings.HasSuffix(name, "."+z.Network.Name)
}

// LookupAddr implements Authority: the addresses of the network's
// subnets, each named WORKLOAD.NETWORK after the lease that holds it (an
// instance's after its workload: the name that answers it).
func (z LeaseZone) LookupAddr(a netip.Addr) (names []string, owned bool, err error) {
	n := z.Network
	if !n.Subnet4.Contains(a) && !(n.Subnet6.IsValid() && n.Subnet6.Contains(a)) {
		return nil, false, nil
	}
	held, err := z.list("look up the name of " + a.String())
	if err != nil {
		return nil, true, err
	}
	for a4, w := range held {
		if a4 == a || slices.Contains(z.addr6(a4), a) {
			names = append(names, spec.BaseName(w)+"."+n.Name)
		}
	}
	slices.Sort(names)
	return names, true, nil
}

// addr6 is the IPv6 address that goes with leased address a, if the
// network has IPv6.
func (z LeaseZone) addr6(a netip.Addr) []netip.Addr {
	if !z.Network.Subnet6.IsValid() {
		return nil
	}
	return []netip.Addr{plan.Addr6For(z.Network, a)}
}

// list reads the network's leases for what (an operation in an error).
func (z LeaseZone) list(what string) (map[netip.Addr]string, error) {
	held, err := z.Leases.List(z.Network.Name)
	if err != nil {
		return nil, fmt.Errorf("%s in network %s: %w", what, z.Network.Name, err)
	}
	return held, nil
}
