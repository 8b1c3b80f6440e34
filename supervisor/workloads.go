package supervisor

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/cgroup"
	"github.com/cove-project/cove/internal/outcome"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/units"
)

// Workload is what systemd knows about one cove unit.
type Workload struct {
	Name        string    `json:"name"`
	Unit        string    `json:"unit"`
	Kind        string    `json:"kind"`
	Description string    `json:"description"`
	ActiveState string    `json:"active_state"`
	SubState    string    `json:"sub_state"`
	Result      string    `json:"result"`
	MainPID     uint32    `json:"main_pid"`
	Started     time.Time `json:"started,omitempty"` // zero when not running
	Restarts    uint32    `json:"restarts"`
	ExitCode    int       `json:"exit_code"`
	// StartLimitHit: the unit failed because it was restarted too often
	// (systemd logs "Start request repeated too quickly" but keeps the
	// last failure's Result).
	StartLimitHit bool `json:"start_limit_hit"`
	// Paused: it runs with its processes frozen (Conn.Pause).
	Paused      bool   `json:"paused,omitempty"`
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
	Tasks       uint64 `json:"tasks,omitempty"`
	Limits      Limits `json:"limits"`
	// Outcome is how the last run of a container that no longer runs
	// ended, when systemd's state does not say it (package outcome): a
	// stop that needed SIGKILL, the memory limit's kill, a SIGKILL nobody
	// asked for. nil otherwise.
	Outcome *outcome.Record `json:"outcome,omitempty"`
}

// Limits are the cgroup limits systemd applies to a workload (its unit's
// MemoryMax=, CPUQuota= and TasksMax=, declared or transient alike);
// 0 means none.
type Limits struct {
	MemoryBytes uint64  `json:"memory_bytes,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"` // 0.5: half a CPU
	Pids        uint64  `json:"pids,omitempty"`
}

// limitsOf reads the limits from the unit's properties; systemd says
// "none" with the largest uint64.
func limitsOf(sp map[string]any) Limits {
	set := func(name string) uint64 {
		if v, _ := sp[name].(uint64); v != math.MaxUint64 {
			return v
		}
		return 0
	}
	return Limits{MemoryBytes: set("MemoryMax"), CPUs: float64(set("CPUQuotaPerSecUSec")) / 1e6, Pids: set("TasksMax")}
}

// State is a short human form: "running", "exited (0)", "failed (1)",
// followed by the outcome when there is one: "failed (signal, 137):
// killed: out of memory (limit 8M)", "inactive: stopped with SIGKILL
// after 10s".
func (w Workload) State() string {
	if w.Outcome == nil {
		return w.systemdState()
	}
	return w.systemdState() + ": " + w.Outcome.String()
}

// systemdState is State without the outcome.
func (w Workload) systemdState() string {
	switch {
	case w.ActiveState == "active" && w.SubState == "exited":
		return fmt.Sprintf("exited (%d)", w.ExitCode)
	case w.Paused:
		return "paused"
	case w.ActiveState == "active":
		return "running"
	case w.ActiveState == "failed" && w.StartLimitHit:
		return fmt.Sprintf("failed (start-limit-hit after %d restarts; last %s, %d)", w.Restarts, w.Result, w.ExitCode)
	case w.ActiveState == "failed":
		return fmt.Sprintf("failed (%s, %d)", w.Result, w.ExitCode)
	case w.SubState == "auto-restart":
		return "restarting"
	}
	return w.ActiveState
}

// OOMKilled reports whether the memory limit's OOM killer ended the
// workload's last run (it no longer runs).
func (w Workload) OOMKilled() bool { return w.Outcome != nil && w.Outcome.Kind == outcome.OOM }

// ended reports whether a unit in these states has a run that ended and
// none that runs (or starts): only then does an outcome apply.
func ended(activeState, subState string) bool {
	return activeState == "failed" || activeState == "inactive" || subState == "auto-restart" || subState == "exited"
}

// List returns every loaded cove workload, sorted by name.
func (c *Conn) List(ctx context.Context) ([]Workload, error) { return c.list(ctx, true) }

