package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/internal/hostconf"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/outcome"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// runFlags are cove run's flags: its own, and those of spec.Keys, which
// override the file; and its positional arguments.
type runFlags struct {
	name   string
	rm     bool
	detach bool
	stdioFlags
	lists map[string]*listValue // the values of the repeatable spec flags, by flag name
	flags *pflag.FlagSet
	args  []string // before the command: [SPEC-FILE], or IMAGE [COMMAND [ARG...]]
}

// runCommand is cove run.
func runCommand(env *Env) *cobra.Command {
	f := &runFlags{lists: map[string]*listValue{}}
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]\n  cove run [flags] [SPEC-FILE] [-- COMMAND [ARG...]]",
		Short: "run a workload as a transient unit",
		Long: `Run a workload as a transient unit cove-NAME.service: an image (pulled first when
not in the store), a spec file, or a container made of the flags alone.

In the foreground (the default) the payload uses this terminal's standard input,
output and error, and cove exits with its status; Ctrl-C stops it. With -d cove
returns once the payload runs (its output goes to the journal). The flags
override the spec file; the repeatable ones add to its lists. Flags go before
the image or spec file: what follows the image is the payload's command.`,
		Example: `  cove run --rm busybox echo hello
  cove run -d --name web -p 8080:80 -v /srv/www:/usr/share/nginx/html:ro nginx:alpine
  cove run --memory 256M -e GREETING=hi web.toml -- /bin/sh -c 'echo $GREETING'
  cove run -d --rm --rootfs /var/lib/cove/rootfs/busybox -- /bin/httpd -f -p 8080`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeRun,
		RunE: func(cmd *cobra.Command, args []string) error {
			var command []string
			f.args, command = splitCommand(cmd, args)
			return f.run(cmd.Context(), env, command)
		},
	}
	c.Flags().SetInterspersed(false) // cove run IMAGE ls -l: -l is the payload's
	f.define(c.Flags())
	return c
}

// define defines cove run's flags on fs.
func (f *runFlags) define(fs *pflag.FlagSet) {
	f.flags = fs
	fs.StringVar(&f.name, "name", "", "workload name (default: the spec file's name, or a generated one)")
	fs.BoolVar(&f.rm, "rm", false, "remove the unit when the payload exits")
	fs.BoolVarP(&f.detach, "detach", "d", false, "start in the background, output to the journal; print the name")
	f.stdioFlags.define(fs, "it always is in the foreground")
	for _, k := range spec.Keys() {
		for _, fl := range k.Flags {
			f.defineKey(k, fl)
		}
	}
}

// defineKey defines the flag fl of key k, with its short form: a boolean,
// a repeatable flag or a string.
func (f *runFlags) defineKey(k spec.Key, fl spec.Flag) {
	switch {
	case k.Type == spec.TypeBoolean:
		f.flags.BoolP(fl.Name, fl.Short, false, fl.Usage)
	case k.Repeatable():
		l := &listValue{}
		f.lists[fl.Name] = l
		f.flags.VarP(l, fl.Name, fl.Short, fl.Usage)
	default:
		f.flags.StringP(fl.Name, fl.Short, "", fl.Usage)
	}
}

// stdioFlags are the -i and -t of cove run and cove exec.
type stdioFlags struct {
	interactive bool // -i: standard input stays attached
	tty         bool // -t: the command gets a pseudo-terminal
}

// define defines -i and -t on fs; attached says when standard input is
// attached without -i.
func (f *stdioFlags) define(fs *pflag.FlagSet, attached string) {
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep standard input attached ("+attached+")")
	fs.BoolVarP(&f.tty, "tty", "t", false, "give the command a pseudo-terminal (Ctrl-] detaches)")
}

// startTransient starts u (supervisor.Conn.StartTransient), calling
// loaded once its unit is loaded; a port proxy that did not start is a
// warning, not a failure: the workload runs.
func startTransient(ctx context.Context, env *Env, conn *supervisor.Conn, u units.Unit, stdio *supervisor.Stdio, loaded func()) error {
	err := conn.StartTransient(ctx, u, stdio, loaded)
	if errors.As(err, new(*supervisor.ProxyError)) {
		fmt.Fprintf(env.Stderr, "cove: warning: %v\n", err)
		return nil
	}
	return err
}

