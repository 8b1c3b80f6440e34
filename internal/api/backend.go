package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/health"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/outcome"
	"github.com/cove-project/cove/internal/qmp"
	"github.com/cove-project/cove/internal/stats"
	"github.com/cove-project/cove/internal/userns"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// Backend is every operation the CLI and the API offer on workloads. Local
// carries them out; Client asks a server, which carries them out with
// Local. Errors name the operation and the workload; an unknown workload's
// error matches supervisor.ErrNotFound, bad specs come as spec.Errors.
type Backend interface {
	// List returns every loaded workload, sorted by name.
	List(ctx context.Context) ([]Workload, error)
	// ListStates is List without the counters of the workloads' cgroups
	// (MemoryBytes and Tasks zero), which cost two reads each.
	ListStates(ctx context.Context) ([]Workload, error)
	// Status returns one workload.
	Status(ctx context.Context, name string) (Workload, error)
	// Start, Stop and Restart run the job on the workload's unit and wait
	// for it.
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	// Kill sends sig to the workload's main process.
	Kill(ctx context.Context, name string, sig syscall.Signal) error
	// Pause freezes the running workload's processes; Unpause thaws them
	// (supervisor.Conn.Pause).
	Pause(ctx context.Context, name string) error
	Unpause(ctx context.Context, name string) error
	// Remove stops the workload, unloads it and drops its health state
	// and what it kept (its writable layer, IDs, addresses), the latter
	// holding the name's lock (declared.Paths.LockName).
	Remove(ctx context.Context, name string) error
	// Logs copies the workload's journal to w (until ctx ends, when
	// following).
	Logs(ctx context.Context, name string, opt supervisor.LogOptions, w io.Writer) error
	// Diff plans what Apply would do, changing nothing.
	Diff(ctx context.Context, s Sources) (declared.Plan, error)
	// Apply installs the specs and starts, restarts or stops what changed,
	// writing one line per workload done to log.
	Apply(ctx context.Context, s Sources, log io.Writer) (declared.Plan, error)
}

// Sources select the specs Diff and Apply work on.
type Sources struct {
	// Paths are spec files or directories of *.toml files. Empty: what the
	// host declares.
	Paths []string
	// Prune also stops and deletes workloads that are not desired.
	Prune bool
}

// Local is the Backend that talks to systemd itself. It connects to the
// system bus on first use and is safe for concurrent use.
type Local struct {
	paths   declared.Paths
	watch   bool
	notices io.Writer // told of a wait for a name's lock (Saying); nil: nobody
	mu      sync.Mutex
	conn    *supervisor.Conn
}

// NewLocal returns a Local for the declared workloads in paths.
func NewLocal(paths declared.Paths) *Local { return &Local{paths: paths} }

// Watching makes l subscribe to systemd's change signals when it connects
// and answer lists of unchanged workloads from a cache: for a long-lived
// server (see supervisor.Conn.Watch). It returns l and must be called
// before l is used.
func (l *Local) Watching() *Local {
	l.watch = true
	return l
}

// Saying makes l tell w when a removal waits for the name's lock (held
// by a start of that name: see forget), as cove run tells its user: for
// cove's own commands. It returns l and must be called before l is used.
func (l *Local) Saying(w io.Writer) *Local {
	l.notices = w
	return l
}

// CacheStats says how workloads were answered (see Watching); zero
// before the first connection.
func (l *Local) CacheStats() supervisor.CacheStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return supervisor.CacheStats{}
	}
	return l.conn.CacheStats()
}

// Close closes the connection to systemd, if one was made.
func (l *Local) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}

// connect returns the connection to systemd, making it on first use. The
// connection outlives the request that made it (it is Local's), so it is
// not tied to ctx's cancellation.
func (l *Local) connect(ctx context.Context) (*supervisor.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		c, err := supervisor.Connect(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		if l.watch {
			if err := c.Watch(ctx); err != nil {
				c.Close()
				return nil, err
			}
		}
		l.conn = c
	}
	return l.conn, nil
}

// List returns every workload with its health and, for those that run,
// their networks and published ports.
func (l *Local) List(ctx context.Context) ([]Workload, error) { return l.list(ctx, true) }

// ListStates is List without the cgroups' counters.
func (l *Local) ListStates(ctx context.Context) ([]Workload, error) { return l.list(ctx, false) }