// ListStates is List without the cgroups' counters (MemoryBytes and
// Tasks zero): two file reads fewer for each workload, for a list that
// shows states (cove ps, docker ps). While its cache is off (a Conn that
// does not watch, see Watch, or one that lost systemd until it subscribes
// again) it also leaves out the limits of the workloads it fetches
// (Limits zero): five property calls fewer of fourteen for each.
func (c *Conn) ListStates(ctx context.Context) ([]Workload, error) { return c.list(ctx, false) }

// list is List, with the counters or not.
func (c *Conn) list(ctx context.Context, counters bool) ([]Workload, error) {
	us, err := c.coveUnits(ctx)
	if err != nil {
		return nil, fmt.Errorf("list cove units: %w", err)
	}
	return c.workloads(ctx, us, counters)
}

// coveUnits lists cove's units (ListUnitsByPatterns): once watching, the
// last list again while the cache says nothing in it changed
// (cache.unitsNow), after a Ping of systemd on the signals' connection,
// whose answer comes after every signal systemd sent before it (as a
// ListUnits answer would), so that the cache has seen them. The caller
// must not change the list.
func (c *Conn) coveUnits(ctx context.Context) ([]sd.UnitStatus, error) {
	if c.cache.hasUnits() {
		obj := c.sig.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
		if err := obj.CallWithContext(ctx, "org.freedesktop.DBus.Peer.Ping", 0).Err; err != nil {
			return nil, fmt.Errorf("ping systemd: %w", err)
		}
		if us, ok := c.cache.unitsNow(); ok {
			return us, nil
		}
	}
	st := c.cache.listStamp()
	us, err := c.listUnits(ctx, "ListUnitsByPatterns", []string{}, []string{spec.UnitPattern})
	if err == nil {
		c.cache.storeUnits(st, us)
	}
	return us, err
}

// ListNamed returns the workloads names, sorted by name, loaded or not
// (systemd loads a unit it has a file of to answer; one without is
// skipped): a declared workload whose stopped unit systemd has unloaded
// is listed as inactive.
func (c *Conn) ListNamed(ctx context.Context, names []string) ([]Workload, error) {
	units := make([]string, len(names))
	for i, n := range names {
		units[i] = spec.UnitName(n)
	}
	us, err := c.listUnits(ctx, "ListUnitsByNames", units)
	if err != nil {
		return nil, fmt.Errorf("list cove units %v: %w", names, err)
	}
	return c.workloads(ctx, us, true)
}

// workloads reads the workloads of units us, skipping those not loaded
// or gone meanwhile, sorted by name; with counters, their cgroups'.
func (c *Conn) workloads(ctx context.Context, us []sd.UnitStatus, counters bool) ([]Workload, error) {
	// The property calls are independent: pipelined on the connection they
	// cost about one round trip instead of one per workload.
	got := make([]Workload, len(us))
	errs := make([]error, len(us))
	marked := pausedMarks()
	var wg sync.WaitGroup
	for i, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.workload(ctx, u, counters, marked)
		}()
	}
	wg.Wait()
	var ws []Workload
	for i := range got {
		switch {
		case errs[i] == nil:
			ws = append(ws, got[i])
		case !isNotFound(errs[i]): // not loaded, gone meanwhile, or no workload: skipped
			return nil, fmt.Errorf("list cove units: %w", errs[i])
		}
	}
	sort.Slice(ws, func(i, j int) bool { return spec.CompareNames(ws[i].Name, ws[j].Name) < 0 })
	return ws, nil
}

// Status returns what systemd knows about workload name, or ErrNotFound.
func (c *Conn) Status(ctx context.Context, name string) (Workload, error) {
	unit := spec.UnitName(name)
	us, err := c.listUnits(ctx, "ListUnitsByNames", []string{unit})
	if err != nil {
		return Workload{}, notFound("status of", unit, err)
	}
	if len(us) != 1 {
		return Workload{}, fmt.Errorf("status of %s: %w", unit, ErrNotFound)
	}
	return c.workload(ctx, us[0], true, pausedMarks())
}

