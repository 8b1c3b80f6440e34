package network

import (
	stdcmp "cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/vishvananda/netlink"
)

// Lookup reads who is on cove's networks from what cove keeps on disk:
// the catalog of networks, their leases and the port claims. It changes
// nothing and takes no lock: a view is a snapshot that a start or a stop
// may overtake.
type Lookup struct {
	Catalog Catalog
	Leases  Leases
	Ports   PortClaims
}

// Host is the host's Lookup.
var Host = Lookup{Catalog: Declared, Leases: Leases{Root: DefaultLeaseRoot}, Ports: PortClaims{Root: DefaultPortRoot}}

// View is one reading of Lookup: the declared networks and who holds
// their addresses and the host's published ports.
type View struct {
	Networks []plan.Network                     // the catalog's networks that read, sorted by name
	leases   map[string]map[netip.Addr][]string // network → address → the lease's names: workload, then its aliases
	ports    map[string][]plan.Port             // workload → the ports it has claimed
}

// Read reads the view. A network whose file does not parse is left out
// (cove network ls reports it); so are the leases of a network no longer
// declared. Errors are those of reading the catalog's directory, a lease
// directory or the claims.
func (l Lookup) Read() (View, error) {
	names, err := l.Catalog.Names()
	if err != nil {
		return View{}, fmt.Errorf("look up networks: %w", err)
	}
	v := View{leases: map[string]map[netip.Addr][]string{}}
	for _, name := range names {
		n, err := l.Catalog.Named(name)
		if err != nil {
			continue
		}
		held, err := l.Leases.Names(name)
		if err != nil {
			return View{}, fmt.Errorf("look up networks: %w", err)
		}
		v.Networks, v.leases[name] = append(v.Networks, n), held
	}
	if v.ports, err = l.published(); err != nil {
		return View{}, fmt.Errorf("look up networks: %w", err)
	}
	return v, nil
}

// published are the ports each workload has claimed
// (PortClaims.Published), each workload's sorted by protocol, host port
// and host address.
func (l Lookup) published() (map[string][]plan.Port, error) {
	out, err := l.Ports.Published()
	for _, ports := range out {
		slices.SortFunc(ports, func(a, b plan.Port) int {
			return stdcmp.Or(stdcmp.Compare(a.Proto, b.Proto), stdcmp.Compare(a.HostPort, b.HostPort), a.HostAddr.Compare(b.HostAddr))
		})
	}
	return out, err
}

// Network is the network called name, if the view has it.
func (v View) Network(name string) (plan.Network, bool) {
	i := slices.IndexFunc(v.Networks, func(n plan.Network) bool { return n.Name == name })
	if i < 0 {
		return plan.Network{}, false
	}
	return v.Networks[i], true
}

// Endpoints are workload's attachments: one per address it leases, in
// the order of the networks' names, with the IPv6 address
// (plan.Addr6For), the MAC (plan.WorkloadMAC) and the host end of its
// veth (plan.HostIfName) that go with the lease.
func (v View) Endpoints(workload string) []plan.Endpoint {
	var eps []plan.Endpoint
	for _, n := range v.Networks {
		for a, names := range v.leases[n.Name] {
			if names[0] == workload {
				eps = append(eps, endpoint(n, workload, a))
			}
		}
	}
	slices.SortStableFunc(eps, func(a, b plan.Endpoint) int {
		return stdcmp.Or(stdcmp.Compare(a.Network.Name, b.Network.Name), a.Addr4.Compare(b.Addr4))
	})
	return eps
}

// Member is a workload on a network and its endpoint there.
type Member struct {
	Workload string
	Endpoint plan.Endpoint
}

// Joined are workload's endpoints whose links exist (in the calling
// thread's network namespace: the host's), each a Guest's if its link is
// a tap, in the order Join made them (the kernel numbers the links it
// creates in increasing order): the first is that of its first network,
// which its default route and published ports use. None for a workload
// that is not attached.
func (v View) Joined(workload string) []plan.Endpoint {
	type linked struct {
		index int
		ep    plan.Endpoint
	}
	var found []linked
	for _, ep := range v.Endpoints(workload) {
		if l, err := netlink.LinkByName(ep.HostIf); err == nil {
			ep.Guest = isTap(l)
			found = append(found, linked{l.Attrs().Index, ep})
		}
	}
	slices.SortFunc(found, func(a, b linked) int { return a.index - b.index })
	eps := make([]plan.Endpoint, len(found))
	for i, f := range found {
		eps[i] = f.ep
	}
	return eps
}

// Members are the workloads that lease an address of network name,
// sorted by workload; none when the view lacks the network.
func (v View) Members(name string) []Member {
	n, ok := v.Network(name)
	if !ok {
		return nil
	}
	var ms []Member
	for a, names := range v.leases[name] {
		ms = append(ms, Member{Workload: names[0], Endpoint: endpoint(n, names[0], a)})
	}
	slices.SortFunc(ms, func(a, b Member) int {
		return stdcmp.Or(stdcmp.Compare(a.Workload, b.Workload), a.Endpoint.Addr4.Compare(b.Endpoint.Addr4))
	})
	return ms
}

// Aliases are the aliases of workload's lease on network name (its
// container.aliases), which the network's DNS answers besides its name.
func (v View) Aliases(name, workload string) []string {
	for _, names := range v.leases[name] {
		if names[0] == workload {
			return names[1:]
		}
	}
	return nil
}

// Published are the ports workload publishes (its port claims), sorted
// by protocol, host port and host address; ContainerPort is 0 where its
// claim does not say it.
func (v View) Published(workload string) []plan.Port { return v.ports[workload] }

// endpoint is the endpoint of workload on n with the leased address a.
func endpoint(n plan.Network, workload string, a netip.Addr) plan.Endpoint {
	return plan.Endpoint{Network: n, HostIf: plan.HostIfName(n.Name, workload), Addr4: a,
		Addr6: plan.Addr6For(n, a), MAC: plan.WorkloadMAC(n.Name, workload)}
}
