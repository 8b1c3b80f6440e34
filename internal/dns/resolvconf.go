package dns

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/cove-project/cove/internal/network/plan"
)

// ContainerResolvConf is the resolv.conf of containers on network n:
// with DNS, the network's gateways as nameservers (the responder that
// cove-dns@NETWORK.socket starts) and the network as search domain, so
// that "db" and "db.NETWORK" both resolve; without DNS, the host's
// upstream resolvers from hostConf less loopback ones, which a container
// cannot reach.
func ContainerResolvConf(n plan.Network, hostConf string) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# Written by cove for network " + n.Name + ".\n")
	if !n.NoDNS {
		for _, gw := range n.Gateways() {
			fmt.Fprintf(&b, "nameserver %v\n", gw)
		}
		fmt.Fprintf(&b, "search %s\n", n.Name)
		return []byte(b.String()), nil
	}
	ups, err := ReadUpstreams(hostConf)
	if err != nil {
		return nil, err
	}
	for _, u := range ups {
		if a := u.Addr(); !a.IsLoopback() && a != (netip.Addr{}) {
			fmt.Fprintf(&b, "nameserver %v\n", a)
		}
	}
	return []byte(b.String()), nil
}