// listUnits calls one of the manager's ListUnits methods. It goes over the
// signal connection so that every change signal sent before the answer
// has reached the cache when it returns.
func (c *Conn) listUnits(ctx context.Context, method string, args ...any) ([]sd.UnitStatus, error) {
	c.listCalls <- struct{}{}
	defer func() { <-c.listCalls }()
	if c.cache.lostSubscription() {
		c.subscribe(ctx) // on failure the cache stays off: correct, slower
	}
	var us []sd.UnitStatus
	obj := c.sig.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	err := obj.CallWithContext(ctx, "org.freedesktop.systemd1.Manager."+method, 0, args...).Store(&us)
	return us, err
}

// facts are what a cove unit's service properties say about its workload.
type facts struct {
	kind          string // "" for cove units that are not workloads
	mainPID       uint32
	restarts      uint32
	exit          Exit
	started       time.Time
	startLimitHit bool
	limits        Limits
	// For reading the counters from the cgroup.
	cgroup                            string
	memoryAccounting, tasksAccounting bool
}

// workload completes what ListUnits says about a unit with its facts,
// cached or fetched, and, with counters, its cgroup's counters; whether
// it is paused it asks its cgroup only when marked (pausedMarks) says
// cove paused it.
func (c *Conn) workload(ctx context.Context, u sd.UnitStatus, counters bool, marked map[string]bool) (Workload, error) {
	if u.LoadState != "loaded" {
		return Workload{}, fmt.Errorf("status of %s: %w", u.Name, ErrNotFound)
	}
	f, ok := c.cache.lookup(u)
	if !ok {
		st := c.cache.stampOf(u.Path)
		props := serviceProps
		if !counters && !st.on { // nothing is cached: ListStates needs no more
			props = stateProps
		}
		var err error
		if f, err = c.fetch(ctx, u, props); err != nil {
			return Workload{}, err
		}
		c.cache.store(u, st, f)
	}
	if f.kind == "" { // cove-api.service, a health check: cove's, but no workload
		return Workload{}, fmt.Errorf("status of %s: %w", u.Name, ErrNotFound)
	}
	name, _ := spec.NameOfUnit(u.Name)
	var mem, tasks uint64
	if counters {
		mem, tasks = f.counters()
	}
	w := Workload{Name: name, Unit: u.Name, Kind: f.kind, Description: u.Description,
		ActiveState: u.ActiveState, SubState: u.SubState, Result: f.exit.Result,
		MainPID: f.mainPID, Started: f.started, Restarts: f.restarts, ExitCode: f.exit.Code,
		StartLimitHit: f.startLimitHit, MemoryBytes: mem, Tasks: tasks, Limits: f.limits}
	w.Paused = marked[name] && u.ActiveState == "active" && cgroup.Frozen(f.cgroup)
	if f.kind == spec.KindContainer && ended(u.ActiveState, u.SubState) {
		if r, ok := outcome.Read(name); ok {
			w.Outcome = &r
		}
	}
	return w, nil
}

// counters reads the memory and task counters of the unit's cgroup, as
// systemd does for MemoryCurrent and TasksCurrent; 0 when unknown (no
// cgroup, no accounting).
func (f facts) counters() (memory, tasks uint64) {
	if f.cgroup == "" {
		return 0, 0
	}
	if f.memoryAccounting {
		memory = cgroup.Read(cgroup.Memory, f.cgroup)
	}
	if f.tasksAccounting {
		tasks = cgroup.Read(cgroup.Tasks, f.cgroup)
	}
	return memory, tasks
}

// serviceProps are the Service properties fetch reads, one Get each,
// pipelined (so, unlike a GetAll, not one snapshot: a unit restarting
// meanwhile can mix old and new values; its change signal keeps such
// facts out of the cache). A GetAll makes systemd compute a few hundred, several of them
// from cgroup files: with it a cold list of 100 workloads took 96 ms, with
// these 78 ms (go run ./bench/api -workloads 100).
var serviceProps = slices.Concat(stateProps, []string{"MemoryAccounting", "TasksAccounting", "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax"})

