package supervisor

import (
	"testing"

	"github.com/godbus/dbus/v5"
)

// TestUnitStateFromSignals: WaitExit follows ActiveState and SubState in
// the Unit interface's PropertiesChanged signals; other interfaces'
// signals and malformed bodies change nothing; a unit has ended when
// inactive, failed, or active with its main process exited.
func TestUnitStateFromSignals(t *testing.T) {
	sig := func(iface string, changed map[string]dbus.Variant) *dbus.Signal {
		return &dbus.Signal{Body: []any{iface, changed, []string{}}}
	}
	st := unitState{"active", "running"}
	for _, step := range []struct {
		s     *dbus.Signal
		want  unitState
		ended bool
	}{
		{sig("org.freedesktop.systemd1.Service", map[string]dbus.Variant{"SubState": dbus.MakeVariant("dead")}), unitState{"active", "running"}, false},
		{&dbus.Signal{Body: []any{"org.freedesktop.systemd1.Unit"}}, unitState{"active", "running"}, false},
		{sig("org.freedesktop.systemd1.Unit", map[string]dbus.Variant{"ActiveState": dbus.MakeVariant("deactivating"), "SubState": dbus.MakeVariant("stop")}), unitState{"deactivating", "stop"}, false},
		{sig("org.freedesktop.systemd1.Unit", map[string]dbus.Variant{"ActiveState": dbus.MakeVariant("inactive"), "SubState": dbus.MakeVariant("dead")}), unitState{"inactive", "dead"}, true},
	} {
		st = st.with(step.s)
		if st != step.want || st.ended() != step.ended {
			t.Errorf("after %v: %+v (ended %v), want %+v (ended %v)", step.s.Body, st, st.ended(), step.want, step.ended)
		}
	}
	for _, end := range []unitState{{"failed", "failed"}, {"active", "exited"}} {
		if !end.ended() {
			t.Errorf("%+v has not ended", end)
		}
	}
}
