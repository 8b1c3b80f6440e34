package units

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Slice is the slice every cove workload runs in.
const Slice = "cove.slice"

// Options are the facts about the host that compiling needs.
type Options struct {
	// Launcher is the absolute path of the cove binary: the units of VMs,
	// health checks and pulls run it, a container's run the stage binary
	// beside it (launch.StagePath: "cove-launch launch …").
	Launcher string
	// PullUnit: an image of the workload (spec.Spec.Images) may need
	// pulling at start (pull = "always", or "missing" and not in the store
	// now): the workload requires and follows its pull unit (CompilePull).
	PullUnit bool
	// LaunchFile: a container's launcher reads its arguments from
	// launch.ConfigFile (ExecStart= gives only launch.FileArgs; the unit's
	// LaunchArgs are what that file must hold), so that a change of them
	// needs no reload. Declared workloads have it; transient units not.
	LaunchFile bool
}

// Compile turns a validated spec into a service unit. It is pure: the same
// spec and options always give the same Unit.
func Compile(s *spec.Spec, opt Options) (Unit, error) {
	u := &Unit{Name: spec.UnitName(s.Name), WantedBy: s.Install.WantedBy}
	if n := s.Service.Replicas; n > 0 { // its instances are the same unit: the launcher tells them apart
		u.Name, u.Instances = spec.TemplateUnitName(s.Name), n
	}
	u.add(SectionUnit, "Description", "", Str(description(s)))
	dependencies(u, s)
	if opt.PullUnit {
		u.add(SectionUnit, "Requires", "", Names{spec.PullUnitName(s.Name)})
		u.add(SectionUnit, "After", "", Names{spec.PullUnitName(s.Name)})
	}
	if s.Health != nil {
		u.add(SectionUnit, "Wants", "", Names{spec.HealthTimerName(s.Name)})
	}
	if c := s.Container; c != nil && c.Image != "" && c.AutoUpdate == spec.AutoUpdateRegistry {
		// Its start starts the timer of cove update --auto (if installed:
		// a missing unit that is only wanted fails nothing).
		u.add(SectionUnit, "Wants", "", Names{spec.AutoUpdateTimer})
	}
	if u.Proxies = proxies(s, opt); len(u.Proxies) > 0 {
		var sockets Names
		for _, p := range u.Proxies {
			sockets = append(sockets, p.Socket.Name)
		}
		u.add(SectionUnit, "Wants", "", sockets)
	}
	if s.Container != nil {
		sharedNetwork(u, s.Container)
	}
	if nets := s.Join().Networks(); len(nets) > 0 {
		// Stopping a network stops its workloads first.
		var units Names
		for _, n := range nets {
			units = append(units, spec.NetworkUnitName(n))
		}
		u.add(SectionUnit, "Requires", "", units)
		u.add(SectionUnit, "After", "", units)
		if s.Kind == spec.KindContainer {
			releaseUnit(u, s)
		}
	}
	switch {
	case s.Kind == spec.KindContainer && s.Container != nil:
		container(u, s, opt)
	case s.Kind == spec.KindVM && s.VM != nil:
		vm(u, s, opt)
	default:
		return Unit{}, fmt.Errorf("compile %s: kind %q is not supported", s.Name, s.Kind)
	}
	service(u, s)
	return *u, nil
}

// sharedNetwork makes container c, when it shares another container's
// network namespace, require that container's unit and start after it:
// starting it starts that one first, and it stops or restarts when that
// one is stopped or restarts, also by itself after a crash (systemd then
// restarts the units that require it and run), so that it is in that
// one's new namespace, as a pod's containers go with its network. Not
// BindsTo=: systemd would stop it when that one crashes and not start it
// again after that one's automatic restart (systemd issue 11695); a crash
// that is not followed by a restart leaves it running with only lo, as
// Docker leaves a container in the namespace of one that died.
func sharedNetwork(u *Unit, c *spec.Container) {
	if other, ok := spec.SharedNetwork(c.Network); ok {
		u.add(SectionUnit, "Requires", "", Names{spec.UnitName(other)})
		u.add(SectionUnit, "After", "", Names{spec.UnitName(other)})
	}
}

