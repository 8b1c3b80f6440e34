package cli

import (
	"context"
	"fmt"
	"net"

	"github.com/cove-project/cove/internal/dhcp"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/ondemand"
	"github.com/cove-project/cove/internal/radv"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// dhcpServeCmd is ExecStart= of cove-dhcp@NETWORK.service, which
// cove-dhcp@NETWORK.socket starts on the first request: it gives each VM
// on NETWORK's bridge the address leased to it (the lease whose
// workload's MAC the request comes from), nothing to any other MAC, and
// exits 0 after --idle without a request; with IPv6 also by DHCPv6,
// and after each answer it asks for a router advertisement
// (radv.Poker). It serves only the datagram sockets systemd passes.
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
		closeAll(conns, lns)
		return fmt.Errorf("serve dhcp of network %s: systemd passed a stream socket (%v), want UDP port %d only", n.Name, lns[0].Addr(), plan.DHCPServerPort)
	}
	c := dhcp.Config{
		Network: n,
		Leases:  dhcp.LeaseTable{Network: n.Name, Leases: network.Leases{Root: network.DefaultLeaseRoot}},
		Idle:    r.idle,
		Logf:    r.logf,
	}
	if n.Subnet6.IsValid() {
		c.Advertise = radv.Poker(launch.RASocket(n.Name), r.logf)
	}
	return dhcp.Serve(ctx, conns, c)
}

// closeAll closes the sockets systemd passed that a responder does not
// serve.
func closeAll(conns []net.PacketConn, lns []net.Listener) {
	for _, c := range conns {
		c.Close()
	}
	for _, l := range lns {
		l.Close()
	}
}
