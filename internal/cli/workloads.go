package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/enter"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/userns"
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

// psCommand is cove ps: one row per workload, with its addresses and the ports it
// publishes as docker ps shows them; --json has their networks and ports
// too.
func psCommand(env *Env) *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:   "ps [flags]",
		Short: "list workloads",
		Long: `List the workloads: name, kind, state, health, main PID, uptime, restarts and,
while one runs, its address on each network (IPv4, or IPv6 on a network without
IPv4) and the ports it publishes. --json adds each running workload's networks
and ports.`,
		Example: `  cove ps
  cove ps --json
  cove ps --format '{{.Name}} {{.State}}'
  cove --host unix:///run/cove/api.sock ps`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return ps(cmd.Context(), env, out) },
	}
	out = outputFlags(c)
	return viaAPI(c)
}

// ps prints the workloads. It collects garbage only near a heap of 64
// MiB: it decodes, prints and exits, and with 1000 workloads through the
// API the collector's cycles and sweeps cost it about 3 ms of its 45 (a
// canned answer, perf stat; docs/benchmarks.md), where its heap stays
// below 10 MiB.
func ps(ctx context.Context, env *Env, out *output) error {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(64 << 20))
	return withBackend(ctx, env, func(b api.Backend) error {
		list := b.ListStates // the table shows no counters
		if out.objects() {
			list = b.List
		}
		rows, err := list(ctx)
		if err != nil {
			return err
		}
		if rows == nil {
			rows = []api.Workload{}
		}
		if done, err := out.print(env.Stdout, rows); done {
			return err
		}
		tw := newTable(env.Stdout, 2)
		fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tHEALTH\tPID\tUPTIME\tRESTARTS\tADDRESS\tPORTS")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", r.Name, r.Kind, r.State(), dash(r.Health), r.MainPID, uptime(r.Started), r.Restarts,
				dash(addresses(r.Networks)), dash(api.FormatPorts(r.Ports)))
		}
		return tw.Flush()
	})
}

// addresses are a workload's addresses on its networks, comma-separated:
// each network's IPv4 address, or its IPv6 one when it has no IPv4.
func addresses(eps []api.Endpoint) string {
	var out []string
	for _, e := range eps {
		a := e.Address4
		if !a.IsValid() {
			a = e.Address6
		}
		if a.IsValid() {
			out = append(out, a.Addr().String())
		}
	}
	return strings.Join(out, ",")
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
	return api.HumanDuration(time.Since(t))
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// statusCommand is cove status: one workload in detail.
func statusCommand(env *Env) *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:   "status [flags] NAME",
		Short: "show one workload",
		Long: `Show one workload in detail; while it runs, a Network: line per network it is
on and a Ports: line when it publishes any; for an image container, the image
(name and the ID it was last started on) and what the container runs of it
(command, working directory, user: the spec merged with the image's
configuration, as the launcher merges them); for a running VM, what QEMU tells
(QMP): its vCPUs' CPU time, the guest's memory and a Disk I/O: line per drive.`,
		Example: `  cove status web
  cove status --json web
  cove status --format '{{.MainPID}} {{size .MemoryBytes}}' web`,
		Args:              wantArgs(1, 1, "exactly one workload name"),
		ValidArgsFunction: completeWorkloads(env, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			return withBackend(ctx, env, func(b api.Backend) error {
				w, err := b.Status(ctx, name)
				if err != nil {
					return named(name, err)
				}
				if done, err := out.print(env.Stdout, w); done {
					return err
				}
				return printStatus(env.Stdout, w)
			})
		},
	}
	out = outputFlags(c)
	return viaAPI(c)
}

