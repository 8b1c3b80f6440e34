package supervisor

import (
	"slices"
	"strings"
	"sync"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// A cache keeps, for a long-lived Conn (the API helper), what each cove
// unit's service properties said, so that listing unchanged workloads
// costs one ListUnits call instead of one property dump per workload,
// and the last list of cove's units, so that a list while nothing changed
// costs a Ping instead (at 1000 units ListUnits takes systemd about 10
// ms; Conn.coveUnits).
//
// Entries are invalidated by systemd's own change signals, which the
// connection's reader hands to the cache synchronously (signalTap): a
// signal that systemd sent before the reply to a ListUnits call (or a
// Ping) on the same connection has been seen by the time that call
// returns. systemd sends a change's signals before it handles the next
// call, except while its bus queue is congested (over 1024 messages),
// when it holds signals back but still answers. An entry is used only if
// no signal touched its unit since it was fetched, no reload happened,
// the unit has no job queued and the list of units (ListUnits' answer, or
// the last one repeated) shows the same active and sub state as at the
// fetch. (The memory and task counters, which systemd does not signal,
// are no facts: see facts.counters.)
type cache struct {
	mu   sync.Mutex
	on   bool // signals are subscribed: entries may be used
	lost bool // systemd's bus name changed owner: subscribe again
	// owners counts the changes of systemd's bus name owner: a
	// subscription made before the last one may be gone.
	owners uint64
	epoch  uint64 // bumped by a reload or a new systemd: every entry is stale
	// gens holds, for each unit a signal touched, a number from seq that
	// changes with every such signal (0: none since the start); entries
	// were fetched at one of them.
	seq     uint64
	gens    map[dbus.ObjectPath]uint64
	entries map[dbus.ObjectPath]entry
	units   unitList // the last list of cove's units
	stats   CacheStats
}

// unitList is a list of cove's units as ListUnitsByPatterns answered it
// at (epoch, seq): still systemd's answer while no signal touched a cove
// unit, no reload happened and systemd is the same. A list in which a
// unit had a job queued is not kept: the job changes the unit soon, and a
// busy systemd may hold the signals of that change back (see above).
type unitList struct {
	set        bool
	epoch, seq uint64
	units      []sd.UnitStatus
}

// CacheStats count how a watching Conn answered workloads.
type CacheStats struct {
	Hits     uint64 // from the cache
	Fetches  uint64 // from systemd
	ListHits uint64 // lists of cove's units repeated from the cache, not asked of systemd
}

// entry is a unit's facts as fetched at (epoch, gen).
type entry struct {
	facts
	epoch, gen            uint64
	activeState, substate string
}

// stamp is the cache's state for one unit when a fetch starts.
type stamp struct {
	on         bool
	epoch, gen uint64
}

// unitPathPrefix starts the D-Bus object path of every cove unit
// ("cove-" escaped).
const unitPathPrefix = "/org/freedesktop/systemd1/unit/cove_2d"

// newCache returns a cache that is off until watching starts.
func newCache() *cache {
	return &cache{gens: map[dbus.ObjectPath]uint64{}, entries: map[dbus.ObjectPath]entry{}}
}

// see invalidates what signal s may have changed. It runs on the
// connection's reader, so it must not block.
func (k *cache) see(s *dbus.Signal) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch s.Name {
	case "org.freedesktop.DBus.Properties.PropertiesChanged":
		k.touch(s.Path)
	case "org.freedesktop.systemd1.Manager.UnitNew":
		if p, ok := unitPath(s); ok {
			k.touch(p)
		}
	case "org.freedesktop.systemd1.Manager.UnitRemoved":
		if p, ok := unitPath(s); ok {
			k.touch(p)
			delete(k.entries, p) // gens keeps the path: a fetch in flight must not match
		}
	case "org.freedesktop.systemd1.Manager.Reloading":
		k.epoch++
	case "org.freedesktop.DBus.NameOwnerChanged":
		// systemd re-executed or went away: our subscription may be gone
		// with it. Nothing is trusted until the connection subscribes again
		// (Conn.listUnits, via resubscribe).
		k.epoch++
		k.owners++
		k.on, k.lost = false, true
	}
}

// owner returns the count of owner changes, to pass to start after
// subscribing.
func (k *cache) owner() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.owners
}

// touch marks cove unit path changed.
func (k *cache) touch(path dbus.ObjectPath) {
	if strings.HasPrefix(string(path), unitPathPrefix) {
		k.seq++
		k.gens[path] = k.seq
	}
}