// list is List, with the counters or not.
func (l *Local) list(ctx context.Context, counters bool) ([]Workload, error) {
	c, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	list := c.ListStates
	if counters {
		list = c.List
	}
	ws, err := list(ctx)
	if err != nil {
		return nil, err
	}
	if ws, err = l.withDeclared(ctx, c, ws); err != nil {
		return nil, err
	}
	ws = withLeftOvers(ws)
	out := make([]Workload, len(ws))
	recorded := health.Recorded()
	for i, w := range ws {
		out[i] = Workload{Workload: w}
		if recorded[w.Name] {
			out[i] = withHealth(w)
		}
	}
	withNetworks(out)
	return out, nil
}

// withDeclared adds to ws, the loaded workloads, the declared ones
// whose units systemd has unloaded (a stopped unit nothing refers to), as
// inactive, sorted by name: cove ps and docker ps -a list every declared
// workload.
func (l *Local) withDeclared(ctx context.Context, c *supervisor.Conn, ws []supervisor.Workload) ([]supervisor.Workload, error) {
	listed := map[string]bool{}
	for _, w := range ws {
		listed[spec.BaseName(w.Name)] = true // a replicated workload is listed by its instances
	}
	files, err := l.paths.SpecFiles() // names only: parsing every spec at every list costs O(declared)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range files {
		if !listed[f.Name] {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) == 0 {
		return ws, nil
	}
	more, err := c.ListNamed(ctx, missing)
	if err != nil {
		return nil, err
	}
	ws = append(ws, more...)
	slices.SortFunc(ws, func(a, b supervisor.Workload) int { return spec.CompareNames(a.Name, b.Name) })
	return ws, nil
}

// withLeftOvers adds to ws, sorted, the workloads whose units systemd no
// longer has but which left something for cove rm (a stopped cove run -d
// workload), as collected shows them.
func withLeftOvers(ws []supervisor.Workload) []supervisor.Workload {
	listed := map[string]bool{}
	for _, w := range ws {
		listed[w.Name] = true
	}
	added := false
	for _, dir := range []string{launch.ContainersDir, launch.VMStateDir, outcome.Dir} {
		es, _ := os.ReadDir(dir) // none yet: nothing left over
		for _, e := range es {
			name := e.Name()
			if listed[name] {
				continue
			}
			listed[name] = true // looked at once, whichever directories name it
			if w, ok := collected(name); ok {
				added = true
				ws = append(ws, w.Workload)
			}
		}
	}
	if added {
		slices.SortFunc(ws, func(a, b supervisor.Workload) int { return spec.CompareNames(a.Name, b.Name) })
	}
	return ws
}

// Status returns workload name with its health, networks and ports.
func (l *Local) Status(ctx context.Context, name string) (Workload, error) {
	c, err := l.connect(ctx)
	if err != nil {
		return Workload{}, err
	}
	w, err := c.Status(ctx, name)
	if errors.Is(err, supervisor.ErrNotFound) {
		if w, ok := collected(name); ok {
			return w, nil
		}
		if instances, _ := c.Instances(ctx, name); len(instances) > 0 {
			names := make([]string, len(instances))
			for i, inst := range instances {
				names[i] = inst.Name
			}
			return Workload{}, fmt.Errorf("status of %s: a replicated workload: name one of its instances %s (cove ps lists them)", name, strings.Join(names, ", "))
		}
	}
	if err != nil {
		return Workload{}, err
	}
	out := []Workload{withHealth(w)}
	withNetworks(out)
	if w.Kind == spec.KindContainer {
		if cfg, ok := launchConfig(ctx, c, name); ok {
			out[0].Image, out[0].NetworkOf = runImage(name, cfg), cfg.NetworkOf
		}
	}
	if w.Kind == spec.KindVM && w.MainPID != 0 {
		out[0].Guest = guestOf(ctx, name, int(w.MainPID))
	}
	return out[0], nil
}

// guestOf asks the QEMU of VM name (pid) for its resources; nil when it
// does not answer within 2 s.
func guestOf(ctx context.Context, name string, pid int) *Guest {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	q, err := qmp.Dial(ctx, launch.QMPSocket(name))
	if err != nil {
		return nil
	}
	defer q.Close()
	r, err := q.Resources(ctx)
	if err != nil {
		return nil
	}
	g := &Guest{VCPUs: len(r.VCPUThreads), MemoryBytes: r.MemoryBytes, Disks: r.Disks}
	for _, tid := range r.VCPUThreads {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid)); err == nil {
			if user, kernel, err := stats.ParsePidStat(string(b)); err == nil {
				g.VCPUTime += time.Duration(user + kernel)
			}
		}
	}
	return g
}