// stateProps are what of serviceProps a list of states needs (ListStates
// while the cache is off, so that nothing partial is cached): the kind, the
// main process, the last exit, the restarts and the cgroup (paused), not
// the limits and the accounting.
var stateProps = []string{
	"Environment", "MainPID", "NRestarts", "Result", "ExecMainCode", "ExecMainStatus",
	"ExecMainStartTimestamp", "Restart", "ControlGroup",
}

// fetch reads unit u's facts from systemd, those the Service properties
// names (serviceProps, or stateProps) give; for a failed unit also its
// StartLimitBurst, to tell a start-limit failure.
func (c *Conn) fetch(ctx context.Context, u sd.UnitStatus, names []string) (facts, error) {
	c.inflight <- struct{}{}
	defer func() { <-c.inflight }()
	props := map[string]string{}
	for _, p := range names {
		props[p] = "org.freedesktop.systemd1.Service"
	}
	if u.ActiveState == "failed" {
		props["StartLimitBurst"] = "org.freedesktop.systemd1.Unit"
	}
	sp, err := c.properties(ctx, u.Path, props)
	if err != nil {
		return facts{}, notFound("status of", u.Name, err)
	}
	f := facts{kind: kindOf(sp), exit: exitOf(sp), limits: limitsOf(sp)}
	f.mainPID, _ = sp["MainPID"].(uint32)
	f.restarts, _ = sp["NRestarts"].(uint32)
	if ts, _ := sp["ExecMainStartTimestamp"].(uint64); ts > 0 && f.mainPID > 0 {
		f.started = time.UnixMicro(int64(ts))
	}
	if restart, _ := sp["Restart"].(string); restart != "no" {
		burst, _ := sp["StartLimitBurst"].(uint32)
		f.startLimitHit = burst > 0 && f.restarts >= burst
	}
	f.cgroup, _ = sp["ControlGroup"].(string)
	f.memoryAccounting, _ = sp["MemoryAccounting"].(bool)
	f.tasksAccounting, _ = sp["TasksAccounting"].(bool)
	return f, nil
}

// properties gets properties (name → interface) of the object at path,
// with all the calls in flight at once.
func (c *Conn) properties(ctx context.Context, path dbus.ObjectPath, props map[string]string) (map[string]any, error) {
	obj := c.sig.Object("org.freedesktop.systemd1", path)
	done := make(chan *dbus.Call, len(props))
	calls := make(map[string]*dbus.Call, len(props))
	for name, iface := range props {
		calls[name] = obj.GoWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, done, iface, name)
	}
	for range props {
		<-done
	}
	values := make(map[string]any, len(props))
	for name, call := range calls {
		var v dbus.Variant
		if err := call.Store(&v); err != nil {
			return nil, err
		}
		values[name] = v.Value()
	}
	return values, nil
}

// kindOf reads COVE_KIND from the unit's environment; "" for units that
// are not workloads.
func kindOf(sp map[string]any) string {
	env, _ := sp["Environment"].([]string)
	for _, e := range env {
		if k, ok := strings.CutPrefix(e, "COVE_KIND="); ok {
			return k
		}
	}
	return ""
}

// Stop stops workload name and waits until it has stopped (systemd sends
// SIGTERM, then SIGKILL after the unit's stop timeout); a paused workload
// is unpaused first (Conn.Pause), so that its processes take the signal.
//
// A unit that the stop left failed only because the stop needed SIGKILL
// is reset, so it ends as after a clean stop: a transient run kept by
// RemainAfterExit= (cove run -d without --rm) counts a death by SIGKILL
// as unclean, so that the memory limit's kill fails it
// (units.killNotClean), and the stop stage's record (outcome) tells the
// stop's SIGKILL apart. The unit's post stage resets it itself
// (ForgiveStop), for systemctl stop too; this is for a unit whose post
// stage could not reach systemd, or that an older cove wrote.
func (c *Conn) Stop(ctx context.Context, name string) error {
	if err := c.thawed(ctx, name, true); err != nil {
		return err
	}
	if err := c.job(ctx, "stop", name, c.sd.StopUnitContext); err != nil {
		return err
	}
	return c.forgiveStopKill(ctx, spec.UnitName(name), name)
}