// unitPath is the unit object path of a UnitNew or UnitRemoved signal.
func unitPath(s *dbus.Signal) (dbus.ObjectPath, bool) {
	if len(s.Body) != 2 {
		return "", false
	}
	p, ok := s.Body[1].(dbus.ObjectPath)
	return p, ok
}

// lostSubscription reports whether systemd changed owner since the cache
// was started, so that signals must be subscribed again.
func (k *cache) lostSubscription() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lost
}

// start turns the cache on once signals are subscribed, unless systemd's
// owner changed since owner was read before subscribing (the subscription
// may have gone with the old one).
func (k *cache) start(owner uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.owners == owner {
		k.on, k.lost = true, false
	}
}

// stampOf returns the state to fetch unit path's facts under.
func (k *cache) stampOf(path dbus.ObjectPath) stamp {
	k.mu.Lock()
	defer k.mu.Unlock()
	return stamp{on: k.on, epoch: k.epoch, gen: k.gens[path]}
}

// listStamp returns the state to list cove's units under: a stamp whose
// gen is the count of all cove unit signals so far.
func (k *cache) listStamp() stamp {
	k.mu.Lock()
	defer k.mu.Unlock()
	return stamp{on: k.on, epoch: k.epoch, gen: k.seq}
}

// storeUnits records us, cove's units as listed under st, unless the
// cache was off then or a unit had a job queued.
func (k *cache) storeUnits(st stamp, us []sd.UnitStatus) {
	if !st.on || slices.ContainsFunc(us, func(u sd.UnitStatus) bool { return u.JobId != 0 }) {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.units = unitList{set: true, epoch: st.epoch, seq: st.gen, units: us}
}

// hasUnits reports whether the cache is on and holds a list of cove's
// units (which unitsNow may return).
func (k *cache) hasUnits() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.on && k.units.set
}

// unitsNow returns the last stored list of cove's units if it is still
// what systemd would answer: no cove unit signal, reload or new systemd
// since it was listed. The caller must not change it.
func (k *cache) unitsNow() ([]sd.UnitStatus, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.units
	ok := l.set && k.on && l.epoch == k.epoch && l.seq == k.seq
	if ok {
		k.stats.ListHits++
	}
	return l.units, ok
}

// store records facts fetched under st for unit u, unless the cache was
// off then or u has a job queued (its state is about to change).
func (k *cache) store(u sd.UnitStatus, st stamp, f facts) {
	if !st.on || u.JobId != 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.entries[u.Path] = entry{facts: f, epoch: st.epoch, gen: st.gen, activeState: u.ActiveState, substate: u.SubState}
}

// lookup returns u's cached facts if they are still what systemd would
// say.
func (k *cache) lookup(u sd.UnitStatus) (facts, bool) {
	k.mu.Lock()
	e, ok := k.entries[u.Path]
	ok = ok && k.on && e.epoch == k.epoch && e.gen == k.gens[u.Path] &&
		u.JobId == 0 && e.activeState == u.ActiveState && e.substate == u.SubState
	if ok {
		k.stats.Hits++
	} else {
		k.stats.Fetches++
	}
	k.mu.Unlock()
	return e.facts, ok
}

// signalTap hands every signal to see, on the connection's reader and so
// in order with method replies, then to the connection's usual handler
// (go-systemd's job and subscription channels).
type signalTap struct {
	see  func(*dbus.Signal)
	next interface {
		dbus.SignalHandler
		dbus.SignalRegistrar
		dbus.Terminator
	}
}

// newSignalTap returns a tap in front of godbus's sequential handler.
func newSignalTap(see func(*dbus.Signal)) *signalTap {
	next := dbus.NewSequentialSignalHandler().(interface {
		dbus.SignalHandler
		dbus.SignalRegistrar
		dbus.Terminator
	})
	return &signalTap{see: see, next: next}
}

// DeliverSignal implements dbus.SignalHandler.
func (t *signalTap) DeliverSignal(iface, name string, s *dbus.Signal) {
	t.see(s)
	t.next.DeliverSignal(iface, name, s)
}

// AddSignal implements dbus.SignalRegistrar.
func (t *signalTap) AddSignal(ch chan<- *dbus.Signal) { t.next.AddSignal(ch) }

// RemoveSignal implements dbus.SignalRegistrar.
func (t *signalTap) RemoveSignal(ch chan<- *dbus.Signal) { t.next.RemoveSignal(ch) }

// Terminate implements dbus.Terminator.
func (t *signalTap) Terminate() { t.next.Terminate() }

// counts returns the cache's statistics.
func (k *cache) counts() CacheStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stats
}
