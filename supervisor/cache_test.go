package supervisor

import (
	"testing"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

const webPath = dbus.ObjectPath(unitPathPrefix + "web_2eservice")

// running is what ListUnits says of a running cove-web.service.
var running = sd.UnitStatus{Name: "cove-web.service", LoadState: "loaded", ActiveState: "active", SubState: "running", Path: webPath}

// Signals systemd sends.
var (
	webChanged   = &dbus.Signal{Name: "org.freedesktop.DBus.Properties.PropertiesChanged", Path: webPath}
	otherChanged = &dbus.Signal{Name: "org.freedesktop.DBus.Properties.PropertiesChanged", Path: "/org/freedesktop/systemd1/unit/sshd_2eservice"}
	webRemoved   = &dbus.Signal{Name: "org.freedesktop.systemd1.Manager.UnitRemoved", Body: []any{"cove-web.service", webPath}}
	reloading    = &dbus.Signal{Name: "org.freedesktop.systemd1.Manager.Reloading", Body: []any{true}}
	newOwner     = &dbus.Signal{Name: "org.freedesktop.DBus.NameOwnerChanged", Body: []any{"org.freedesktop.systemd1", ":1.1", ":1.9"}}
)

// fetchThenLookup stores facts of running the way Conn.workload does, with
// signals during arriving between the stamp and the store and after
// arriving after it, then looks u up.
func fetchThenLookup(t *testing.T, k *cache, u sd.UnitStatus, during, after []*dbus.Signal) bool {
	t.Helper()
	st := k.stampOf(running.Path)
	for _, s := range during {
		k.see(s)
	}
	k.store(running, st, facts{kind: "container", mainPID: 42})
	for _, s := range after {
		k.see(s)
	}
	f, ok := k.lookup(u)
	if ok && f.mainPID != 42 {
		t.Fatalf("lookup: facts %+v, want those stored", f)
	}
	return ok
}

func TestCacheInvalidation(t *testing.T) {
	stopping := running
	stopping.SubState = "stop-sigterm"
	for _, tc := range []struct {
		name          string
		u             sd.UnitStatus
		during, after []*dbus.Signal
		hit           bool
	}{
		{"unchanged", running, nil, nil, true},
		{"another unit changed", running, []*dbus.Signal{otherChanged}, []*dbus.Signal{otherChanged}, true},
		{"changed while fetching", running, []*dbus.Signal{webChanged}, nil, false},
		{"changed since", running, nil, []*dbus.Signal{webChanged}, false},
		{"unit removed", running, nil, []*dbus.Signal{webRemoved}, false},
		{"removed while fetching", running, []*dbus.Signal{webRemoved}, nil, false},
		{"reload", running, nil, []*dbus.Signal{reloading}, false},
		{"systemd replaced", running, nil, []*dbus.Signal{newOwner}, false},
		{"other sub state", stopping, nil, nil, false},
		{"job queued", withJob(running), nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newCache()
			k.start(k.owner())
			if got := fetchThenLookup(t, k, tc.u, tc.during, tc.after); got != tc.hit {
				t.Errorf("cache hit = %v, want %v", got, tc.hit)
			}
		})
	}
}

func TestCacheKeepsOnlyTrustedFacts(t *testing.T) {
	k := newCache()
	if fetchThenLookup(t, k, running, nil, nil) {
		t.Error("a cache that was never started answered")
	}
	k.start(k.owner())
	if _, ok := k.lookup(running); ok {
		t.Error("facts fetched before the start were kept")
	}
	k.store(withJob(running), k.stampOf(running.Path), facts{kind: "container"})
	if _, ok := k.lookup(running); ok {
		t.Error("facts of a unit with a job were kept")
	}
	k.see(newOwner)
	if !k.lostSubscription() || fetchThenLookup(t, k, running, nil, nil) {
		t.Error("the cache answered after systemd was replaced, or does not ask to subscribe again")
	}
	owner := k.owner()
	k.see(newOwner) // while subscribing again
	k.start(owner)
	if !k.lostSubscription() || fetchThenLookup(t, k, running, nil, nil) {
		t.Error("the cache started on a subscription made before systemd was replaced")
	}
	k.start(k.owner()) // subscribed again
	if k.lostSubscription() || !fetchThenLookup(t, k, running, nil, nil) {
		t.Error("the cache stayed off after subscribing again")
	}
}

// withJob returns u with a job queued.
func withJob(u sd.UnitStatus) sd.UnitStatus {
	u.JobId = 1
	return u
}

// TestCacheUnitList: the list of cove's units is repeated while no
// signal touched a cove unit (during the ListUnits call or since), no
// reload happened and systemd is the same; never from a cache that was
// not started, nor a list in which a unit had a job.
func TestCacheUnitList(t *testing.T) {
	webNew := &dbus.Signal{Name: "org.freedesktop.systemd1.Manager.UnitNew", Body: []any{"cove-web.service", webPath}}
	for _, tc := range []struct {
		name          string
		units         []sd.UnitStatus
		during, after []*dbus.Signal
		hit           bool
	}{
		{"unchanged", []sd.UnitStatus{running}, nil, nil, true},
		{"none at all", nil, nil, nil, true},
		{"another unit changed", []sd.UnitStatus{running}, []*dbus.Signal{otherChanged}, []*dbus.Signal{otherChanged}, true},
		{"changed while listing", []sd.UnitStatus{running}, []*dbus.Signal{webChanged}, nil, false},
		{"changed since", []sd.UnitStatus{running}, nil, []*dbus.Signal{webChanged}, false},
		{"a unit new since", nil, nil, []*dbus.Signal{webNew}, false},
		{"unit removed", []sd.UnitStatus{running}, nil, []*dbus.Signal{webRemoved}, false},
		{"reload", []sd.UnitStatus{running}, nil, []*dbus.Signal{reloading}, false},
		{"systemd replaced", []sd.UnitStatus{running}, nil, []*dbus.Signal{newOwner}, false},
		{"job queued", []sd.UnitStatus{running, withJob(running)}, nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newCache()
			k.start(k.owner())
			st := k.listStamp()
			for _, s := range tc.during {
				k.see(s)
			}
			k.storeUnits(st, tc.units)
			for _, s := range tc.after {
				k.see(s)
			}
			us, ok := k.unitsNow()
			if ok != tc.hit || ok && len(us) != len(tc.units) {
				t.Errorf("list repeated = %v (%d units), want %v (%d)", ok, len(us), tc.hit, len(tc.units))
			}
		})
	}
	k := newCache()
	k.storeUnits(k.listStamp(), []sd.UnitStatus{running})
	k.start(k.owner())
	if _, ok := k.unitsNow(); ok {
		t.Error("a list made before the cache started was repeated")
	}
}
