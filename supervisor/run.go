package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/units"
)

// Stdio, when set, attaches a transient unit's standard input, output and
// error to these files instead of /dev/null and the journal.
type Stdio struct {
	In, Out, Err *os.File
}

// props are the unit properties that give it s's files; a nil one is
// left to the unit (output to the journal). systemd holds each file
// until the unit is gone.
func (s *Stdio) props() []sd.Property {
	var props []sd.Property
	for _, f := range []struct {
		name string
		file *os.File
	}{{"StandardInputFileDescriptor", s.In}, {"StandardOutputFileDescriptor", s.Out}, {"StandardErrorFileDescriptor", s.Err}} {
		if f.file != nil {
			props = append(props, prop(f.name, dbus.UnixFD(f.file.Fd())))
		}
	}
	return props
}

// StartTransient creates u as a transient unit and waits until its start
// job has finished (for cove's Type=notify units: until the payload runs),
// then creates and starts its port proxies (u.Proxies: each socket with
// its service). The connection keeps a reference on the unit (AddRef)
// until it is closed, so its exit status can be read even when it is
// collected on exit. On failure the error names the unit and includes its
// last log lines. A proxy that cannot start (its [::1] port is taken, say)
// does not undo the start, as a declared unit's wanted socket would not:
// the error is then a *ProxyError, for the caller to warn about. loaded,
// unless nil, is called once systemd has loaded the unit and queued its
// start, before the start job ends.
func (c *Conn) StartTransient(ctx context.Context, u units.Unit, stdio *Stdio, loaded func()) error {
	if u.LaunchArgs != nil { // the file is written beside a unit file
		return fmt.Errorf("start %s: its launcher reads its arguments from a file, as a declared unit's does; a transient unit carries them in ExecStart=", u.Name)
	}
	props := append(transientProps(u), prop("AddRef", true))
	if stdio != nil {
		props = append(props, stdio.props()...)
	}
	ch := make(chan string, 1)
	if err := c.startTransientUnit(ctx, u.Name, props, ch); err != nil {
		return fmt.Errorf("start %s: %w", u.Name, err)
	}
	if loaded != nil {
		loaded()
	}
	if err := waitJob(ctx, "start", u.Name, ch); err != nil {
		if stdio != nil && stdio.Err != nil { // its output went there, not to the journal
			return err
		}
		return withLogs(ctx, err, c.invocation(ctx, u.Name), u.Name)
	}
	var errs []error
	for _, p := range u.Proxies {
		if err := c.StartPair(ctx, p.Socket, p.Service); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return &ProxyError{Unit: u.Name, Err: errors.Join(errs...)}
	}
	return nil
}

// startTransientUnit asks systemd to create unit with props and start it.
// When a unit of that name is still loaded but has ended (which systemd
// collects once nothing refers to it: a container's release unit refers
// to it until it has run, units.releaseUnit) or is a --rm run's that is
// stopping, it waits for systemd to collect it (AwaitCollected) and asks
// once more.
func (c *Conn) startTransientUnit(ctx context.Context, unit string, props []sd.Property, ch chan<- string) error {
	_, err := c.sd.StartTransientUnitContext(ctx, unit, "fail", props, ch)
	var de dbus.Error
	if !errors.As(err, &de) || de.Name != "org.freedesktop.systemd1.UnitExists" || !c.AwaitCollected(ctx, unit) {
		return err
	}
	_, err = c.sd.StartTransientUnitContext(ctx, unit, "fail", props, ch)
	return err
}

// AwaitCollected reports whether systemd has no unit loaded by that name,
// waiting when it has a transient unit that it will collect: up to
// collectWait for one that has ended (inactive; or failed, with
// CollectMode=inactive-or-failed), and up to its stop timeout (at most
// maxStopWait) and collectWait for one that is stopping and is collected
// however it ends (deactivating, with CollectMode=inactive-or-failed: a
// --rm run's). It gives up as soon as such a unit runs again (a restart).
// A unit that runs, or that stays loaded (a unit file's, a failed one
// kept for cove ps), is not awaited.
func (c *Conn) AwaitCollected(ctx context.Context, unit string) bool {
	if load, err := c.stringProperty(ctx, unit, "LoadState"); err == nil && load == "not-found" {
		return true
	}
	wait, ok := c.collectable(ctx, unit)
	return ok && c.collected(ctx, unit, wait)
}

// Transient reports whether systemd has unit loaded as a transient unit
// (a cove run's, Docker's start's), not from a unit file.
func (c *Conn) Transient(ctx context.Context, unit string) (bool, error) {
	p, err := c.sd.GetUnitPropertyContext(ctx, unit, "Transient")
	if err != nil {
		return false, fmt.Errorf("read %s's Transient: %w", unit, err)
	}
	transient, _ := p.Value.Value().(bool)
	return transient, nil
}

