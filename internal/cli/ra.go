package cli

import (
	"context"
	"fmt"

	"github.com/cove-project/cove/internal/ondemand"
	"github.com/cove-project/cove/internal/radv"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// raServeCmd is ExecStart= of cove-ra@NETWORK.service, which
// cove-ra@NETWORK.socket starts when the DHCP responder first writes to
// it: it advertises NETWORK's bridge as the IPv6 router of the guests on
// it (radv.Serve: at once, on their solicitations and on every further
// datagram) and exits 0 after --idle without either. It serves only the
// one datagram socket systemd passes.
func raServeCmd(ctx context.Context, env *Env, args []string) error {
	r, ok, err := parseResponder(env, launch.RAServeVerb, radv.DefaultIdle, "solicitation", args)
	if !ok || err != nil {
		return err
	}
	n := r.net
	conns, lns, err := ondemand.Sockets(spec.RASocketName(n.Name))
	if err != nil {
		return fmt.Errorf("advertise network %s: %w", n.Name, err)
	}
	if len(conns) != 1 || len(lns) > 0 {
		closeAll(conns, lns)
		return fmt.Errorf("advertise network %s: systemd passed %d datagram and %d stream sockets, want the datagram socket %s", n.Name, len(conns), len(lns), launch.RASocket(n.Name))
	}
	return radv.Serve(ctx, conns[0], radv.Config{Network: n, Idle: r.idle, Logf: r.logf})
}