// ForgiveStop resets the result of workload name's unit while its post
// stage (ExecStopPost=) runs after a stop asked for that needed SIGKILL:
// systemd takes the reset result for the run's, and the unit ends
// inactive, as after a clean stop, not failed.
func ForgiveStop(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	unit := spec.UnitName(name)
	if err := c.sd.ResetFailedUnitContext(ctx, unit); err != nil {
		return fmt.Errorf("reset the result of %s (its stop needed SIGKILL): %w", unit, err)
	}
	return nil
}

// forgiveStopKill resets unit, of workload name, if it failed because
// its main process died by SIGKILL and the outcome record of this run
// says the stop sent it (see Stop).
func (c *Conn) forgiveStopKill(ctx context.Context, unit, name string) error {
	if st, err := c.UnitState(ctx, unit); err != nil || st != "failed" {
		return nil // gone, or not failed: nothing to reset (the common case costs one property)
	}
	props, err := c.sd.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return nil
	}
	if exit := exitOf(props); exit.Result != "signal" || exit.Code != 128+int(unix.SIGKILL) {
		return nil
	}
	r, ok := outcome.Read(name)
	if !ok || r.Kind != outcome.StoppedByKill || r.Invocation != c.invocation(ctx, unit) {
		return nil
	}
	if err := c.sd.ResetFailedUnitContext(ctx, unit); err != nil && !isNotFound(notFound("reset", unit, err)) {
		return fmt.Errorf("stop %s: reset its failure (the stop needed SIGKILL): %w", name, err)
	}
	return nil
}

// Remove stops workload name and forgets it: a failed or exited transient
// unit is unloaded, and Remove waits (AwaitCollected, up to 5 s) until
// systemd has collected it (a container's release unit keeps it loaded
// until it has run), so that the name is free. It returns the invocation
// it stopped (InvocationID, read once stopped; "" when systemd collected
// the unit first). What cove keeps of the workload (the outcome of its
// last run among it) is its callers' to drop: declared.ForgetState.
func (c *Conn) Remove(ctx context.Context, name string) (string, error) {
	if err := c.Stop(ctx, name); err != nil {
		return "", err
	}
	unit := spec.UnitName(name)
	stopped, err := c.InvocationID(ctx, unit)
	if err != nil {
		return "", fmt.Errorf("remove %s: %w", unit, err)
	}
	if err := c.sd.ResetFailedUnitContext(ctx, unit); err != nil {
		if nf := notFound("remove", unit, err); !isNotFound(nf) {
			return "", nf
		}
	}
	c.AwaitCollected(ctx, unit) // the name is free when Remove returns
	return stopped, nil
}

// Start starts workload name's unit and waits for the start job (for cove's
// Type=notify units: until the payload is ready). On failure the error
// includes the unit's last log lines.
func (c *Conn) Start(ctx context.Context, name string) error {
	return c.job(ctx, "start", name, c.sd.StartUnitContext)
}

// Restart restarts workload name's unit (starting it if stopped; a paused
// one is unpaused first, as by Stop) and waits for the job, like Start.
func (c *Conn) Restart(ctx context.Context, name string) error {
	if err := c.thawed(ctx, name, true); err != nil {
		return err
	}
	return c.job(ctx, "restart", name, c.sd.RestartUnitContext)
}

// job runs a start-like job on name's unit and waits for it.
func (c *Conn) job(ctx context.Context, op, name string, do func(context.Context, string, string, chan<- string) (int, error)) error {
	return c.unitJob(ctx, op, spec.UnitName(name), do)
}

// StartUnit starts any unit (a network's, say) and waits for the job.
func (c *Conn) StartUnit(ctx context.Context, unit string) error {
	return c.unitJob(ctx, "start", unit, c.sd.StartUnitContext)
}

// StopUnit stops any unit (a network's, say) and waits until it has
// stopped; a unit systemd does not know is no error.
func (c *Conn) StopUnit(ctx context.Context, unit string) error {
	err := c.unitJob(ctx, "stop", unit, c.sd.StopUnitContext)
	if isNotFound(err) {
		return nil
	}
	return err
}