// launchConfig is container name's launcher configuration, from its
// unit's launcher arguments; false when they cannot be read.
func launchConfig(ctx context.Context, c *supervisor.Conn, name string) (launch.Config, bool) {
	t, err := c.Probe(ctx, name)
	if err != nil {
		return launch.Config{}, false
	}
	cfg, err := launch.ParseArgs(t.Launch)
	return cfg, err == nil
}

// runImage is what image container name, whose launcher configuration
// is cfg, runs (RunImage), from the store; nil for a rootfs container,
// for one never started, and when the image is gone from the store.
func runImage(name string, cfg launch.Config) *RunImage {
	digest := stored.RunningDigest(name)
	if digest == "" || cfg.Image.Ref == "" {
		return nil
	}
	st, err := image.OpenDefault()
	if err != nil {
		return nil
	}
	cfg.Image.Digest = digest
	if cfg, err = st.Complete(cfg); err != nil {
		return nil
	}
	user := cfg.Image.UserName
	if user == "" {
		user = fmt.Sprintf("%d:%d", cfg.UID, cfg.GID)
	}
	return &RunImage{Ref: cfg.Image.Ref, ID: digest, Command: cfg.Argv, Workdir: cfg.Workdir, User: user}
}

// withHealth adds the workload's health state (healthNow).
func withHealth(w supervisor.Workload) Workload {
	st, _ := health.Read(w.Name)
	return Workload{Workload: w, Health: healthNow(st, w.Started)}
}

// healthNow is the health status of a workload whose recorded state is
// st and whose run started at started (zero: it does not run): starting
// while st is older than the run (a restarted workload's first probe
// comes an interval after its start), else st's.
func healthNow(st health.State, started time.Time) string {
	if st.Status != "" && !started.IsZero() && st.CheckedAt.Before(started) {
		return health.Starting
	}
	return st.Status
}

// Start starts workload name; a replicated declared workload, its
// instances 1 … replicas as applied (declared.Scale).
func (l *Local) Start(ctx context.Context, name string) error {
	if spec.ValidName(name) != nil {
		return l.do(ctx, name, (*supervisor.Conn).Start)
	}
	s, err := spec.Load(l.paths.AppliedPath(name), "")
	if err != nil || s.Service.Replicas == 0 {
		return l.do(ctx, name, (*supervisor.Conn).Start)
	}
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	_, _, err = declared.Scale(ctx, c, s)
	return err
}

// Stop stops workload name.
func (l *Local) Stop(ctx context.Context, name string) error {
	return l.do(ctx, name, (*supervisor.Conn).Stop)
}

// Restart restarts workload name.
func (l *Local) Restart(ctx context.Context, name string) error {
	return l.do(ctx, name, (*supervisor.Conn).Restart)
}

// Pause freezes workload name's processes.
func (l *Local) Pause(ctx context.Context, name string) error {
	return l.do(ctx, name, (*supervisor.Conn).Pause)
}

// Unpause thaws workload name's processes.
func (l *Local) Unpause(ctx context.Context, name string) error {
	return l.do(ctx, name, (*supervisor.Conn).Unpause)
}

// Kill sends sig to workload name's main process.
func (l *Local) Kill(ctx context.Context, name string, sig syscall.Signal) error {
	return l.do(ctx, name, func(c *supervisor.Conn, ctx context.Context, name string) error {
		return c.Signal(ctx, name, sig)
	})
}

// Remove stops and unloads workload name and drops its health state, its
// user namespace IDs and, for an image container, its writable layer
// (forget).
func (l *Local) Remove(ctx context.Context, name string) error {
	return l.do(ctx, name, func(c *supervisor.Conn, ctx context.Context, name string) error {
		if spec.ValidRef(name) != nil {
			return fmt.Errorf("remove %s: %w", name, supervisor.ErrNotFound) // no workload has such a name
		}
		removed, err := c.Remove(ctx, name)
		if errors.Is(err, supervisor.ErrNotFound) && leftOver(name) {
			err = nil // no unit left (a reboot, a collected unit), but what it kept is: forget drops it
		}
		if err != nil {
			return err
		}
		eventlog.Removed(name)
		return l.forget(ctx, c, name, removed)
	})
}

