package cli

import (
	"context"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
)

// networkUpCmd is ExecStart= of cove-network@NAME.service: the bridge and
// the firewall table of network NAME, in this network namespace.
func networkUpCmd(_ context.Context, _ *Env, args []string) error {
	if len(args) != 1 {
		return usagef("%s: want one network name", launch.NetworkUpVerb)
	}
	return network.Up(args[0])
}

// networkDownCmd is ExecStop= of cove-network@NAME.service: it removes
// what networkUpCmd made.
func networkDownCmd(_ context.Context, _ *Env, args []string) error {
	if len(args) != 1 {
		return usagef("%s: want one network name", launch.NetworkDownVerb)
	}
	return network.Down(args[0])
}

// networkReleaseCmd is ExecStopPost= of a container on a network: its
// lease and the host end of its veth go (idempotent).
func networkReleaseCmd(_ context.Context, _ *Env, args []string) error {
	if len(args) != 2 {
		return usagef("%s: want a workload name and a network name", launch.NetworkReleaseVerb)
	}
	return network.Leave(args[1], args[0])
}