// UnitState is any unit's ActiveState ("active", "inactive", "failed",
// ...); "inactive" for a unit systemd has not loaded.
func (c *Conn) UnitState(ctx context.Context, unit string) (string, error) {
	return c.stringProperty(ctx, unit, "ActiveState")
}

// stringProperty reads unit's string property name ("ActiveState",
// "LoadState", …).
func (c *Conn) stringProperty(ctx context.Context, unit, name string) (string, error) {
	p, err := c.sd.GetUnitPropertyContext(ctx, unit, name)
	if err != nil {
		return "", fmt.Errorf("%s of %s: D-Bus GetUnitProperty: %w", name, unit, err)
	}
	s, _ := p.Value.Value().(string)
	return s, nil
}

// unitJob runs a start-like job on unit and waits for it.
func (c *Conn) unitJob(ctx context.Context, op, unit string, do func(context.Context, string, string, chan<- string) (int, error)) error {
	ch := make(chan string, 1)
	if _, err := do(ctx, unit, "replace", ch); err != nil {
		return notFound(op, unit, err)
	}
	if err := waitJob(ctx, op, unit, ch); err != nil {
		return withLogs(ctx, err, c.invocation(ctx, unit), unit)
	}
	return nil
}

// Reload makes systemd reload its units (and rerun generators).
func (c *Conn) Reload(ctx context.Context) error {
	if err := c.sd.ReloadContext(ctx); err != nil {
		return fmt.Errorf("reload systemd: %w", err)
	}
	return nil
}

// SetLive sets properties of loaded unit at once, for its running
// processes too, as systemctl set-property --runtime does: systemd keeps
// them in a drop-in under /run/systemd/system.control (RemoveLive drops
// it), which outlives reloads until the next boot.
func (c *Conn) SetLive(ctx context.Context, unit string, props []units.Property) error {
	vs := make([]sd.Property, len(props))
	for i, p := range props {
		vs[i] = prop(p.Name, p.Value)
	}
	if err := c.sd.SetUnitPropertiesContext(ctx, unit, true, vs...); err != nil {
		return notFound("set properties of", unit, err)
	}
	return nil
}

// DefaultTasksMax is the TasksMax systemd gives a unit without TasksMax=
// (DefaultTasksMax= of its system.conf; infinity is math.MaxUint64).
func (c *Conn) DefaultTasksMax() (uint64, error) {
	v, err := c.sd.GetManagerProperty("DefaultTasksMax")
	if err == nil {
		var n uint64
		if n, err = parseUint64Variant(v); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("read systemd's DefaultTasksMax: %w", err)
}

// parseUint64Variant reads a uint64 in GVariant text, as godbus writes it
// ("@t 4915"; infinity is "@t 18446744073709551615").
func parseUint64Variant(v string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(v, "@t "), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a uint64", v)
	}
	return n, nil
}

// IsMain reports whether pid is the main process of workload name's unit
// now (a PID read earlier may have been reused since): what a caller that
// pinned pid checks before it acts on the process.
func (c *Conn) IsMain(ctx context.Context, name string, pid uint32) bool {
	p, err := c.sd.GetServicePropertyContext(ctx, spec.UnitName(name), "MainPID")
	if err != nil {
		return false
	}
	now, _ := p.Value.Value().(uint32)
	return now == pid
}

// LaunchFile returns the file from which the loaded unit of container
// name starts its launcher (launch.FileArgs), whose new content takes
// effect at its next start with no reload; "" when its ExecStart= carries
// the arguments itself (or it is not loaded).
func (c *Conn) LaunchFile(ctx context.Context, name string) string {
	sp, err := c.sd.GetUnitTypePropertiesContext(ctx, spec.UnitName(name), "Service")
	if err != nil {
		return ""
	}
	return launch.FileOf(execArgs(sp, launch.LaunchVerb))
}

// ControlDir is where systemd keeps the properties set on units at run
// time (SetLive), a drop-in directory UNIT.d each.
const ControlDir = "/run/systemd/system.control"

