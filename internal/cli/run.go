package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

const runUsage = "[flags] [SPEC-FILE] [-- COMMAND [ARG...]]"

// runFlags are cove run's flags; the spec-setting ones override the file.
type runFlags struct {
	name   string
	rm     bool
	detach bool
	env    multi
	capAdd multi
	capDrp multi
	volume multi
	tmpfs  multi
	fs     *flagSet
}

// newRunFlags defines cove run's flags.
func newRunFlags(env *Env) *runFlags {
	f := &runFlags{fs: newFlags("run", runUsage, env.Stderr)}
	fs := f.fs
	fs.StringVar(&f.name, "name", "", "workload name (default: the spec file's name, or a generated one)")
	fs.BoolVar(&f.rm, "rm", false, "remove the unit when the payload exits")
	fs.BoolVar(&f.detach, "d", false, "detach: start in the background, output to the journal")
	fs.String("rootfs", "", "container root directory (absolute)")
	fs.String("workdir", "", "working directory in the container")
	fs.String("user", "", "UID[:GID] of the payload")
	fs.String("hostname", "", "hostname (default: the name)")
	fs.String("network", "", `"host" or "none"`)
	fs.String("memory", "", "memory limit, e.g. 256M")
	fs.String("cpus", "", "CPU limit, e.g. 0.5")
	fs.String("pids", "", "task limit")
	fs.String("restart", "", "no | on-failure | always")
	fs.String("restart-delay", "", "delay before a restart, e.g. 1s")
	fs.String("stop-timeout", "", "time from SIGTERM to SIGKILL, e.g. 10s")
	fs.String("seccomp", "", "default | unconfined")
	fs.Var(&f.env, "env", "KEY=VALUE for the payload (repeatable)")
	fs.Var(&f.capAdd, "cap-add", "capability to add (repeatable)")
	fs.Var(&f.capDrp, "cap-drop", "capability to drop (repeatable)")
	fs.Bool("read-only", false, "make the container's root file system read-only")
	fs.Bool("volatile", false, "keep writes to the root in memory (tmpfs overlay), not in the rootfs")
	fs.Var(&f.volume, "volume", "bind mount SOURCE:TARGET[:ro|rw] (repeatable)")
	fs.Var(&f.volume, "v", "short for --volume")
	fs.Var(&f.tmpfs, "tmpfs", "tmpfs mount TARGET[:ro|rw][,size=SIZE] (repeatable)")
	return f
}

// runCmd starts a workload as a transient unit. In the foreground (the
// default) the payload's stdio is cove's and cove exits with its status;
// with -d it returns once the payload runs.
func runCmd(ctx context.Context, env *Env, args []string) error {
	f := newRunFlags(env)
	before, command, _ := cutArgs(args, "--")
	if ok, err := parse(f.fs, before); !ok || err != nil {
		return err
	}
	s, err := f.spec(command)
	if err != nil {
		return err
	}
	u, err := units.Compile(s, units.Options{Launcher: env.Self})
	if err != nil {
		return err
	}
	u = units.ForRun(u, units.RunOptions{Remove: f.rm, Restart: s.Service.Restart})
	conn, err := supervisor.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var stdio *supervisor.Stdio
	if !f.detach {
		stdio = &supervisor.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	}
	if err := conn.StartTransient(ctx, u, stdio); err != nil {
		return err
	}
	if timer, svc, ok := units.CompileHealth(s, units.Options{Launcher: env.Self}); ok {
		if err := conn.StartTimer(ctx, timer, svc); err != nil {
			return err
		}
	}
	if f.detach {
		fmt.Fprintln(env.Stdout, s.Name)
		return nil
	}
	exit, err := conn.WaitExit(ctx, u.Name)
	if ctx.Err() != nil { // interrupted: stop the workload, like docker run
		stopCtx, cancel := context.WithTimeout(context.Background(), s.Service.StopTimeout+5*time.Second)
		defer cancel()
		return errors.Join(err, conn.Stop(stopCtx, s.Name))
	}
	if err != nil {
		return err
	}
	return exitError{exit.Code}
}

// cutArgs splits args at the first sep.
func cutArgs(args []string, sep string) (before, after []string, found bool) {
	for i, a := range args {
		if a == sep {
			return args[:i], args[i+1:], true
		}
	}
	return args, nil, false
}