// releaseUnit makes container s, on networks, start a release unit
// (spec.ReleaseUnitName: cove network-release NAME) whenever its unit
// has ended, cleanly or not, as systemd starts OnSuccess= and OnFailure=
// units: what its launcher took on its networks goes then, outside the
// unit's own stop, which a process of cove's would lengthen by a Go start
// (about 20 ms here, docs/benchmarks.md). The release may come after the
// unit's next run has started (a restart: systemd 252 starts OnSuccess=
// units on an automatic restart too, systemd issue 26903), so it gives
// back nothing while the unit runs as the run that took it, and the next
// run's launcher gives back what the last one held before it joins
// (network.Holders).
func releaseUnit(u *Unit, s *spec.Spec) {
	name := spec.ReleaseUnitName
	if s.Service.Replicas > 0 {
		name = spec.TemplateReleaseUnitName
	}
	u.add(SectionUnit, "OnSuccess", "", Names{name(s.Name, false)})
	u.add(SectionUnit, "OnFailure", "", Names{name(s.Name, true)})
}

// add appends a property.
func (u *Unit) add(sec Section, dbusName, file string, v Value) {
	u.Props = append(u.Props, Prop{Section: sec, DBus: dbusName, File: file, Value: v})
}

// dependencies adds the spec's dependencies and start rate limit.
func dependencies(u *Unit, s *spec.Spec) {
	d := s.Depends
	for _, dep := range []struct {
		name  string
		names []string
	}{{"Wants", d.Wants}, {"Requires", d.Requires}, {"BindsTo", d.BindsTo}, {"After", d.After}} {
		if len(dep.names) > 0 {
			u.add(SectionUnit, dep.name, "", Names(d.Units(dep.names)))
		}
	}
	if l := s.Service.StartLimit; l.Burst > 0 {
		u.add(SectionUnit, "StartLimitBurst", "", Uint32(l.Burst))
		u.add(SectionUnit, "StartLimitIntervalUSec", "StartLimitIntervalSec", Duration(l.Interval))
	}
}

// container adds how a container starts and stops: the launcher.
func container(u *Unit, s *spec.Spec, opt Options) {
	u.add(SectionService, "Type", "", Str("notify"))
	// Until the payload is ready the launcher stays to tell systemd, but it
	// is no longer the main process then; the payload cannot reach
	// systemd's socket itself (it has its own mount namespace).
	access := "main"
	if s.Service.Ready != "" && s.Service.Ready != spec.ReadyStarted {
		access = "all"
	}
	u.add(SectionService, "NotifyAccess", "", Str(access))
	args := LaunchConfig(s).Args()
	if opt.LaunchFile {
		u.LaunchArgs, args = args, launch.FileArgs(launch.ConfigFile(s.Name))
	}
	u.add(SectionService, "ExecStart", "", Exec(append([]string{launch.StagePath(opt.Launcher), launch.LaunchVerb}, args...)))
	stopStages(u, s, opt)
	// The device cgroup allows only what the container's /dev holds (null,
	// zero, full, random, urandom, tty, ptmx and its pts): with CAP_MKNOD a
	// payload could otherwise create and open a host disk's node.
	u.add(SectionService, "DevicePolicy", "", Str("closed"))
	// Block I/O is counted per unit (cove stats, Docker's blkio_stats):
	// the io controller on cgroup v2, blkio on v1, as systemd maps it.
	u.add(SectionService, "IOAccounting", "", Bool(true))
}