// RemoveLive deletes what SetLive set on unit, so that the next reload
// reads the unit from its files alone.
func RemoveLive(unit string) error {
	if err := os.RemoveAll(filepath.Join(ControlDir, unit+".d")); err != nil {
		return fmt.Errorf("remove the run-time properties of %s: %w", unit, err)
	}
	return nil
}

// ProbeTarget is what entering a running workload needs to know.
type ProbeTarget struct {
	MainPID    uint32 // 0 when it does not run
	Started    time.Time
	Invocation string
	Paused     bool // its processes are frozen (Conn.Pause)
	// Launch are the arguments of the workload's launcher after its verb
	// (cove launch ARGS…, or those in the file a declared container's
	// ExecStart= names: launch.ParseArgs reads them); nil for a VM.
	Launch []string
}

// Probe returns the probe target of workload name.
func (c *Conn) Probe(ctx context.Context, name string) (ProbeTarget, error) {
	unit := spec.UnitName(name)
	sp, err := c.sd.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return ProbeTarget{}, notFound("inspect", unit, err)
	}
	t := ProbeTarget{Invocation: c.invocation(ctx, unit)}
	t.MainPID, _ = sp["MainPID"].(uint32)
	if t.MainPID == 0 { // systemd answers for any name
		if load, _ := c.stringProperty(ctx, unit, "LoadState"); load == "not-found" {
			return ProbeTarget{}, fmt.Errorf("inspect %s: %w", unit, ErrNotFound)
		}
	}
	if ts, _ := sp["ExecMainStartTimestamp"].(uint64); ts > 0 {
		t.Started = time.UnixMicro(int64(ts))
	}
	if cg, _ := sp["ControlGroup"].(string); t.MainPID != 0 {
		t.Paused = cgroup.Frozen(cg)
	}
	if t.Launch, err = launchArgs(sp, launch.LaunchVerb); err != nil {
		return ProbeTarget{}, fmt.Errorf("inspect %s: %w", unit, err)
	}
	return t, nil
}

// VMConfigs returns the launcher configuration of every loaded VM unit
// but except's (cove run -d VMs among them), by workload name.
func (c *Conn) VMConfigs(ctx context.Context, except string) (map[string]launch.VMConfig, error) {
	ws, err := c.ListStates(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]launch.VMConfig{}
	for _, w := range ws {
		if w.Kind != spec.KindVM || w.Name == except {
			continue
		}
		sp, err := c.sd.GetUnitTypePropertiesContext(ctx, w.Unit, "Service")
		if err != nil {
			continue // gone meanwhile
		}
		if vc, err := launch.ParseVMArgs(execArgs(sp, launch.VMLaunchVerb)); err == nil {
			out[w.Name] = vc
		}
	}
	return out, nil
}

// launchArgs returns the arguments of the launcher verb in ExecStart
// ("cove launch ARGS…", "cove launch-vm ARGS…") as the launcher reads
// them (from its configuration file, if the unit names one: a declared
// container's), nil when it has none.
func launchArgs(sp map[string]any, verb string) ([]string, error) {
	return launch.ExpandArgs(execArgs(sp, verb), os.ReadFile)
}

// execArgs returns the arguments of the launcher verb in ExecStart as
// systemd passes them, nil when it has none.
func execArgs(sp map[string]any, verb string) []string {
	execs, _ := sp["ExecStart"].([][]any)
	for _, e := range execs {
		if len(e) < 2 {
			continue
		}
		argv, _ := e[1].([]string)
		if len(argv) > 2 && argv[1] == verb {
			args := make([]string, len(argv)-2)
			for i, a := range argv[2:] {
				args[i] = units.UnescapeVariables(a) // as systemd passes them
			}
			return args
		}
	}
	return nil
}

// RestartNoWait queues a restart of workload name without waiting for it
// (the caller may be stopped by it).
func (c *Conn) RestartNoWait(ctx context.Context, name string) error {
	unit := spec.UnitName(name)
	if _, err := c.sd.RestartUnitContext(ctx, unit, "replace", nil); err != nil {
		return notFound("restart", unit, err)
	}
	return nil
}