// StartedSince reports whether unit has been started since its
// invocation was removed ("" for none: no unit was loaded): it has
// another invocation now, has a job queued (a start waiting for what it
// is ordered after, which gets its invocation only when it runs), or is
// not inactive or failed.
func (c *Conn) StartedSince(ctx context.Context, unit, removed string) (bool, error) {
	props, err := c.sd.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return false, fmt.Errorf("read %s's properties: %w", unit, err)
	}
	id, _ := props["InvocationID"].([]byte)
	job, _ := props["Job"].([]any)
	queued := len(job) == 2 && job[0] != uint32(0)
	state := props["ActiveState"]
	return len(id) > 0 && fmt.Sprintf("%x", id) != removed || queued || state != "inactive" && state != "failed", nil
}

// RanFromUnitFile reports whether systemd has unit from a unit file (the
// generator's, or an instance of a template's; not a transient unit) and
// has started it since it was loaded (InactiveExitTimestampMonotonic,
// which systemd keeps across reloads): a unit file alone does not count.
// Reading the properties loads the unit from its file.
func (c *Conn) RanFromUnitFile(ctx context.Context, unit string) (bool, error) {
	props, err := c.sd.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return false, fmt.Errorf("read %s's properties: %w", unit, err)
	}
	transient, _ := props["Transient"].(bool)
	left, _ := props["InactiveExitTimestampMonotonic"].(uint64)
	return props["LoadState"] == "loaded" && !transient && left != 0, nil
}

// collectable reports whether unit is a transient unit that systemd
// collects as it is, or once it has stopped, and how long to wait for that
// (see AwaitCollected).
func (c *Conn) collectable(ctx context.Context, unit string) (time.Duration, bool) {
	if transient, err := c.Transient(ctx, unit); err != nil || !transient {
		return 0, false
	}
	st, err := c.UnitState(ctx, unit)
	switch {
	case err != nil:
		return 0, false
	case st == "inactive":
		return collectWait, true
	case st != "failed" && st != "deactivating":
		return 0, false
	}
	if mode, err := c.stringProperty(ctx, unit, "CollectMode"); err != nil || mode != "inactive-or-failed" {
		return 0, false
	}
	if st == "failed" {
		return collectWait, true
	}
	p, err := c.sd.GetUnitTypePropertyContext(ctx, unit, "Service", "TimeoutStopUSec")
	if err != nil {
		return 0, false
	}
	usec, _ := p.Value.Value().(uint64)
	return time.Duration(min(usec, uint64(maxStopWait/time.Microsecond)))*time.Microsecond + collectWait, true
}

// collectWait bounds how long AwaitCollected waits for an ended unit to
// be collected, and for a stopping one after its stop timeout; of that
// timeout it waits out at most maxStopWait.
const (
	collectWait = 5 * time.Second
	maxStopWait = time.Minute
)