// stopStages adds a container's stop stages, both cove-launch launch-stop
// (internal/outcome says what they record). ExecStop= sends the stop
// signal to the main process and SIGKILL after stop_timeout, recording a
// stop that needed it; systemd counts a death by SIGKILL as clean
// (SuccessExitStatus=, see cleanExits), so a stop the user asked for ends
// inactive, not failed. The post stage (--post) records how a run ended
// (killed by the memory limit, or by a SIGKILL nobody asked for, which it
// fails the unit for). An image container whose stop signal is not
// pinned (hostcheck: the image was not in the store, pull = "always", or
// the image gives none)
// has its stop stage send the image's STOPSIGNAL, read when it stops
// (launch.StopImageSignal); not with an init, whose exit by that signal
// would not be among its clean exits (cleanExits: the pinned signal's).
//
// Every stage is a process systemd forks into the unit's cgroup, also
// after a main process that ended on its own, so a unit has only those
// it needs: systemd runs ExecStop= after every clean end (a death by
// SIGKILL is one) and no other, so where nothing else ends unclean, the
// ExecStop= stage does the post stage's work and there is no
// ExecStopPost=. A container with an init has the post stage behind the
// post gate (the init exits 137, unclean, when the memory limit kills the
// payload); ForRun adds it where SIGKILL is not clean (u.post). What a
// container took on its networks goes in its release unit, not here
// (releaseUnit).
func stopStages(u *Unit, s *spec.Spec, opt Options) {
	stage := launch.StagePath(opt.Launcher)
	post := Exec{stage, launch.StopVerb, "--post", s.Name}
	u.post = gated(postGate, post)
	stop := Exec{stage, launch.StopVerb, "--signal", spec.SignalName(stopSignal(s)), "--timeout", s.Service.StopTimeout.String()}
	if c := s.Container; c != nil && c.Image != "" && s.Service.StopSignal == "" && !s.Service.Init {
		stop = append(stop, "--"+launch.StopImageSignal) // not pinned: the image's, read when it stops
	}
	stop = append(stop, s.Name)
	switch {
	case s.Service.Init:
		u.add(SectionService, "ExecStop", "", gated(stopGate, stop))
		u.add(SectionService, "ExecStopPost", "", u.post)
	default:
		u.add(SectionService, "ExecStop", "", gated(stopOrKillGate, stop))
	}
}

// The gates in front of a container's stop stages: a shell that finds
// nothing to do costs a fraction of a Go start. The scripts are constant:
// the stage's argv follows as "$0" "$@" (Exec doubles the $ for
// systemd), so no value of a spec is ever in them.
const (
	// gateShell runs the gates.
	gateShell = "/bin/sh"
	// stopGate: the stop stage only while the main process runs
	// ($MAINPID is set).
	stopGate = `[ -z "$MAINPID" ] || exec "$0" "$@"`
	// stopOrKillGate: also after SIGKILL ended the main process, which
	// the stage then judges as the post stage would.
	stopOrKillGate = `[ -z "$MAINPID" ] && [ "$EXIT_STATUS" != KILL ] || exec "$0" "$@"`
	// postGate: the post stage unless the main process exited with a
	// status other than 137. Such a run gets no outcome record
	// (internal/outcome's judge), and the launch stage removed the
	// earlier run's at its start.
	postGate = `[ "$EXIT_CODE" = exited ] && [ "$EXIT_STATUS" != 137 ] || exec "$0" "$@"`
)

// gated is stage behind the gate script.
func gated(script string, stage Exec) Exec { return append(Exec{gateShell, "-c", script}, stage...) }

// releaseNetwork adds, for a VM on a network, what gives back what its
// launcher took there: the launcher takes the lease and port claims and
// makes the tap; whatever way the unit stops (QEMU exits or is killed,
// systemctl kill, a failed start), ExecStopPost= releases them. (A
// container's release unit does it: releaseUnit.)
func releaseNetwork(u *Unit, s *spec.Spec, opt Options) {
	if n := s.Join().Network; n != "" {
		u.add(SectionService, "ExecStopPost", "", Exec{opt.Launcher, launch.NetworkReleaseVerb, s.Name, n})
	}
}

// stopMargin is how much longer than stop_timeout systemd waits for a
// stop stage (a container's or a VM's ExecStop=), which itself sends
// SIGKILL after stop_timeout and waits for the death.
const stopMargin = 5 * time.Second

// stopSignal is a validated spec's stop signal: SIGTERM (systemd's
// default) unless it names one.
func stopSignal(s *spec.Spec) int {
	if sig, _ := spec.ParseSignal(s.Service.StopSignal); sig != 0 {
		return sig
	}
	return spec.SignalTERM
}

