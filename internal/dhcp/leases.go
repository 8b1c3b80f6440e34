package dhcp

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
)

// Lease is what a client is given: the workload it is and its address.
type Lease struct {
	Workload string
	Addr     netip.Addr // IPv4, in the network's Subnet4
}

// Leases finds the lease of a client. Lookup is called for every
// request, so leases read from disk are always current.
type Leases interface {
	// Lookup returns the lease of the workload whose NIC has MAC mac.
	// ok is false when no lease belongs to that MAC; an error means the
	// leases could not be read.
	Lookup(mac plan.MAC) (l Lease, ok bool, err error)
}

// LeaseTable is the Leases of a cove network: the lease files of
// network.Leases, whose holder's NIC has the MAC
// plan.WorkloadMAC(Network, holder). Every lookup lists the lease
// directory anew. Should a workload hold more than one lease, the
// lowest address is its.
type LeaseTable struct {
	Network string
	Leases  network.Leases
}

// Lookup implements Leases.
func (t LeaseTable) Lookup(mac plan.MAC) (Lease, bool, error) {
	held, err := t.Leases.List(t.Network)
	if err != nil {
		return Lease{}, false, fmt.Errorf("look up the lease of %v on network %s: %w", mac, t.Network, err)
	}
	var found []Lease
	for a, w := range held {
		if plan.WorkloadMAC(t.Network, w) == mac {
			found = append(found, Lease{Workload: w, Addr: a})
		}
	}
	if len(found) == 0 {
		return Lease{}, false, nil
	}
	return slices.MinFunc(found, func(x, y Lease) int { return x.Addr.Compare(y.Addr) }), true, nil
}