// collected waits (up to wait) until systemd has no unit loaded by that
// name, and reports whether it came to that; it gives up when the unit
// runs again.
func (c *Conn) collected(ctx context.Context, unit string, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		if st, err := c.stringProperty(ctx, unit, "LoadState"); err == nil && st == "not-found" {
			return true
		}
		if st, err := c.UnitState(ctx, unit); err == nil && (st == "active" || st == "activating" || st == "reloading") {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ProxyError is a workload that runs without some of its [::1] port
// proxies (see StartTransient).
type ProxyError struct {
	Unit string
	Err  error
}

func (e *ProxyError) Error() string {
	return fmt.Sprintf("%s runs, but not all its ports answer on ::1: %v", e.Unit, e.Err)
}

func (e *ProxyError) Unwrap() error { return e.Err }

// prop builds a D-Bus property.
func prop(name string, v any) sd.Property {
	return sd.Property{Name: name, Value: dbus.MakeVariant(v)}
}

// Runs returns what network.Holders asks (network.Live): whether
// workload's unit still runs as run (an invocation ID as $INVOCATION_ID
// spells it: its current one, and the unit is not inactive or failed),
// or, for run "", whether it runs at all. A unit systemd does not have
// runs as nothing.
func (c *Conn) Runs(ctx context.Context) func(workload, run string) (bool, error) {
	return func(workload, run string) (bool, error) {
		unit := spec.UnitName(workload) // one systemd has not: a stub, inactive
		active, err := c.UnitState(ctx, unit)
		switch {
		case err != nil:
			return false, err
		case active == "inactive" || active == "failed":
			return false, nil
		case run == "":
			return true, nil
		}
		id, err := c.InvocationID(ctx, unit)
		return id == run, err
	}
}

// LazyRuns is Runs over a connection to systemd made when first asked
// (most callers never ask: only about another workload that holds a port
// or an address wanted) and closed by done. Each question is bounded by
// runsWait.
func LazyRuns() (runs func(workload, run string) (bool, error), done func()) {
	var conn *Conn
	runs = func(workload, run string) (bool, error) {
		if conn == nil {
			// godbus closes a connection when the context it was made
			// with ends: this one lasts until done, each question is bounded.
			c, err := Connect(context.Background())
			if err != nil {
				return false, err
			}
			conn = c
		}
		ctx, cancel := context.WithTimeout(context.Background(), runsWait)
		defer cancel()
		return conn.Runs(ctx)(workload, run)
	}
	return runs, func() {
		if conn != nil {
			conn.Close()
		}
	}
}

// runsWait bounds each question LazyRuns asks of systemd.
const runsWait = 5 * time.Second

// invocation returns the unit's current invocation ID, or "" if unknown.
func (c *Conn) invocation(ctx context.Context, unit string) string {
	id, _ := c.InvocationID(ctx, unit)
	return id
}

// InvocationID reads the unit's current invocation ID, as
// $INVOCATION_ID spells it ("" for none).
func (c *Conn) InvocationID(ctx context.Context, unit string) (string, error) {
	p, err := c.sd.GetUnitPropertyContext(ctx, unit, "InvocationID")
	if err != nil {
		return "", fmt.Errorf("invocation of %s: D-Bus GetUnitProperty: %w", unit, err)
	}
	id, _ := p.Value.Value().([]byte)
	return fmt.Sprintf("%x", id), nil
}

// Exit is how a unit's main process ended.
type Exit struct {
	Result string // systemd's Result: success, exit-code, signal, timeout…
	Code   int    // exit status, or 128+signal when killed
}

// UnitWatch follows one unit in the PropertiesChanged signals systemd
// sends for it: the Unit interface's ActiveState and SubState, and the
// Service interface's Result, ExecMainCode and ExecMainStatus. systemd
// sends a unit's signals to the system bus while a client holds a
// reference on the unit (StartTransient's AddRef) or has subscribed, and
// sends the Service interface's before the Unit interface's of one
// change ("the clients may rely on this order", src/core/dbus-unit.c):
// when the Unit interface's signal says the unit has ended, the exit last
// seen is its final one.
type UnitWatch struct {
	conn  *Conn
	unit  string
	path  dbus.ObjectPath
	sigs  chan *dbus.Signal
	st    unitState
	known bool // st came from a signal
	exit  Exit
	exits bool // exit came from a signal
}

// WatchUnit starts following unit, which must be one the connection holds
// (or will hold, from its creation) a reference on. Called before
// StartTransient, it sees every change, so that Exit asks systemd nothing
// when the unit ends. Close ends the watch.
func (c *Conn) WatchUnit(unit string) (*UnitWatch, error) {
	w := &UnitWatch{conn: c, unit: unit, sigs: make(chan *dbus.Signal, 32),
		path: dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + sd.PathBusEscape(unit))}
	c.sig.Signal(w.sigs)
	if err := c.sig.AddMatchSignal(dbus.WithMatchObjectPath(w.path),
		dbus.WithMatchInterface("org.freedesktop.DBus.Properties"), dbus.WithMatchMember("PropertiesChanged")); err != nil {
		c.sig.RemoveSignal(w.sigs)
		return nil, fmt.Errorf("watch %s: %w", unit, err)
	}
	return w, nil
}

// Close stops delivering the unit's signals to the watch (the match
// goes with the connection).
func (w *UnitWatch) Close() { w.conn.sig.RemoveSignal(w.sigs) }

// Exit waits until the unit is inactive or failed (it no longer runs and
// will not be restarted), or active with its main process exited
// (RemainAfterExit), and returns how its main process ended. The unit
// must still be loaded. It asks systemd for the state only when no signal
// has told it yet, and for the exit only when the signals have not.
func (w *UnitWatch) Exit(ctx context.Context) (Exit, error) {
	w.drain()
	if !w.known {
		st, err := w.conn.unitState(ctx, w.unit)
		if err != nil {
			return Exit{}, err
		}
		w.st, w.known, w.exits = st, true, false // an exit seen before may not be the last
	}
	for !w.st.ended() {
		select {
		case s, ok := <-w.sigs:
			if !ok || s == nil { // the connection closed (the caller detached, say)
				return Exit{}, fmt.Errorf("wait for %s: the connection to systemd closed", w.unit)
			}
			w.see(s)
		case <-ctx.Done():
			return Exit{}, fmt.Errorf("wait for %s: %w", w.unit, ctx.Err())
		}
	}
	if w.exits {
		return w.exit, nil
	}
	props, err := w.conn.sd.GetUnitTypePropertiesContext(ctx, w.unit, "Service")
	if err != nil {
		return Exit{}, notFound("wait for", w.unit, err)
	}
	return exitOf(props), nil
}

// drain applies the signals already delivered.
func (w *UnitWatch) drain() {
	for {
		select {
		case s, ok := <-w.sigs:
			if !ok || s == nil {
				return
			}
			w.see(s)
		default:
			return
		}
	}
}

// see applies one of the unit's signals. The match of a watch made before
// its unit is on the unit's object path, which an earlier unit of the name
// had too: a signal of that one's end may still arrive, and so may one of
// the new unit before its start. So an end counts only once the watch has
// seen the unit not ended (its start).
func (w *UnitWatch) see(s *dbus.Signal) {
	if s.Path != w.path {
		return
	}
	if e, ok := exitFrom(s); ok {
		w.exit, w.exits = e, true
	}
	if st, ok := w.st.from(s); ok && (w.known || !st.ended()) {
		w.st, w.known = st, true
	}
}

// unitState is a unit's ActiveState and SubState.
type unitState struct{ active, sub string }

// unitState asks systemd for unit's state.
func (c *Conn) unitState(ctx context.Context, unit string) (unitState, error) {
	active, err := c.sd.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return unitState{}, notFound("wait for", unit, err)
	}
	sub, err := c.sd.GetUnitPropertyContext(ctx, unit, "SubState")
	if err != nil {
		return unitState{}, notFound("wait for", unit, err)
	}
	a, _ := active.Value.Value().(string)
	b, _ := sub.Value.Value().(string)
	return unitState{a, b}, nil
}

