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
	fs := newFlags(launch.HealthVerb, "--name NAME [flags] -- COMMAND...", env.Stderr)
	c := health.Check{Self: env.Self}
	fs.StringVar(&c.Name, "name", "", "workload name")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "probe timeout")
	fs.IntVar(&c.Retries, "retries", 3, "failures in a row before unhealthy")
	fs.DurationVar(&c.StartPeriod, "start-period", 0, "failures in this time after start do not count")
	fs.StringVar(&c.OnFailure, "on-failure", "restart", "restart | kill | none")
	before, command, _ := cutArgs(args, "--")
	if ok, err := parse(fs, before); !ok || err != nil {
		return err
	}
	if c.Name == "" || len(command) == 0 {
		return usagef("%s: want --name and a command after --", launch.HealthVerb)
	}
	c.Command = command
	return withConn(ctx, func(conn *supervisor.Conn) error { return health.Run(ctx, conn, c) })
}