// forget drops what removed workload name kept, holding the name's lock
// (declared.Paths.LockName): a cove run of that name that began meanwhile
// holds it until its unit is loaded with its start queued, Docker's start
// until its start job ends, cove apply until all its starts have ended,
// and then what the name keeps is that new workload's, which forget
// leaves (the unit was started since the invocation Remove stopped,
// removed: supervisor.Conn.StartedSince). The wait for the lock is that
// start's, not the removal's: the unit was stopped without it. A wait of
// over a second is told to l's notices (Saying).
func (l *Local) forget(ctx context.Context, c *supervisor.Conn, name, removed string) error {
	unlock, err := l.paths.LockNameSaying(ctx, name, l.notices)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	defer unlock()
	switch started, err := c.StartedSince(ctx, spec.UnitName(name), removed); {
	case err != nil:
		return fmt.Errorf("remove %s: %w", name, err)
	case started:
		return nil
	}
	return errors.Join(health.Remove(name), declared.ForgetState(name))
}

// collected is the status of workload name, whose unit systemd no longer
// has (a stopped cove run -d workload, collected), when it left something
// for cove rm: its writable layer, a VM's state, its user namespace IDs,
// the record of how its last run ended (a stop that needed SIGKILL), or
// what it took on networks (a container whose release unit has not run).
// The status is inactive, with how its last run ended if that was
// recorded; ok is false when nothing was left.
func collected(name string) (w Workload, ok bool) {
	_, ids, _ := userns.Default().Lookup(name)
	r, ended := outcome.Read(name)
	vm := stored.HasVMState(name)
	if !ids && !ended && !vm && !stored.HasContainerState(name) && !holdsLease(name) {
		return Workload{}, false
	}
	sw := supervisor.Workload{Name: name, Unit: spec.UnitName(name), Kind: spec.KindContainer, ActiveState: "inactive", SubState: "dead",
		Description: collectedDescription + "; cove rm " + name + " removes what it kept"}
	if vm {
		sw.Kind = spec.KindVM
	}
	if ended {
		sw.Outcome = &r
	}
	return Workload{Workload: sw}, true
}

// collectedDescription starts the description of a workload collected
// reports.
const collectedDescription = "stopped, its unit no longer loaded"

// isCollected reports whether w is what collected reports: no unit, the
// state it kept.
func isCollected(w Workload) bool { return strings.HasPrefix(w.Description, collectedDescription) }

// holdsLease reports whether workload name holds a lease on a network.
// It reads every network's leases, so collected asks it last.
func holdsLease(name string) bool {
	nets, _ := network.Leased(name)
	return len(nets) > 0
}

// leftOver reports whether workload name, whose unit systemd no longer
// has, left something for cove rm (see collected).
func leftOver(name string) bool {
	_, ok := collected(name)
	return ok
}

// do runs op on workload name, or on each instance of replicated
// workload name that systemd holds (NAME@1 …: see spec.SplitInstance).
func (l *Local) do(ctx context.Context, name string, op func(*supervisor.Conn, context.Context, string) error) error {
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	instances, err := c.Instances(ctx, name)
	if err != nil || len(instances) == 0 {
		return op(c, ctx, name)
	}
	var errs []error
	for _, inst := range instances {
		errs = append(errs, op(c, ctx, inst.Name))
	}
	return errors.Join(errs...)
}

// Logs copies workload name's journal to w.
func (l *Local) Logs(ctx context.Context, name string, opt supervisor.LogOptions, w io.Writer) error {
	if l.replicated(ctx, name) {
		return supervisor.InstanceLogs(ctx, name, opt, w)
	}
	if opt.Follow {
		if err := l.known(ctx, name); err != nil {
			return err
		}
		return supervisor.Logs(ctx, name, opt, w)
	}
	cw := &countingWriter{w: w}
	if err := supervisor.Logs(ctx, name, opt, cw); err != nil || cw.n > 0 {
		return err
	}
	return l.known(ctx, name)
}

// replicated reports whether name is a workload whose instances systemd
// holds (NAME@1 …): its logs are theirs.
func (l *Local) replicated(ctx context.Context, name string) bool {
	c, err := l.connect(ctx)
	if err != nil {
		return false
	}
	instances, err := c.Instances(ctx, name)
	return err == nil && len(instances) > 0
}