// ended reports whether the main process has ended for good: the unit is
// inactive or failed, or, kept loaded by RemainAfterExit (cove run
// without --rm), active with its main process exited.
func (st unitState) ended() bool {
	return st.active == "inactive" || st.active == "failed" || st.active == "active" && st.sub == "exited"
}

// from is st updated by a PropertiesChanged signal s of the Unit
// interface, which carries ActiveState and SubState; ok is false for other
// interfaces' signals and malformed ones.
func (st unitState) from(s *dbus.Signal) (next unitState, ok bool) {
	changed, ok := changedProps(s, "org.freedesktop.systemd1.Unit")
	if !ok {
		return st, false
	}
	if v, ok := changed["ActiveState"].Value().(string); ok {
		st.active = v
	}
	if v, ok := changed["SubState"].Value().(string); ok {
		st.sub = v
	}
	return st, true
}

// exitFrom is the exit a PropertiesChanged signal s of the Service
// interface carries (Result, ExecMainCode, ExecMainStatus); ok is false
// when s is another interface's or lacks one of them.
func exitFrom(s *dbus.Signal) (Exit, bool) {
	changed, ok := changedProps(s, "org.freedesktop.systemd1.Service")
	if !ok {
		return Exit{}, false
	}
	props := map[string]any{}
	for _, name := range []string{"Result", "ExecMainCode", "ExecMainStatus"} {
		v, ok := changed[name]
		if !ok {
			return Exit{}, false
		}
		props[name] = v.Value()
	}
	return exitOf(props), true
}

// changedProps are the changed properties a PropertiesChanged signal s
// carries for iface; ok is false for another interface's or a malformed
// signal.
func changedProps(s *dbus.Signal, iface string) (map[string]dbus.Variant, bool) {
	if len(s.Body) < 2 {
		return nil, false
	}
	if name, _ := s.Body[0].(string); name != iface {
		return nil, false
	}
	changed, ok := s.Body[1].(map[string]dbus.Variant)
	return changed, ok
}

// exitOf reads Result, ExecMainCode and ExecMainStatus.
func exitOf(props map[string]any) Exit {
	e := Exit{}
	e.Result, _ = props["Result"].(string)
	code, _ := props["ExecMainCode"].(int32)
	status, _ := props["ExecMainStatus"].(int32)
	switch code {
	case 1: // CLD_EXITED
		e.Code = int(status)
	case 2, 3: // CLD_KILLED, CLD_DUMPED
		e.Code = 128 + int(status)
	}
	return e
}

// StartPair creates a transient trigger (a timer or a socket) together
// with the transient service it starts (systemd-run --on-active or
// --socket-property style) and starts the trigger.
func (c *Conn) StartPair(ctx context.Context, trigger, svc units.Unit) error {
	aux := []sd.PropertyCollection{{Name: svc.Name, Properties: transientProps(svc)}}
	ch := make(chan string, 1)
	if _, err := c.sd.StartTransientUnitAux(ctx, trigger.Name, "fail", transientProps(trigger), aux, ch); err != nil {
		return fmt.Errorf("start %s: %w", trigger.Name, err)
	}
	return waitJob(ctx, "start", trigger.Name, ch)
}

// transientProps wraps u's properties in the variants StartTransientUnit
// takes.
func transientProps(u units.Unit) []sd.Property {
	props := make([]sd.Property, 0, len(u.Props))
	for _, p := range u.Properties() {
		props = append(props, prop(p.Name, p.Value))
	}
	return props
}
