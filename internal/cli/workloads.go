package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/enter"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
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

// psCmd lists workloads: one row each, with the ports it publishes as
// docker ps shows them; --json has their networks and ports too.
func psCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("ps", "[--json]", env.Stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("ps: takes no arguments")
	}
	return withBackend(ctx, env, func(b api.Backend) error {
		rows, err := b.List(ctx)
		if err != nil {
			return err
		}
		if rows == nil {
			rows = []api.Workload{}
		}
		if *asJSON {
			return printJSON(env.Stdout, rows)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tHEALTH\tPID\tUPTIME\tRESTARTS\tPORTS")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", r.Name, r.Kind, r.State(), dash(r.Health), r.MainPID, uptime(r.Started), r.Restarts, dash(api.FormatPorts(r.Ports)))
		}
		return tw.Flush()
	})
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
	return withBackend(ctx, env, func(b api.Backend) error {
		w, err := b.Status(ctx, name)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, w)
		}
		return printStatus(env.Stdout, w)
	})
}

// printStatus writes w as cove status shows it: one "Key: value" line
// each, a "Network:" line per network it is on and a "Ports:" line when
// it publishes any.
func printStatus(out io.Writer, w api.Workload) error {
	tw := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
	rows := [][2]string{
		{"Name", w.Name}, {"Unit", w.Unit}, {"Kind", w.Kind}, {"Description", w.Description},
		{"State", fmt.Sprintf("%s (%s/%s)", w.State(), w.ActiveState, w.SubState)},
		{"Main PID", fmt.Sprint(w.MainPID)}, {"Uptime", uptime(w.Started)},
		{"Restarts", fmt.Sprint(w.Restarts)}, {"Memory", image.HumanSize(int64(w.MemoryBytes))},
		{"Tasks", fmt.Sprint(w.Tasks)}, {"Health", dash(w.Health)},
	}
	if w.Kind == spec.KindVM {
		rows = append(rows, [2]string{"Accelerator", dash(isolate.ReadAccel(w.Name))})
	}
	for _, e := range w.Networks {
		rows = append(rows, [2]string{"Network", e.String()})
	}
	if len(w.Ports) > 0 {
		rows = append(rows, [2]string{"Ports", api.FormatPorts(w.Ports)})
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

// stopCmd stops workloads.
func stopCmd(ctx context.Context, env *Env, args []string) error {
	return eachName(ctx, env, "stop", args, api.Backend.Stop)
}

// rmCmd stops and removes workloads.
func rmCmd(ctx context.Context, env *Env, args []string) error {
	return eachName(ctx, env, "rm", args, api.Backend.Remove)
}

// killCmd sends a signal (SIGKILL unless -s says otherwise) to workloads'
// main processes; the unit's restart policy decides what follows.
func killCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("kill", "[-s SIGNAL] NAME...", env.Stderr)
	sig := syscall.SIGKILL
	parseSig := func(v string) (err error) {
		sig, err = supervisor.ParseSignal(v)
		return err
	}
	fs.Func("s", "the signal: a name (TERM, SIGHUP) or a number; default KILL", parseSig)
	fs.Func("signal", "the same as -s", parseSig)
	return eachNameOf(ctx, env, fs, "kill", args, func(b api.Backend, ctx context.Context, name string) error {
		return b.Kill(ctx, name, sig)
	})
}

// eachName applies op to every NAME argument.
func eachName(ctx context.Context, env *Env, verb string, args []string, op func(api.Backend, context.Context, string) error) error {
	return eachNameOf(ctx, env, newFlags(verb, "NAME...", env.Stderr), verb, args, op)
}

// eachNameOf parses args with fs and applies op to every NAME argument.
func eachNameOf(ctx context.Context, env *Env, fs *flagSet, verb string, args []string, op func(api.Backend, context.Context, string) error) error {
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("%s: want at least one workload name", verb)
	}
	return withBackend(ctx, env, func(b api.Backend) error {
		for _, name := range fs.Args() {
			if err := op(b, ctx, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// logsCmd prints a workload's journal.
func logsCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("logs", "[-f] [-n LINES] [-t] [--since TIME] [--until TIME] NAME", env.Stderr)
	var opt supervisor.LogOptions
	fs.BoolVar(&opt.Follow, "f", false, "follow: keep printing new output")
	fs.IntVar(&opt.Lines, "n", 0, "print only the last LINES lines")
	fs.BoolVar(&opt.Timestamps, "t", false, "prefix every line with its time (RFC 3339, UTC, nanoseconds)")
	fs.BoolVar(&opt.Timestamps, "timestamps", false, "same as -t")
	now := time.Now()
	fs.Func("since", "only lines logged at or after `TIME`: RFC 3339, Unix seconds, or a duration ago (10m)", func(v string) error {
		return logTime(&opt.Since, v, now)
	})
	fs.Func("until", "only lines logged at or before `TIME` (as for --since)", func(v string) error {
		return logTime(&opt.Until, v, now)
	})
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if opt.Lines < 0 {
		return usagef("logs: -n %d: want a count of lines (0 for all)", opt.Lines)
	}
	name, err := oneName(fs)
	if err != nil {
		return err
	}
	return withBackend(ctx, env, func(b api.Backend) error {
		return b.Logs(ctx, name, opt, env.Stdout)
	})
}

// logTime sets *t from a --since or --until value: what
// supervisor.ParseLogTime reads, or a Go duration before now ("10m",
// "1h30m").
func logTime(t *time.Time, v string, now time.Time) error {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		*t = now.Add(-d)
		return nil
	}
	pt, err := supervisor.ParseLogTime(v)
	if err != nil {
		return fmt.Errorf("%w, or a duration ago (10m)", err)
	}
	*t = pt
	return nil
}

// execCmd runs a command inside a running container, as its payload runs
// (namespaces, root, user, capabilities, no_new_privs, seccomp, cgroup),
// with this terminal's stdio, and exits with the command's status.
func execCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("exec", "[-u UID[:GID]] [-w DIR] NAME -- COMMAND...", env.Stderr)
	user := fs.String("u", "", "run as UID[:GID] (default: the payload's user)")
	workdir := fs.String("w", "", "working directory (default: the payload's)")
	before, command, _ := cutArgs(args, "--")
	if ok, err := parse(fs, before); !ok || err != nil {
		return err
	}
	if fs.NArg() != 1 || len(command) == 0 {
		return usagef("exec: want one workload name and a command after --")
	}
	name := fs.Arg(0)
	return withConn(ctx, func(conn *supervisor.Conn) error {
		t, err := conn.Probe(ctx, name)
		if err != nil {
			return err
		}
		c, target, err := enter.Open(ctx, conn, name, t)
		if err != nil {
			return fmt.Errorf("exec in %s: %w", name, err)
		}
		defer target.Close()
		c.Argv = command
		if err := execOverrides(&c, *user, *workdir); err != nil {
			return err
		}
		cmd := isolate.EnterCommand(ctx, env.Self, c, target)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, env.Stdout, env.Stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitError{ee.ExitCode()}
		}
		return err
	})
}

// execOverrides applies cove exec's -u and -w to c.
func execOverrides(c *launch.Config, user, workdir string) error {
	if user != "" {
		u, err := spec.ParseUser(user)
		if err != nil {
			return usagef("exec: -u: %v", err)
		}
		c.UID, c.GID = u.UID, u.GID
	}
	if workdir != "" {
		if !strings.HasPrefix(workdir, "/") {
			return usagef("exec: -w %q: want an absolute path", workdir)
		}
		c.Workdir = workdir
	}
	return nil
}