// service adds what every workload's service has: slice, logging, restart
// policy, timeouts and resource limits.
func service(u *Unit, s *spec.Spec) {
	u.add(SectionService, "Slice", "", Str(Slice))
	u.add(SectionService, "KillMode", "", Str("control-group"))
	u.add(SectionService, "Environment", "", List{"COVE_KIND=" + s.Kind})
	u.add(SectionService, "SyslogIdentifier", "", Str(s.Name))
	u.add(SectionService, "Restart", "", Str(s.Service.Restart))
	u.add(SectionService, "RestartUSec", "RestartSec", Duration(s.Service.RestartDelay))
	u.add(SectionService, "TimeoutStopUSec", "TimeoutStopSec", Duration(s.Service.StopTimeout+stopMargin))
	sig := stopSignal(s)
	if s.Service.StopSignal != "" {
		u.add(SectionService, "KillSignal", "", Signal(sig))
	}
	if clean := cleanExits(s, sig); len(clean.Statuses)+len(clean.Signals) > 0 {
		u.add(SectionService, "SuccessExitStatus", "", clean)
	}
	for _, l := range limitsOf(s.Resources) {
		if l.value != nil {
			u.add(SectionService, l.dbus, l.file, l.value)
		}
	}
}

// cleanExits are the exits of s's main process, besides systemd's own,
// that count as clean: a container's death by SIGKILL (its stop stage
// fails the unit when nobody asked for it, stopStages) and, with an init,
// initCleanExits for the stop signal sig.
func cleanExits(s *spec.Spec, sig int) ExitStatuses {
	var clean ExitStatuses
	if s.Service.Init {
		clean.Statuses = initCleanExits(sig)
	}
	if s.Kind == spec.KindContainer {
		clean.Signals = []int32{spec.SignalKILL}
	}
	return clean
}

// initCleanExits are the exit statuses of a container's init (tini) that
// systemd must count as clean, as it counts a payload's death by the
// same signals when the payload is the main process: the init exits
// 128+N when signal N killed the payload, for the stop signal stop and
// the signals systemd calls clean for a daemon (SIGHUP, SIGINT, SIGTERM,
// SIGPIPE). Without them every stop would fail the unit.
func initCleanExits(stop int) []int32 {
	clean := []int32{128 + spec.SignalHUP, 128 + spec.SignalINT, 128 + spec.SignalPIPE, 128 + spec.SignalTERM}
	if !slices.Contains(clean, 128+int32(stop)) {
		clean = append(clean, 128+int32(stop))
	}
	return clean
}

// description is the unit's Description=.
func description(s *spec.Spec) string {
	d := "cove " + s.Kind + " " + s.Name
	if s.Description != "" {
		d += ": " + s.Description
	}
	return d
}

// LaunchConfig derives the launcher's configuration from a container spec.
func LaunchConfig(s *spec.Spec) launch.Config {
	c := s.Container
	env := make([]string, 0, len(c.Env))
	for k, v := range c.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	networkOf, _ := spec.SharedNetwork(c.Network)
	cfg := launch.Config{
		Name:           s.Name,
		Rootfs:         c.Rootfs,
		Argv:           c.Command,
		Env:            env,
		Workdir:        c.Workdir,
		UID:            c.User.UID,
		GID:            c.User.GID,
		Hostname:       c.Hostname,
		PrivateNetwork: c.Network != spec.NetworkHost && networkOf == "",
		NetworkOf:      networkOf,
		Network:        s.Join().Network,
		MoreNetworks:   s.Join().Also,
		Aliases:        c.Aliases,
		IP:             ip(c.IP),
		Ports:          ports(c.Ports),
		Caps:           launch.CapSet(s.Security.CapAdd, s.Security.CapDrop),
		Seccomp:        s.Security.Seccomp != spec.SeccompUnconfined,
		NoNewPrivs:     !s.Security.AllowNewPrivileges,
		ReadOnly:       c.ReadOnly,
		Volatile:       c.Volatile,
		Init:           s.Service.Init,
		UserNS:         s.UserNS(),
		Mounts:         withResolvConf(c, s.Join().Network),
		Ready:          s.Service.Ready,
		ReadyPort:      s.Service.ReadyPort,
	}
	if c.Image != "" {
		cfg.Image = launch.Image{Ref: c.Image, StateDir: launch.ContainerDir(s.Name), Entrypoint: c.Entrypoint, UserSet: c.User.Set}
	}
	if h := s.Health; h != nil && s.Service.Ready == spec.ReadyHealthy {
		cfg.Probe, cfg.ProbeInterval, cfg.ProbeTimeout = h.Command, readyInterval(h.Interval), h.Timeout
	} else if s.Service.Ready == spec.ReadyTCP {
		cfg.ProbeInterval = readyInterval(0)
	}
	return cfg
}

