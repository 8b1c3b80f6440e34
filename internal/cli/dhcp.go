package cli

import (
	"context"
	"fmt"

	"github.com/cove-project/cove/internal/dhcp"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/ondemand"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/units"
)

// dhcpServeCmd is ExecStart= of cove-dhcp@NETWORK.service, which
// cove-dhcp@NETWORK.socket starts on the first request: it gives each VM
// on NETWORK's bridge the address leased to it (the lease whose
// workload's MAC the request comes from), nothing to any other MAC, and
// exits 0 after --idle without a request. It serves only the datagram
// socket systemd passes.
func dhcpServeCmd(ctx context.Context, env *Env, args []string) error {
	r, ok, err := parseResponder(env, launch.DHCPServeVerb, dhcp.DefaultIdle, "request", args)
	if !ok || err != nil {
		return err
	}
	n := r.net
	conns, lns, err := ondemand.Sockets(spec.DHCPSocketName(n.Name))
	if err != nil {
		return fmt.Errorf("serve dhcp of network %s: %w", n.Name, err)
	}
	if len(lns) > 0 {
		for _, c := range conns {
			c.Close()
		}
		for _, l := range lns {
			l.Close()
		}
		return fmt.Errorf("serve dhcp of network %s: systemd passed a stream socket (%v), want UDP port %d only", n.Name, lns[0].Addr(), units.DHCPServerPort)
	}
	return dhcp.Serve(ctx, conns, dhcp.Config{
		Network: n,
		Leases:  dhcp.LeaseTable{Network: n.Name, Leases: network.Leases{Root: network.DefaultLeaseRoot}},
		Idle:    r.idle,
		Logf:    r.logf,
	})
}