// spec builds the workload's spec: from the file if one was given, else
// from defaults; then the flags that were set, then the command.
func (f *runFlags) spec(command []string) (*spec.Spec, error) {
	var s *spec.Spec
	switch f.fs.NArg() {
	case 0:
		name := f.name
		if name == "" {
			name = generatedName()
		}
		if err := spec.ValidName(name); err != nil {
			return nil, usageError{fmt.Errorf("run: --name: %w", err)}
		}
		s = spec.Defaults(name)
	case 1:
		var err error
		if s, err = spec.Load(f.fs.Arg(0), f.name); err != nil {
			return nil, err
		}
	default:
		return nil, usagef("run: at most one spec file, got %q (put the command after --)", f.fs.Args())
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

// apply writes the flags that were set, and the command, into s.
func (f *runFlags) apply(s *spec.Spec, command []string) error {
	var errs []error
	c := s.Container
	if c == nil { // a VM: only the flags that apply to every kind
		if len(command) > 0 {
			return usagef("run: %s is a VM: it takes no command", s.Name)
		}
		f.fs.Visit(func(fl *flag.Flag) {
			if containerFlags[fl.Name] {
				errs = append(errs, usagef("run: --%s applies to containers only; %s is a VM", fl.Name, s.Name))
			}
		})
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	} else {
		if len(command) > 0 {
			c.Command = command
		}
		c.Env = mergeEnv(c.Env, f.env)
		s.Security.CapAdd = append(s.Security.CapAdd, f.capAdd...)
		s.Security.CapDrop = append(s.Security.CapDrop, f.capDrp...)
		errs = append(errs, f.addMounts(c))
	}
	f.fs.Visit(func(fl *flag.Flag) {
		if err := setField(s, fl.Name, fl.Value.String()); err != nil {
			errs = append(errs, usageError{fmt.Errorf("run: --%s %q: %w", fl.Name, fl.Value, err)})
		}
	})
	return errors.Join(errs...)
}

// addMounts appends the --volume and --tmpfs mounts to c's.
func (f *runFlags) addMounts(c *spec.Container) error {
	var errs []error
	for _, flag := range []struct {
		values multi
		parse  func(string) (spec.Mount, error)
	}{{f.volume, spec.ParseVolume}, {f.tmpfs, spec.ParseTmpfs}} {
		for _, v := range flag.values {
			m, err := flag.parse(v)
			if err != nil {
				errs = append(errs, usageError{fmt.Errorf("run: %w", err)})
				continue
			}
			c.Mounts = append(c.Mounts, m)
		}
	}
	return errors.Join(errs...)
}

// containerFlags are the run flags that set container-only keys.
var containerFlags = map[string]bool{
	"rootfs": true, "workdir": true, "user": true, "hostname": true, "network": true,
	"env": true, "cap-add": true, "cap-drop": true, "seccomp": true,
	"read-only": true, "volatile": true, "volume": true, "v": true, "tmpfs": true,
}

// mergeEnv adds KEY=VALUE entries to env.
func mergeEnv(env map[string]string, kvs []string) map[string]string {
	if len(kvs) > 0 && env == nil {
		env = map[string]string{}
	}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// setField sets the spec field a run flag names; other flags are ignored.
func setField(s *spec.Spec, flagName, v string) error {
	c := s.Container
	var err error
	switch flagName {
	case "rootfs":
		c.Rootfs = v
	case "workdir":
		c.Workdir = v
	case "hostname":
		c.Hostname = v
	case "network":
		c.Network = v
	case "user":
		c.User, err = spec.ParseUser(v)
	case "memory":
		s.Resources.Memory, err = spec.ParseSize(v)
	case "cpus":
		s.Resources.CPUs, err = strconv.ParseFloat(v, 64)
	case "pids":
		s.Resources.Pids, err = strconv.ParseUint(v, 10, 64)
	case "restart":
		s.Service.Restart = v
	case "restart-delay":
		s.Service.RestartDelay, err = time.ParseDuration(v)
	case "stop-timeout":
		s.Service.StopTimeout, err = time.ParseDuration(v)
	case "seccomp":
		s.Security.Seccomp = v
	case "read-only":
		c.ReadOnly, err = strconv.ParseBool(v)
	case "volatile":
		c.Volatile, err = strconv.ParseBool(v)
	}
	return err
}

// generatedName returns a fresh workload name such as "run-3f9a0c1b".
func generatedName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "run-" + hex.EncodeToString(b)
}