// known fails with supervisor.ErrNotFound (as stop and status do) unless
// systemd knows workload name's unit. Logs asks it when the journal had
// nothing to print, so that "cove logs nosuch" is an error, not silence;
// a removed workload's old output is still printed.
func (l *Local) known(ctx context.Context, name string) error {
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	_, err = c.Status(ctx, name)
	return err
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Diff plans an apply of s.
func (l *Local) Diff(_ context.Context, s Sources) (declared.Plan, error) {
	return declared.Diff(l.options(s))
}

// Apply applies s.
func (l *Local) Apply(ctx context.Context, s Sources, log io.Writer) (declared.Plan, error) {
	c, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	opt := l.options(s)
	opt.Pull = func(ctx context.Context, ref, policy string) error {
		_, err := image.Ensure(ctx, log, ref, policy)
		return err
	}
	return declared.Apply(ctx, opt, c, log)
}

// options turns s into apply's options.
func (l *Local) options(s Sources) declared.Options {
	return declared.Options{Paths: l.paths, Sources: s.Paths, Prune: s.Prune}
}

// conflicting are the systemd errors that refuse a job because of the
// state of units, not because of the request.
var conflicting = map[string]bool{
	"org.freedesktop.systemd1.TransactionIsDestructive":   true,
	"org.freedesktop.systemd1.TransactionJobsConflicting": true,
	"org.freedesktop.systemd1.TransactionOrderIsCyclic":   true,
	"org.freedesktop.systemd1.UnitMasked":                 true,
	"org.freedesktop.systemd1.OnlyByDependency":           true,
	"org.freedesktop.systemd1.UnitBusy":                   true, // a freeze or thaw with a job pending
	"org.freedesktop.systemd1.UnitInactive":               true,
}

// isConflict reports whether err is a systemd refusal in conflicting.
func isConflict(err error) bool {
	var de dbus.Error
	return errors.As(err, &de) && conflicting[de.Name] || errors.Is(err, supervisor.ErrNotRunning) || errors.Is(err, supervisor.ErrPaused)
}

// Networker is a Backend that creates and removes networks and connects
// running containers to more of them, as Docker's network endpoints do;
// Local is one.
type Networker interface {
	// CreateNetwork writes network name's file with settings s
	// (declared.CreateNetwork) and reloads systemd.
	CreateNetwork(ctx context.Context, name string, s spec.Network) (plan.Network, error)
	// RemoveNetwork removes network name (declared.RemoveNetwork) and
	// reloads systemd.
	RemoveNetwork(ctx context.Context, name string) error
	// Connect joins running container name to network net besides the
	// networks it is on (network.Connect), bringing net up first; there
	// it has aliases besides the names it has on its first network.
	Connect(ctx context.Context, net, name string, aliases []string) error
	// Disconnect takes it off a network Connect (or its spec's more
	// networks) joined it to (network.Disconnect).
	Disconnect(ctx context.Context, net, name string) error
}

var _ Networker = (*Local)(nil)

// Connect starts net's unit (its bridge and firewall) and joins the
// running workload name to it, with aliases.
func (l *Local) Connect(ctx context.Context, net, name string, aliases []string) error {
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	if _, err := network.Named(net); err != nil {
		return fmt.Errorf("connect %s: %w", name, err)
	}
	for _, a := range aliases {
		if err := spec.CheckAlias(a); err != nil {
			return errorf(CodeBadRequest, fmt.Sprintf("connect %s to network %s: alias %q: %v", name, net, a, err))
		}
	}
	w, err := c.Status(ctx, name)
	if err != nil {
		return err
	}
	if w.MainPID == 0 {
		return fmt.Errorf("connect %s to network %s: %s is not running", name, net, name)
	}
	if err := c.StartUnit(ctx, spec.NetworkUnitName(net)); err != nil {
		return err
	}
	_, err = network.Connect(net, name, int(w.MainPID), aliases)
	return err
}

// Disconnect takes the workload name off network net.
func (l *Local) Disconnect(_ context.Context, net, name string) error {
	return network.Disconnect(net, name)
}

// CreateNetwork creates network name and reloads systemd.
func (l *Local) CreateNetwork(ctx context.Context, name string, s spec.Network) (plan.Network, error) {
	c, err := l.connect(ctx)
	if err != nil {
		return plan.Network{}, err
	}
	n, err := declared.CreateNetwork(ctx, name, s)
	if err != nil {
		return n, err
	}
	return n, c.Reload(ctx)
}

// RemoveNetwork removes network name and reloads systemd.
func (l *Local) RemoveNetwork(ctx context.Context, name string) error {
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	if err := declared.RemoveNetwork(ctx, c, name); err != nil {
		return err
	}
	return c.Reload(ctx)
}
