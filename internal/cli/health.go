package cli

import (
	"context"
	"time"

	"github.com/cove-project/cove/internal/health"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/supervisor"
)

// healthProbeCmd runs one health probe (a health-check service's
// ExecStart).
func healthProbeCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(launch.HealthVerb, "--name NAME [flags] ([--agent] -- COMMAND... | --port PORT [--http-path PATH] (--address HOST:PORT | --network NET))", env.Stderr)
	c := health.Check{Self: env.Self}
	fs.StringVar(&c.Name, "name", "", "workload name")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "probe timeout")
	fs.IntVar(&c.Retries, "retries", 3, "failures in a row before unhealthy")
	fs.DurationVar(&c.StartPeriod, "start-period", 0, "failures in this time after start do not count")
	fs.StringVar(&c.OnFailure, "on-failure", "restart", "restart | kill | none")
	fs.BoolVar(&c.Agent, "agent", false, "run the command in a VM's guest, through its guest agent")
	fs.IntVar(&c.Guest.Port, "port", 0, "a VM's guest port to probe")
	fs.StringVar(&c.Guest.HTTPPath, "http-path", "", "probe the port with GET PATH (default: a TCP connection)")
	fs.StringVar(&c.Guest.Address, "address", "", "where the host reaches the port (a forward), HOST:PORT")
	fs.StringVar(&c.Guest.Network, "network", "", "the network whose lease gives the guest's address")
	before, command, _ := cutArgs(args, "--")
	if ok, err := parse(fs, before); !ok || err != nil {
		return err
	}
	if c.Name == "" || (len(command) == 0) == (c.Guest.Port == 0) || c.Agent && len(command) == 0 || c.Guest.Port != 0 && (c.Guest.Address == "") == (c.Guest.Network == "") {
		return usagef("%s: want --name and either a command after -- (with --agent: in a VM's guest) or --port with one of --address and --network", launch.HealthVerb)
	}
	c.Command = command
	return withConn(ctx, func(conn *supervisor.Conn) error { return health.Run(ctx, conn, c) })
}
