package supervisor

import (
	"context"
	"testing"

	"github.com/godbus/dbus/v5"
)

// changed is a PropertiesChanged signal of iface on path.
func changed(path dbus.ObjectPath, iface string, props map[string]any) *dbus.Signal {
	m := map[string]dbus.Variant{}
	for k, v := range props {
		m[k] = dbus.MakeVariant(v)
	}
	return &dbus.Signal{Path: path, Body: []any{iface, m, []string{}}}
}

const (
	unitIface    = "org.freedesktop.systemd1.Unit"
	serviceIface = "org.freedesktop.systemd1.Service"
)

// TestUnitStateFromSignals: a watch follows ActiveState and SubState in
// the Unit interface's PropertiesChanged signals; other interfaces'
// signals and malformed bodies change nothing; a unit has ended when
// inactive, failed, or active with its main process exited.
func TestUnitStateFromSignals(t *testing.T) {
	st := unitState{"active", "running"}
	for _, step := range []struct {
		s     *dbus.Signal
		want  unitState
		ok    bool
		ended bool
	}{
		{changed("", serviceIface, map[string]any{"SubState": "dead"}), unitState{"active", "running"}, false, false},
		{&dbus.Signal{Body: []any{unitIface}}, unitState{"active", "running"}, false, false},
		{changed("", unitIface, map[string]any{"ActiveState": "deactivating", "SubState": "stop"}), unitState{"deactivating", "stop"}, true, false},
		{changed("", unitIface, map[string]any{"ActiveState": "inactive", "SubState": "dead"}), unitState{"inactive", "dead"}, true, true},
	} {
		next, ok := st.from(step.s)
		if next != step.want || ok != step.ok || next.ended() != step.ended {
			t.Errorf("after %v: %+v (ok %v, ended %v), want %+v (ok %v, ended %v)", step.s.Body, next, ok, next.ended(), step.want, step.ok, step.ended)
		}
		st = next
	}
	for _, end := range []unitState{{"failed", "failed"}, {"active", "exited"}} {
		if !end.ended() {
			t.Errorf("%+v has not ended", end)
		}
	}
}

// TestExitFromSignals: the Service interface's signal carries the exit
// (an exit status as it is, a signal as 128+N); one that lacks a field,
// or another interface's, carries none.
func TestExitFromSignals(t *testing.T) {
	for _, c := range []struct {
		s    *dbus.Signal
		want Exit
		ok   bool
	}{
		{changed("", serviceIface, map[string]any{"Result": "exit-code", "ExecMainCode": int32(1), "ExecMainStatus": int32(3)}), Exit{"exit-code", 3}, true},
		{changed("", serviceIface, map[string]any{"Result": "success", "ExecMainCode": int32(2), "ExecMainStatus": int32(9)}), Exit{"success", 137}, true},
		{changed("", serviceIface, map[string]any{"Result": "success", "ExecMainCode": int32(1)}), Exit{}, false},
		{changed("", unitIface, map[string]any{"Result": "success", "ExecMainCode": int32(1), "ExecMainStatus": int32(0)}), Exit{}, false},
	} {
		if got, ok := exitFrom(c.s); got != c.want || ok != c.ok {
			t.Errorf("%v: %+v (ok %v), want %+v (ok %v)", c.s.Body, got, ok, c.want, c.ok)
		}
	}
}

// TestWatchExitFromSignals: once a watch has the unit's signals up to its
// end, Exit answers from them, asking systemd nothing (the watch has no
// connection here); signals of other units are not its, and an end
// before the unit was seen started (an earlier unit's of the name, or the
// new one's before its start) is not its end.
func TestWatchExitFromSignals(t *testing.T) {
	path := dbus.ObjectPath("/org/freedesktop/systemd1/unit/cove_2drun_2eservice")
	w := &UnitWatch{unit: "cove-run.service", path: path, sigs: make(chan *dbus.Signal, 16)}
	w.sigs <- changed(path, serviceIface, map[string]any{"Result": "success", "ExecMainCode": int32(1), "ExecMainStatus": int32(0)})
	w.sigs <- changed(path, unitIface, map[string]any{"ActiveState": "inactive", "SubState": "dead"})
	if w.drain(); w.known {
		t.Fatalf("an end before the start counts: %+v", w.st)
	}
	for _, s := range []*dbus.Signal{
		changed(path, serviceIface, map[string]any{"Result": "success", "ExecMainCode": int32(0), "ExecMainStatus": int32(0)}),
		changed(path, unitIface, map[string]any{"ActiveState": "active", "SubState": "running"}),
		changed(path, serviceIface, map[string]any{"Result": "exit-code", "ExecMainCode": int32(1), "ExecMainStatus": int32(4)}),
		changed("/org/freedesktop/systemd1/unit/other_2eservice", serviceIface, map[string]any{"Result": "success", "ExecMainCode": int32(1), "ExecMainStatus": int32(0)}),
		changed(path, unitIface, map[string]any{"ActiveState": "failed", "SubState": "failed"}),
	} {
		w.sigs <- s
	}
	got, err := w.Exit(context.Background())
	if err != nil || got != (Exit{"exit-code", 4}) {
		t.Fatalf("Exit: %+v, %v; want exit-code 4", got, err)
	}
}