// printStatus writes w as cove status shows it: one "Key: value" line
// each, a "Network:" line per network it is on (or the container whose
// network namespace it shares) and a "Ports:" line when it publishes any.
func printStatus(out io.Writer, w api.Workload) error {
	tw := newTable(out, 1)
	rows := [][2]string{
		{"Name", w.Name}, {"Unit", w.Unit}, {"Kind", w.Kind}, {"Description", w.Description},
		{"State", fmt.Sprintf("%s (%s/%s)", w.State(), w.ActiveState, w.SubState)},
		{"Main PID", fmt.Sprint(w.MainPID)}, {"Uptime", uptime(w.Started)},
		{"Restarts", fmt.Sprint(w.Restarts)}, {"Memory", image.HumanSize(int64(w.MemoryBytes))},
		{"Tasks", fmt.Sprint(w.Tasks)}, {"Health", dash(w.Health)},
	}
	if i := w.Image; i != nil {
		rows = append(rows, [2]string{"Image", i.Ref}, [2]string{"Image ID", i.ID}, [2]string{"Command", shellWords(i.Command)},
			[2]string{"Working dir", i.Workdir}, [2]string{"User", i.User})
	}
	if w.Kind == spec.KindVM {
		rows = append(rows, [2]string{"Accelerator", dash(isolate.ReadAccel(w.Name))})
		rows = append(rows, guestRows(w)...)
	}
	if r, ok, _ := userns.Default().Lookup(w.Name); ok && w.Kind == spec.KindContainer {
		rows = append(rows, [2]string{"User namespace", r.Mapping() + " (container:host:count)"})
	}
	if w.NetworkOf != "" {
		rows = append(rows, [2]string{"Network", spec.NetworkSharedPrefix + w.NetworkOf + " (its network namespace)"})
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

// shellWords writes argv as a shell would read it back: words with
// anything but letters, digits and -_./:=@%+, in single quotes.
func shellWords(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = a
		if a == "" || strings.ContainsFunc(a, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_./:=@%+,", r)
		}) {
			words[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(words, " ")
}

// guestRows are what QEMU tells of running VM w (api.Guest): its vCPUs'
// CPU time, the guest's memory and each drive's I/O; none without.
func guestRows(w api.Workload) [][2]string {
	g := w.Guest
	if g == nil {
		return nil
	}
	rows := [][2]string{
		{"vCPU time", fmt.Sprintf("%s (%d vCPUs)", g.VCPUTime.Round(10*time.Millisecond), g.VCPUs)},
		{"Guest memory", image.HumanSize(int64(g.MemoryBytes))},
	}
	for _, d := range g.Disks {
		rows = append(rows, [2]string{"Disk I/O", fmt.Sprintf("%s: read %s (%d ops), written %s (%d ops)",
			d.ID, image.HumanSize(int64(d.ReadBytes)), d.ReadOps, image.HumanSize(int64(d.Written)), d.WriteOps)})
	}
	return rows
}

// nameVerb is a verb that applies one operation to each workload named.
type nameVerb struct {
	name, short, long, example string
	op                         func(api.Backend, context.Context, string) error
}

// The verbs that do only that.
var (
	startVerb = nameVerb{name: "start", short: "start a declared workload",
		long:    "Start declared workloads' units (systemd does it; nothing stays running).",
		example: "  cove start web\n  cove start web db", op: api.Backend.Start}
	stopVerb = nameVerb{name: "stop", short: "stop a workload",
		long:    "Stop workloads: SIGTERM (or the spec's stop signal), then SIGKILL after stop_timeout.",
		example: "  cove stop web\n  cove stop web db", op: api.Backend.Stop}
	restartVerb = nameVerb{name: "restart", short: "restart a workload",
		long:    "Restart workloads' units.",
		example: "  cove restart web", op: api.Backend.Restart}
	pauseVerb = nameVerb{name: "pause", short: "freeze a running workload's processes",
		long: "Freeze every process of running workloads, as docker pause: they keep their memory, files and connections and run again on cove unpause. " +
			"Stopping, restarting, killing or removing a paused workload unpauses it first.",
		example: "  cove pause web\n  cove unpause web", op: api.Backend.Pause}
	unpauseVerb = nameVerb{name: "unpause", short: "thaw a paused workload",
		long:    "Let the processes of paused workloads run again (cove pause).",
		example: "  cove unpause web", op: api.Backend.Unpause}
	rmVerb = nameVerb{name: "rm", short: "stop and remove a workload",
		long:    "Stop and unload workloads; an image container's writable layer is deleted.",
		example: "  cove rm web\n  cove rm web db", op: api.Backend.Remove}
)

// rmCommand is cove rm NAME... (rmVerb), with -f/--force: a running
// workload's main process gets SIGKILL at once instead of its stop signal
// and stop_timeout, as with docker rm -f (cove rm removes a running
// workload either way).
func rmCommand(env *Env) *cobra.Command {
	c := nameCommand(env, rmVerb)
	force := c.Flags().BoolP("force", "f", false, "kill a running workload (SIGKILL) instead of stopping it, as docker rm -f")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		op := rmVerb.op
		if *force {
			op = forceRemove
		}
		return eachName(cmd.Context(), env, args, op)
	}
	return c
}

// forceRemove kills workload name's main process (SIGKILL), if it runs,
// and removes it; Remove's error is the one that counts (a workload that
// does not run has nothing to kill).
func forceRemove(b api.Backend, ctx context.Context, name string) error {
	_ = b.Kill(ctx, name, syscall.SIGKILL)
	return b.Remove(ctx, name)
}

// nameCommand is the command of v: cove VERB NAME...
func nameCommand(env *Env, v nameVerb) *cobra.Command {
	return viaAPI(&cobra.Command{
		Use:               v.name + " NAME...",
		Short:             v.short,
		Long:              v.long,
		Example:           v.example,
		Args:              wantArgs(1, -1, "at least one workload name"),
		ValidArgsFunction: completeWorkloads(env, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachName(cmd.Context(), env, args, v.op)
		},
	})
}

// killCommand is cove kill: a signal (SIGKILL unless -s says otherwise)
// to workloads' main processes; the unit's restart policy decides what
// follows.
func killCommand(env *Env) *cobra.Command {
	sig := signalValue(syscall.SIGKILL)
	c := &cobra.Command{
		Use:   "kill [flags] NAME...",
		Short: "send a signal (default KILL) to a workload's main process",
		Long: `Send a signal (default KILL) to workloads' main processes only; the unit's
restart policy decides what follows. A container's payload is PID 1 in its
namespace: it gets signals other than KILL and STOP only if it handles them.`,
		Example: `  cove kill web
  cove kill -s HUP web
  cove kill --signal SIGTERM web db`,
		Args:              wantArgs(1, -1, "at least one workload name"),
		ValidArgsFunction: completeWorkloads(env, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachName(cmd.Context(), env, args, func(b api.Backend, ctx context.Context, name string) error {
				return b.Kill(ctx, name, syscall.Signal(sig))
			})
		},
	}
	c.Flags().VarP(&sig, "signal", "s", "the signal: a name (TERM, SIGHUP) or a number")
	return viaAPI(c)
}

// signalValue is the value of kill's --signal.
type signalValue syscall.Signal

func (s *signalValue) String() string { return unix.SignalName(syscall.Signal(*s)) }
func (s *signalValue) Type() string   { return "SIGNAL" }

// Set parses a name (TERM, SIGHUP) or a number.
func (s *signalValue) Set(v string) error {
	sig, err := supervisor.ParseSignal(v)
	*s = signalValue(sig)
	return err
}

// eachName applies op to every workload in names.
func eachName(ctx context.Context, env *Env, names []string, op func(api.Backend, context.Context, string) error) error {
	return withBackend(ctx, env, func(b api.Backend) error {
		for _, name := range names {
			if err := op(b, ctx, name); err != nil {
				return named(name, err)
			}
		}
		return nil
	})
}

// noSuchWorkload is the error of every verb given the name of a workload
// that does not exist.
type noSuchWorkload struct{ name string }

func (e noSuchWorkload) Error() string { return "no such workload " + e.name }

// Is makes it match supervisor.ErrNotFound.
func (e noSuchWorkload) Is(target error) bool { return target == supervisor.ErrNotFound }

// named reports err of an operation on workload name: a workload that
// does not exist as noSuchWorkload, anything else as it is.
func named(name string, err error) error {
	if errors.Is(err, supervisor.ErrNotFound) {
		return noSuchWorkload{name}
	}
	return err
}

// logsCommand is cove logs: a workload's journal.
func logsCommand(env *Env) *cobra.Command {
	var opt supervisor.LogOptions
	now := time.Now()
	c := &cobra.Command{
		Use:   "logs [flags] NAME",
		Short: "show a workload's output",
		Long: `Show a workload's output, from journald. TIME is RFC 3339, Unix seconds or a
duration ago (10m).`,
		Example: `  cove logs web
  cove logs -f -n 20 web
  cove logs -t --since 10m web`,
		Args:              wantArgs(1, 1, "exactly one workload name"),
		ValidArgsFunction: completeWorkloads(env, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opt.Lines < 0 {
				return usagef("logs: -n %d: want a count of lines (0 for all)", opt.Lines)
			}
			ctx, name := cmd.Context(), args[0]
			return withBackend(ctx, env, func(b api.Backend) error {
				return named(name, b.Logs(ctx, name, opt, env.Stdout))
			})
		},
	}
	fs := c.Flags()
	fs.BoolVarP(&opt.Follow, "follow", "f", false, "keep printing new output")
	fs.IntVarP(&opt.Lines, "lines", "n", 0, "print only the last `LINES` lines")
	fs.BoolVarP(&opt.Timestamps, "timestamps", "t", false, "prefix every line with its time (RFC 3339, UTC, nanoseconds)")
	fs.Func("since", "only lines logged at or after `TIME`: RFC 3339, Unix seconds, or a duration ago (10m)", func(v string) error {
		return logTime(&opt.Since, v, now)
	})
	fs.Func("until", "only lines logged at or before `TIME` (as for --since)", func(v string) error {
		return logTime(&opt.Until, v, now)
	})
	return viaAPI(c)
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

// execCommand is cove exec: a command inside a running container, as
// its payload runs (namespaces, root, user, capabilities, no_new_privs,
// seccomp, cgroup), with this terminal's stdio; cove exits with the
// command's status.
func execCommand(env *Env) *cobra.Command {
	var o enter.Overrides
	var stdio stdioFlags
	c := &cobra.Command{
		Use:   "exec [flags] NAME [--] COMMAND [ARG...]",
		Short: "run a command inside a running container",
		Long: `Run a command inside a running container as its payload runs: its namespaces
and root, its user (or -u), working directory (or -w), environment (and -e), capabilities,
no_new_privs and seccomp filter, in its cgroup. Standard input, output and
error are this terminal's, or with -t a pseudo-terminal (Ctrl-] detaches);
the exit status is the command's (126: not executable, 127: not found).
Flags go before NAME; everything after it is the command's.`,
		Example: `  cove exec web cat /etc/os-release
  cove exec -it web sh
  cove exec -u 1000 -w /tmp -e DEBUG=1 web -- id
  echo hi | cove exec -i web cat`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeWorkloads(env, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, command := execArgs(cmd, args)
			if name == "" || len(command) == 0 {
				return usagef("exec: want a workload name and a command")
			}
			return execIn(cmd.Context(), env, name, command, o, stdio)
		},
	}
	c.Flags().SetInterspersed(false) // cove exec web ls -l: -l is the command's
	c.Flags().StringVarP(&o.User, "user", "u", "", "run as UID[:GID] (default: the payload's user)")
	c.Flags().StringVarP(&o.Workdir, "workdir", "w", "", "working directory (default: the payload's)")
	c.Flags().StringArrayVarP(&o.Env, "env", "e", nil, "KEY=VALUE for the command, besides the payload's environment (repeatable)")
	stdio.define(c.Flags(), "cove exec always attaches it")
	return c
}

// execArgs splits exec's arguments into the workload's name and the
// command: NAME COMMAND..., or NAME -- COMMAND...
func execArgs(cmd *cobra.Command, args []string) (name string, command []string) {
	before, command := splitCommand(cmd, args)
	if command == nil && len(before) > 0 {
		before, command = before[:1], before[1:]
	}
	if len(before) != 1 {
		return "", nil
	}
	return before[0], command
}

// execIn runs command in workload name (see execCommand), on a
// pseudo-terminal with stdio.tty.
func execIn(ctx context.Context, env *Env, name string, command []string, o enter.Overrides, stdio stdioFlags) error {
	return withConn(ctx, func(conn *supervisor.Conn) error {
		t, err := conn.Probe(ctx, name)
		if err != nil {
			return named(name, err)
		}
		c, target, err := enter.Open(ctx, conn, name, t)
		if err != nil {
			return fmt.Errorf("exec in %s: %w", name, err)
		}
		defer target.Close()
		c.Argv = command
		if err := o.Apply(&c); err != nil {
			return usagef("exec: %v", err)
		}
		if stdio.tty {
			return execTTY(ctx, env, name, c, target, stdio.interactive)
		}
		cmd := isolate.EnterCommand(ctx, launch.InsidePath(env.Self), c, target)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, env.Stdout, env.Stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitError{ee.ExitCode()}
		}
		return err
	})
}