// run starts a workload as a transient unit. In the foreground (the
// default) the payload's stdio is cove's and cove exits with its status;
// with -d it returns once the payload runs (with -t too: the payload
// keeps its terminal, docker run -dit's shell waiting on it).
func (f *runFlags) run(ctx context.Context, env *Env, command []string) error {
	s, err := f.spec(command)
	if err != nil {
		return err
	}
	if s.Service.Replicas > 0 {
		return usagef("run: service.replicas: a transient unit cannot be a template; declare the workload (cove apply %s)", s.File)
	}
	// godbus closes a connection when the context it was made with ends:
	// this one must outlive an interrupt, to stop the workload then.
	conn, err := supervisor.Connect(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	defer conn.Close()
	release, err := prepareRun(ctx, env, conn, s)
	if err != nil {
		return err
	}
	defer release()
	u, console, err := f.unit(env, s)
	if err != nil {
		return err
	}
	if console != nil {
		defer console.Close()
	}
	eventlog.Created(s, f.rm && f.detach && s.Service.Restart == spec.RestartNo)
	var watch *supervisor.UnitWatch
	if !f.detach { // from before the unit exists, so its end is in the signals
		if watch, err = conn.WatchUnit(u.Name); err != nil {
			return err
		}
		defer watch.Close()
	}
	// Once the unit is loaded, a run of the same name finds it: the
	// name's lock goes before the start job ends (a readiness wait).
	if err := startTransient(ctx, env, conn, u, f.stdio(console), release); err != nil {
		return err
	}
	if timer, svc, ok := units.CompileHealth(s, units.Options{Launcher: env.Self}); ok {
		if err := conn.StartPair(ctx, timer, svc); err != nil {
			return err
		}
	}
	if f.detach {
		return detached(env, s.Name, u.Name, console)
	}
	return f.finish(ctx, env, conn, s, watch, console)
}

// unit compiles s into the run's transient unit, with a terminal and the
// console that holds it for -t (nil without).
func (f *runFlags) unit(env *Env, s *spec.Spec) (units.Unit, *ttyConsole, error) {
	u, err := units.Compile(s, units.Options{Launcher: env.Self})
	if err != nil {
		return u, nil, err
	}
	u = units.ForRun(u, units.RunOptionsFor(s, f.rm, f.tty))
	if !f.tty {
		return u, nil, nil
	}
	if u, err = ttyUnit(u); err != nil {
		return u, nil, err
	}
	console, err := newTTYConsole(env, f.interactive && !f.detach)
	return u, console, err
}

// detached ends a run with -d once unit has started: the console, if
// any, lets the terminal go to the unit's relay, and the workload's name
// is printed.
func detached(env *Env, name, unit string, console *ttyConsole) error {
	if console != nil {
		if err := console.Release(unit); err != nil {
			return err
		}
	}
	fmt.Fprintln(env.Stdout, name)
	return nil
}

// stdio is the payload's standard input, output and error: cove's in the
// foreground, the journal's with -d (nil), the console's with -t.
func (f *runFlags) stdio(console *ttyConsole) *supervisor.Stdio {
	switch {
	case console != nil:
		return console.Stdio(f.detach)
	case f.detach:
		return nil
	}
	return &supervisor.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
}

// finish waits for the foreground run of s, which watch follows, to end
// and returns its exit status (exitError); an interrupt of cove stops it.
func (f *runFlags) finish(ctx context.Context, env *Env, conn *supervisor.Conn, s *spec.Spec, watch *supervisor.UnitWatch, console *ttyConsole) error {
	exit, detached, err := f.wait(ctx, watch, console, spec.UnitName(s.Name))
	if detached { // by the user, or dropped by the terminal's relay (err)
		return err
	}
	if ctx.Err() != nil { // interrupted: stop the workload, like docker run
		stopCtx, cancel := context.WithTimeout(context.Background(), s.Service.StopTimeout+5*time.Second)
		defer cancel()
		return errors.Join(err, conn.Stop(stopCtx, s.Name))
	}
	if err != nil {
		return err
	}
	if exit.Code != 0 { // an exit with 0 has no outcome record (internal/outcome)
		if w, err := conn.Status(ctx, s.Name); err == nil && w.Outcome != nil {
			fmt.Fprintf(env.Stderr, "cove: %s: %s\n", s.Name, w.Outcome)
		} else if err == nil && exit.Code == 128+int(syscall.SIGKILL) { // no stop stage recorded it
			fmt.Fprintf(env.Stderr, "cove: %s: %s\n", s.Name, outcome.OfResult(exit.Result, s.Service.StopTimeout))
		}
	}
	if f.rm {
		eventlog.Removed(s.Name) // systemd collected the unit
	}
	return exitError{exit.Code}
}

// wait waits for the payload of unit, which watch follows, to exit,
// through console when it has a terminal (detached: the user pressed
// Ctrl-] and it still runs).
func (f *runFlags) wait(ctx context.Context, watch *supervisor.UnitWatch, console *ttyConsole, unit string) (exit supervisor.Exit, detached bool, err error) {
	if console != nil {
		return console.WaitRun(ctx, watch, unit)
	}
	exit, err = watch.Exit(ctx)
	return exit, false, err
}

// spec builds the workload's spec: from the file if one was given, else
// from defaults; then the flags that were set, then the command.
func (f *runFlags) spec(command []string) (*spec.Spec, error) {
	var s *spec.Spec
	img, imgFlag := f.image()
	switch {
	case imgFlag || len(f.args) > 0 && isImageArg(f.args[0]):
		var err error
		if s, err = f.defaults(); err != nil {
			return nil, err
		}
		if !imgFlag {
			img, command = f.args[0], append(f.args[1:], command...)
		} else if len(f.args) > 0 {
			return nil, usagef("run: --image and a positional argument %q: give the image once", f.args[0])
		}
		s.Container.SetImage(img)
	case len(f.args) == 0:
		var err error
		if s, err = f.defaults(); err != nil {
			return nil, err
		}
	case len(f.args) == 1:
		var err error
		if s, err = spec.Load(f.args[0], f.name); err != nil {
			return nil, err
		}
	default:
		return nil, usagef("run: at most one spec file, got %q (put the command after --)", f.args)
	}
	if err := f.randomPorts(s); err != nil {
		return nil, err
	}
	if err := f.apply(s, command); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := hostcheck.Prepare(s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkSharedDisks refuses a VM run that opens an image another VM
// writes, or writes one another VM opens (hostcheck.SharedDisks): a
// declared VM, or a loaded one (another run's).
func checkSharedDisks(ctx context.Context, s *spec.Spec) error {
	if s.Kind != spec.KindVM {
		return nil
	}
	others := declared.Default.VMs(s.Name)
	return withConn(ctx, func(conn *supervisor.Conn) error {
		loaded, err := conn.VMConfigs(ctx, s.Name)
		if err != nil {
			return err
		}
		for name, c := range loaded {
			if !slices.ContainsFunc(others, func(o *spec.Spec) bool { return o.Name == name }) {
				others = append(others, hostcheck.RunningVM(name, c))
			}
		}
		return hostcheck.SharedDisksWith(s, others)
	})
}

// defaults returns the spec of a run without a spec file: the defaults,
// named by --name or a generated name, on the host's run network
// (hostconf, "cove" by default) unless --network names one. (A spec
// file keeps its own default, "host".)
func (f *runFlags) defaults() (*spec.Spec, error) {
	name := f.name
	if name == "" {
		name = generatedName()
	}
	if err := spec.ValidName(name); err != nil {
		return nil, usageError{fmt.Errorf("run: --name: %w", err)}
	}
	s := spec.Defaults(name)
	if !f.flags.Changed("network") {
		settings, err := hostconf.Load()
		if err != nil {
			return nil, err // names the file, and the line and key of bad content
		}
		s.Container.Network = settings.RunNetwork
	}
	return s, nil
}

// image returns the value of --image and whether it was set.
func (f *runFlags) image() (string, bool) {
	fl := f.flags.Lookup("image")
	return fl.Value.String(), fl.Changed
}

// isImageArg reports whether cove run's first positional argument names an
// image rather than a spec file: it is not a .toml file name and no file
// of that name exists.
func isImageArg(arg string) bool {
	if strings.HasSuffix(arg, ".toml") {
		return false
	}
	_, err := os.Stat(arg)
	return err != nil
}

// apply writes the flags that were set, and the command, into s.
func (f *runFlags) apply(s *spec.Spec, command []string) error {
	var errs []error
	if s.Container == nil { // a VM: only the flags that apply to every kind
		if len(command) > 0 {
			return usagef("run: %s is a VM: it takes no command", s.Name)
		}
		f.flags.Visit(func(fl *pflag.Flag) {
			if k, ok := spec.KeyForFlag(fl.Name); ok && k.Kind == spec.KindContainer {
				errs = append(errs, usagef("run: --%s applies to containers only; %s is a VM", fl.Name, s.Name))
			}
		})
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	} else {
		if len(command) > 0 {
			s.Container.Command = command
		}
		errs = append(errs, f.addLists(s))
	}
	f.flags.Visit(func(fl *pflag.Flag) {
		if k, ok := spec.KeyForFlag(fl.Name); ok && !k.Repeatable() {
			if err := s.SetFlag(fl.Name, fl.Value.String()); err != nil {
				errs = append(errs, usageError{fmt.Errorf("run: --%s %q: %w", fl.Name, fl.Value.String(), err)})
			}
		}
	})
	return errors.Join(errs...)
}

// addLists adds the values of the repeatable flags to s's lists (the
// environment, mounts, capabilities), key by key in the order of
// spec.Keys.
func (f *runFlags) addLists(s *spec.Spec) error {
	var errs []error
	for _, k := range spec.Keys() {
		for _, fl := range k.Flags {
			m := f.lists[fl.Name]
			if m == nil {
				continue
			}
			for _, v := range *m {
				if err := s.SetFlag(fl.Name, v); err != nil {
					errs = append(errs, usageError{fmt.Errorf("run: %w", err)})
				}
			}
		}
	}
	return errors.Join(errs...)
}

// portsKey is the spec key -p sets.
const portsKey = "container.ports"

// randomPorts gives each -p value without a host port (-p 80,
// -p 127.0.0.1::53/udp: Docker's and podman's random port) a free host
// port (network.PortClaims.FreePort) before it reaches s, whose ports
// always name theirs (a declared spec's are fixed: cove apply refuses
// "80"): one that none of the spec's or the other values' ports uses,
// nor a container created through Docker's API (api.RecordedPorts).
func (f *runFlags) randomPorts(s *spec.Spec) error {
	k, _ := spec.KeyFor(portsKey)
	l := f.lists[k.Flags[0].Name]
	if l == nil || s.Container == nil {
		return nil
	}
	taken := api.RecordedPorts(declared.Default.Created) // Docker's stopped containers keep theirs
	for _, v := range append(slices.Clone(s.Container.Ports), *l...) {
		if p, err := plan.ParsePort(v); err == nil {
			taken = append(taken, p)
		}
	}
	for i, v := range *l {
		p, ok := plan.ParseRandomPort(v)
		if !ok {
			continue
		}
		n, err := network.Host.Ports.FreePort(p, taken)
		if err != nil {
			err = fmt.Errorf("run: --%s %q: %w", k.Flags[0].Name, v, err)
			if errors.Is(err, network.ErrNotLocal) {
				return usageError{err}
			}
			return err
		}
		p.HostPort = n
		(*l)[i] = p.String()
		taken = append(taken, p)
	}
	return nil
}

// generatedName returns a fresh workload name such as "run-3f9a0c1b".
func generatedName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "run-" + hex.EncodeToString(b)
}

// prepareRun checks a VM's disks against the other VMs
// (checkSharedDisks), checks that no other workload has s's name
// (unclaimed: before the pulls, so that a taken name costs none), pulls
// the images of s as their policies say (and pins an image container's
// STOPSIGNAL: hostcheck.PinStopSignalOf) and claims s's name
// (claimName). The function it returns releases the name's lock that the
// run holds until its unit is loaded; it may be called again.
func prepareRun(ctx context.Context, env *Env, conn *supervisor.Conn, s *spec.Spec) (func(), error) {
	if err := checkSharedDisks(ctx, s); err != nil {
		return nil, err
	}
	if err := unclaimed(s.Name); err != nil {
		return nil, fmt.Errorf("run %s: %w", s.Name, err)
	}
	for _, im := range s.Images() {
		rec, err := image.Ensure(ctx, env.Stderr, im.Ref, im.Pull)
		if err != nil {
			return nil, fmt.Errorf("run %s: %s: %w", s.Name, im.Key, err)
		}
		if c := s.Container; c != nil && c.Image == im.Ref {
			hostcheck.PinStopSignalOf(s, rec) // one pulled just now was not in the store for hostcheck.Prepare's
		}
	}
	unlock, err := declared.Default.LockNameSaying(ctx, s.Name, env.Stderr)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", s.Name, err)
	}
	if err := claimName(ctx, conn, s); err != nil {
		unlock()
		return nil, fmt.Errorf("run %s: %w", s.Name, err)
	}
	return unlock, nil
}

// unclaimed fails when a spec declares workload name
// (declared.Paths.NotDeclared) or a container created through Docker's
// API has it (docker start would run on it, and docker rm drop what a run
// of the name keeps).
func unclaimed(name string) error {
	return cmp.Or(declared.Default.NotDeclared(name), declared.Default.NotRecorded(name))
}

// claimName, called holding the name's lock (declared.Paths.LockName,
// which cove rm holds too while it drops what a removed workload kept: so
// that it never drops what this run starts with), checks again that no
// other workload has s's name (unclaimed). For an image container it
// also removes what an earlier one of that name left behind
// (declared.ForgetState) once the name is free (declared.Paths.NameFree,
// which checks the Docker record itself: no unit of that name stays
// loaded either; a transient unit that systemd is about to collect, ended
// or a --rm run's that is stopping, is awaited); for the others, systemd
// refuses a loaded unit's name itself. A taken name is an error, and
// nothing is removed.
func claimName(ctx context.Context, conn *supervisor.Conn, s *spec.Spec) error {
	if c := s.Container; c == nil || c.Image == "" {
		return unclaimed(s.Name)
	}
	if err := declared.Default.NotDeclared(s.Name); err != nil {
		return err
	}
	if err := declared.Default.NameFree(ctx, conn, s.Name, true); err != nil {
		return err
	}
	return declared.ForgetState(s.Name)
}
