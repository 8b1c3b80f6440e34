package units

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/spec"
)

// Slice is the slice every cove workload runs in.
const Slice = "cove.slice"

// Options are the facts about the host that compiling needs.
type Options struct {
	// Launcher is the absolute path of the cove binary that ExecStart runs
	// ("cove launch …").
	Launcher string
}

// UnitName returns the service name of workload name.
func UnitName(name string) string { return "cove-" + name + ".service" }

// Compile turns a validated spec into a service unit. It is pure: the same
// spec and options always give the same Unit.
func Compile(s *spec.Spec, opt Options) (Unit, error) {
	if s.Kind != spec.KindContainer || s.Container == nil {
		return Unit{}, fmt.Errorf("compile %s: kind %q is not supported", s.Name, s.Kind)
	}
	u := Unit{Name: UnitName(s.Name)}
	add := func(sec Section, dbusName, file string, v Value) {
		u.Props = append(u.Props, Prop{Section: sec, DBus: dbusName, File: file, Value: v})
	}
	add(SectionUnit, "Description", "", Str(description(s)))
	add(SectionService, "Type", "", Str("notify"))
	add(SectionService, "NotifyAccess", "", Str("main"))
	add(SectionService, "ExecStart", "", Exec(append([]string{opt.Launcher, isolate.LaunchVerb}, launchConfig(s).Args()...)))
	add(SectionService, "ExecStop", "", Exec([]string{opt.Launcher, isolate.StopVerb, "--timeout", stopWait(s.Service.StopTimeout).String()}))
	add(SectionService, "Slice", "", Str(Slice))
	add(SectionService, "KillMode", "", Str("control-group"))
	add(SectionService, "Environment", "", List{"COVE_KIND=" + s.Kind})
	add(SectionService, "SyslogIdentifier", "", Str(s.Name))
	add(SectionService, "Restart", "", Str(s.Service.Restart))
	add(SectionService, "RestartUSec", "RestartSec", Duration(s.Service.RestartDelay))
	add(SectionService, "TimeoutStopUSec", "TimeoutStopSec", Duration(s.Service.StopTimeout))
	if r := s.Resources; r.Memory > 0 {
		add(SectionService, "MemoryMax", "", Uint(r.Memory))
	}
	if r := s.Resources; r.CPUs > 0 {
		add(SectionService, "CPUQuotaPerSecUSec", "CPUQuota", CPUQuota(math.Round(r.CPUs*100)))
	}
	if r := s.Resources; r.Pids > 0 {
		add(SectionService, "TasksMax", "", Uint(r.Pids))
	}
	return u, nil
}

// stopWait is how long ExecStop= waits after SIGTERM before SIGKILL: a
// little under the unit's stop timeout, so that it, not systemd's timeout,
// ends the payload.
func stopWait(timeout time.Duration) time.Duration {
	margin := min(timeout/10, 200*time.Millisecond)
	return timeout - margin
}

// description is the unit's Description=.
func description(s *spec.Spec) string {
	d := "cove " + s.Kind + " " + s.Name
	if s.Description != "" {
		d += ": " + s.Description
	}
	return d
}

// launchConfig derives the launcher's configuration from a container spec.
func launchConfig(s *spec.Spec) isolate.Config {
	c := s.Container
	env := make([]string, 0, len(c.Env))
	for k, v := range c.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return isolate.Config{
		Name:           s.Name,
		Rootfs:         c.Rootfs,
		Argv:           c.Command,
		Env:            env,
		Workdir:        c.Workdir,
		UID:            c.User.UID,
		GID:            c.User.GID,
		Hostname:       c.Hostname,
		PrivateNetwork: c.Network == spec.NetworkNone,
		Caps:           isolate.CapSet(s.Security.CapAdd, s.Security.CapDrop),
		Seccomp:        s.Security.Seccomp != spec.SeccompUnconfined,
		NoNewPrivs:     !s.Security.AllowNewPrivileges,
	}
}

// RunOptions describe an imperative run (cove run).
type RunOptions struct {
	Remove  bool   // --rm: unload the unit as soon as it is inactive or failed
	Restart string // the spec's restart policy
}

// ForRun adapts a compiled unit for a transient run: with Remove the unit
// is collected when it ends, even failed; without it a unit that will not
// be restarted stays loaded after its payload exits ("exited" in cove ps)
// until cove rm, like a stopped container.
func ForRun(u Unit, opt RunOptions) Unit {
	props := append([]Prop(nil), u.Props...)
	switch {
	case opt.Remove:
		props = append(props, Prop{Section: SectionUnit, DBus: "CollectMode", Value: Str("inactive-or-failed")})
	case opt.Restart == "no":
		props = append(props, Prop{Section: SectionService, DBus: "RemainAfterExit", Value: Bool(true)})
	}
	return Unit{Name: u.Name, Props: props}
}