// withResolvConf is c's mounts, preceded, for a container on network n
// (not ""), by its network's resolv.conf at /etc/resolv.conf (read-only),
// unless a mount of the spec has that target.
func withResolvConf(c *spec.Container, n string) []spec.Mount {
	if n == "" || slices.ContainsFunc(c.Mounts, func(m spec.Mount) bool { return m.Target == launch.ResolvConfTarget }) {
		return c.Mounts
	}
	return append([]spec.Mount{{Type: spec.MountBind, Source: launch.ResolvConf(n), Target: launch.ResolvConfTarget, ReadOnly: true}}, c.Mounts...)
}

// ip is a validated spec's ip: zero when unset.
func ip(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

// ports are a validated spec's published ports.
func ports(list []string) []plan.Port {
	var out []plan.Port
	for _, s := range list {
		p, _ := plan.ParsePort(s) // validated
		out = append(out, p)
	}
	return out
}

// RunOptions describe an imperative run (cove run).
type RunOptions struct {
	Remove  bool     // --rm: unload the unit as soon as it is inactive or failed
	Restart string   // the spec's restart policy
	State   []string // what the workload keeps (Kept); with Remove it goes when the unit stops
	UserNS  string   // the workload's user namespace IDs are recorded as launch.UserNSRecord(UserNS) ("": it has none)
	// SystemStop, with Remove, is the stop timeout of a run that systemd
	// stops itself, with no stop stage (systemStops); 0 keeps the stage.
	SystemStop time.Duration
}

// RunOptionsFor are the options of a run of s, with --rm if remove, on a
// terminal (WithTerminal) if terminal.
func RunOptionsFor(s *spec.Spec, remove, terminal bool) RunOptions {
	o := RunOptions{Remove: remove, Restart: s.Service.Restart, State: Kept(s)}
	if spec.HasUserNS(s.UserNS()) {
		o.UserNS = s.Name
	}
	if remove && !terminal && systemStops(s) {
		o.SystemStop = s.Service.StopTimeout
	}
	return o
}

// systemStops reports whether systemd can stop a removed run of s (cove
// run --rm, Docker's AutoRemove) as well as the stop stage would, so that
// the run has none: after the payload exits, its unit then forks no
// process at all (the stage's gate cost a start 10-15 ms here), and a
// stop is systemd's own: the stop signal (KillSignal=) to the main
// process, SIGKILL to what is left after stop_timeout (TimeoutStopSec=).
// What the stage adds (an outcome record that the stop needed SIGKILL,
// the unit ending inactive rather than failed) goes with the removed unit
// anyway; a death by SIGKILL is then unclean, which systemd's own exit
// record reports (the die event's status). So: a container without an
// init (whose clean exits the stage judges) and without a memory limit
// (whose kill of the payload the stage reports: cove run says so); and
// not on a terminal (RunOptionsFor), whose relay must get SIGTERM, not
// KillMode=mixed's SIGKILL, to pass on the payload's last output.
func systemStops(s *spec.Spec) bool {
	return s.Kind == spec.KindContainer && !s.Service.Init && s.Resources.Memory == 0
}

// Kept are the directories where workload s keeps what outlives a run
// until cove rm: an image container's writable layer, a VM's overlays,
// NVRAM, TPM state and seed.
func Kept(s *spec.Spec) []string {
	switch {
	case s.Kind == spec.KindVM:
		return []string{launch.VMState(s.Name)}
	case s.Container != nil && s.Container.Image != "":
		return []string{launch.ContainerDir(s.Name)}
	}
	return nil
}

// ForRun adapts a compiled unit for a transient run: with Remove the unit
// is collected when it ends, even failed, and what it kept goes: its state
// by rm (an image container's launcher is told its writable layer is
// thrown away: launch.ThrowawayFlag), the record of its user namespace IDs (kept across its restarts)
// in a runtime directory systemd removes, and with SystemStop systemd
// stops it itself (systemStop); without it a unit that will not be
// restarted stays loaded after its payload exits ("exited" in cove ps)
// until cove rm, like a stopped container.
func ForRun(u Unit, opt RunOptions) Unit {
	props := append([]Prop(nil), u.Props...)
	switch {
	case opt.Remove:
		props = append(props, Prop{Section: SectionUnit, DBus: "CollectMode", Value: Str("inactive-or-failed")})
		if opt.SystemStop > 0 {
			props = systemStop(props, opt.SystemStop)
		}
		if len(opt.State) > 0 { // rm, not a cove process: a Go start costs more than the removal
			props = append(props, Prop{Section: SectionService, DBus: "ExecStopPost", Value: append(Exec{"/bin/rm", "-rf", "--one-file-system", "--"}, opt.State...)})
			if i := launcherStart(props); i >= 0 { // an image container's writable layer: launch.Image.Throwaway
				props[i].Value = withLaunchFlags(props[i].Value.(Exec), launch.ThrowawayFlag)
			}
		}
		if opt.UserNS != "" { // systemd removes the record with the directory: no process at all
			props = append(props, Prop{Section: SectionService, DBus: "RuntimeDirectory", Value: List{launch.UserNSRuntimeDirectory(opt.UserNS)}},
				Prop{Section: SectionService, DBus: "RuntimeDirectoryPreserve", Value: Str("restart")})
		}
	case opt.Restart == "no":
		props = append(killNotClean(props), Prop{Section: SectionService, DBus: "RemainAfterExit", Value: Bool(true)})
		if u.post != nil && !has(props, "ExecStopPost") { // a SIGKILL now skips ExecStop=
			props = append(props, Prop{Section: SectionService, DBus: "ExecStopPost", Value: u.post})
		}
	}
	u.Props = props
	return u
}

// systemStop makes props a unit that systemd stops itself (systemStops),
// with the stop timeout timeout: no ExecStop= stage, the stop signal to
// the main process alone and SIGKILL to the rest once it has ended
// (KillMode=mixed, as Docker signals a container's first process), and
// SIGKILL unclean (killNotClean).
func systemStop(props []Prop, timeout time.Duration) []Prop {
	out := make([]Prop, 0, len(props))
	for _, p := range killNotClean(props) {
		switch p.DBus {
		case "ExecStop":
			continue
		case "KillMode":
			p.Value = Str("mixed")
		case "TimeoutStopUSec":
			p.Value = Duration(timeout)
		}
		out = append(out, p)
	}
	return out
}

// has reports whether props set the D-Bus property name.
func has(props []Prop, name string) bool {
	return slices.ContainsFunc(props, func(p Prop) bool { return p.DBus == name })
}

// killNotClean removes SIGKILL from the clean exits in props. With
// RemainAfterExit= a clean exit of the main process leaves the unit
// active (exited) with no stop stage run and its cgroup gone: a SIGKILL
// nobody asked for (the memory limit's) would pass unreported. So in such
// a unit every death by SIGKILL fails it, even the one a stop needed
// (which the stop stage still records).
func killNotClean(props []Prop) []Prop {
	out := make([]Prop, 0, len(props))
	for _, p := range props {
		clean, ok := p.Value.(ExitStatuses)
		switch {
		case ok && len(clean.Statuses) == 0:
			continue
		case ok:
			p.Value = ExitStatuses{Statuses: clean.Statuses}
		}
		out = append(out, p)
	}
	return out
}

// readyInterval is how often the launcher checks readiness: quickly at
// first (the health interval is for a running workload), at most every
// interval.
func readyInterval(interval time.Duration) time.Duration {
	if interval > 0 && interval < 200*time.Millisecond {
		return interval
	}
	return 200 * time.Millisecond
}
