package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/cove-project/cove/health"
	"github.com/cove-project/cove/supervisor"
)

// withConn runs f with a connection to systemd.
func withConn(ctx context.Context, f func(*supervisor.Conn) error) error {
	conn, err := supervisor.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return f(conn)
}

// psCmd lists workloads.
func psCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("ps", "[--json]", env.Stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("ps: takes no arguments")
	}
	return withConn(ctx, func(c *supervisor.Conn) error {
		ws, err := c.List(ctx)
		if err != nil {
			return err
		}
		rows := make([]row, 0, len(ws))
		for _, w := range ws {
			rows = append(rows, withHealth(w))
		}
		if *asJSON {
			return printJSON(env.Stdout, rows)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tHEALTH\tPID\tUPTIME\tRESTARTS")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\n", r.Name, r.Kind, r.State(), dash(r.Health), r.MainPID, uptime(r.Started), r.Restarts)
		}
		return tw.Flush()
	})
}

// row is a workload as cove ps and status show it: what systemd knows,
// and the health its probes recorded.
type row struct {
	supervisor.Workload
	Health string `json:"health,omitempty"` // "", starting, healthy or unhealthy
}

// withHealth adds the workload's health state.
func withHealth(w supervisor.Workload) row {
	st, _ := health.Read(w.Name)
	return row{Workload: w, Health: st.Status}
}

// dash shows an empty value as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// uptime renders the time since t, or "-" when not running.
func uptime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// statusCmd shows one workload.
func statusCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("status", "[--json] NAME", env.Stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	name, err := oneName(fs)
	if err != nil {
		return err
	}
	return withConn(ctx, func(c *supervisor.Conn) error {
		sw, err := c.Status(ctx, name)
		if err != nil {
			return err
		}
		w := withHealth(sw)
		if *asJSON {
			return printJSON(env.Stdout, w)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 1, ' ', 0)
		for _, row := range [][2]string{
			{"Name", w.Name}, {"Unit", w.Unit}, {"Kind", w.Kind}, {"Description", w.Description},
			{"State", fmt.Sprintf("%s (%s/%s)", w.State(), w.ActiveState, w.SubState)},
			{"Main PID", fmt.Sprint(w.MainPID)}, {"Uptime", uptime(w.Started)},
			{"Restarts", fmt.Sprint(w.Restarts)}, {"Memory", fmt.Sprintf("%d bytes", w.MemoryBytes)},
			{"Tasks", fmt.Sprint(w.Tasks)}, {"Health", dash(w.Health)},
		} {
			fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
		}
		return tw.Flush()
	})
}

// stopCmd stops workloads.
func stopCmd(ctx context.Context, env *Env, args []string) error {
	return eachName(ctx, env, "stop", args, (*supervisor.Conn).Stop)
}

// rmCmd stops and removes workloads.
func rmCmd(ctx context.Context, env *Env, args []string) error {
	return eachName(ctx, env, "rm", args, func(c *supervisor.Conn, ctx context.Context, name string) error {
		if err := c.Remove(ctx, name); err != nil {
			return err
		}
		return health.Remove(name)
	})
}

// eachName applies op to every NAME argument.
func eachName(ctx context.Context, env *Env, verb string, args []string, op func(*supervisor.Conn, context.Context, string) error) error {
	fs := newFlags(verb, "NAME...", env.Stderr)
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("%s: want at least one workload name", verb)
	}
	return withConn(ctx, func(c *supervisor.Conn) error {
		for _, name := range fs.Args() {
			if err := op(c, ctx, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// logsCmd prints a workload's journal.
func logsCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("logs", "[-f] [-n LINES] NAME", env.Stderr)
	var opt supervisor.LogOptions
	fs.BoolVar(&opt.Follow, "f", false, "follow: keep printing new output")
	fs.IntVar(&opt.Lines, "n", 0, "print only the last LINES lines")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	name, err := oneName(fs)
	if err != nil {
		return err
	}
	return supervisor.Logs(ctx, name, opt, env.Stdout)
}
