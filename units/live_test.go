package units

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cove-project/cove/spec"
)

// TestLiveChange: a change of limits or description only is live (the
// new values of just those properties); a limit added or removed, or any
// other change, is not.
func TestLiveChange(t *testing.T) {
	base := func(edit func(s *spec.Spec)) Unit {
		s := spec.Defaults("web")
		s.Container.Rootfs = "/srv/rootfs"
		s.Container.Command = []string{"/bin/httpd", "-f"}
		s.Resources.Memory, s.Resources.CPUs = 64<<20, 0.5
		edit(s)
		return compile(t, s)
	}
	prev := base(func(*spec.Spec) {})
	for _, c := range []struct {
		name string
		edit func(s *spec.Spec)
		ok   bool
		want map[string]any
	}{
		{"same", func(*spec.Spec) {}, true, map[string]any{}},
		{"memory and cpus", func(s *spec.Spec) { s.Resources.Memory, s.Resources.CPUs = 128<<20, 2 }, true,
			map[string]any{"MemoryMax": uint64(128 << 20), "CPUQuotaPerSecUSec": uint64(2000000)}},
		{"description", func(s *spec.Spec) { s.Description = "the web" }, true, map[string]any{"Description": "cove container web: the web"}},
		{"a limit added", func(s *spec.Spec) { s.Resources.Pids = 100 }, false, nil},
		{"a limit removed", func(s *spec.Spec) { s.Resources.Memory = 0 }, false, nil},
		{"the command", func(s *spec.Spec) { s.Container.Command = []string{"/bin/httpd", "-v"} }, false, nil},
		{"a target", func(s *spec.Spec) { s.Install.WantedBy = []string{"multi-user.target"} }, false, nil},
	} {
		got, ok := LiveChange(prev, base(c.edit))
		if ok != c.ok {
			t.Errorf("%s: ok = %v, want %v (%+v)", c.name, ok, c.ok, got)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %+v, want %v", c.name, got, c.want)
		}
		for _, p := range got {
			if w, found := c.want[p.Name]; !found || w != p.Value {
				t.Errorf("%s: %s = %#v, want %#v", c.name, p.Name, p.Value, w)
			}
		}
	}
}

// TestLaunchFile: with Options.LaunchFile a container's ExecStart= sends
// the launcher to launch.ConfigFile, and the unit's LaunchArgs are the
// arguments the inline form has; a change of the command or environment
// then changes LaunchArgs alone (the unit stays the same: no reload), a
// change of the stop timeout the unit.
func TestLaunchFile(t *testing.T) {
	spec1 := func(edit func(s *spec.Spec)) *spec.Spec {
		s := spec.Defaults("web")
		s.Container.Rootfs = "/srv/rootfs"
		s.Container.Command = []string{"/bin/httpd", "-f"}
		edit(s)
		return s
	}
	fromFile := func(s *spec.Spec) Unit {
		t.Helper()
		opt := goldenOptions
		opt.LaunchFile = true
		u, err := Compile(s, opt)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	s := spec1(func(*spec.Spec) {})
	u, inline := fromFile(s), compile(t, s)
	want := `"/usr/bin/cove-launch" "launch" "--config-file" "/run/cove/launch/web.json"`
	if got := lastDirective(t, u, "ExecStart"); got != want {
		t.Errorf("ExecStart: %s\nwant %s", got, want)
	}
	if exec := lastDirective(t, inline, "ExecStart"); !strings.Contains(exec, strings.Join(quoted(u.LaunchArgs), " ")) || inline.LaunchArgs != nil {
		t.Errorf("LaunchArgs %q are not the inline unit's arguments: %s", u.LaunchArgs, exec)
	}
	for _, c := range []struct {
		name       string
		edit       func(s *spec.Spec)
		sameUnit   bool
		sameLaunch bool
	}{
		{"the command", func(s *spec.Spec) { s.Container.Command = []string{"/bin/httpd", "-v"} }, true, false},
		{"the environment", func(s *spec.Spec) { s.Container.Env = map[string]string{"A": "1"} }, true, false},
		{"the stop timeout", func(s *spec.Spec) { s.Service.StopTimeout *= 2 }, false, true},
	} {
		next := fromFile(spec1(c.edit))
		props, live := LiveChange(u, next)
		if sameUnit := live && len(props) == 0; sameUnit != c.sameUnit {
			t.Errorf("%s: the unit unchanged = %v, want %v", c.name, sameUnit, c.sameUnit)
		}
		if same := slices.Equal(u.LaunchArgs, next.LaunchArgs); same != c.sameLaunch {
			t.Errorf("%s: the launcher arguments unchanged = %v, want %v", c.name, same, c.sameLaunch)
		}
	}
}

// quoted are args as a unit file quotes them.
func quoted(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strconv.Quote(a)
	}
	return out
}

// TestLimitProperties: the limits a spec sets are the D-Bus values its
// compiled unit has (MemoryMax bytes, CPUQuotaPerSecUSec µs per second,
// TasksMax), and each limit it leaves unset is what a unit without it
// has (infinity; for TasksMax systemd's DefaultTasksMax, given), so that
// setting them lifts a limit set before.
func TestLimitProperties(t *testing.T) {
	got := LimitProperties(spec.Resources{Memory: 128 << 20, CPUs: 0.5}, 4915)
	want := []Property{{"MemoryMax", uint64(128 << 20)}, {"CPUQuotaPerSecUSec", uint64(500000)}, {"TasksMax", uint64(4915)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LimitProperties(128 MiB, 0.5 CPUs): %v, want %v", got, want)
	}
	s := spec.Defaults("lim")
	s.Container.Rootfs = "/srv/lim"
	s.Resources = spec.Resources{Memory: 128 << 20, CPUs: 0.5, Pids: 50}
	u, err := Compile(s, Options{Launcher: "/usr/bin/cove"})
	if err != nil {
		t.Fatal(err)
	}
	compiled := map[string]any{}
	for _, p := range u.Properties() {
		compiled[p.Name] = p.Value
	}
	for _, p := range LimitProperties(s.Resources, 4915) {
		if compiled[p.Name] != p.Value {
			t.Errorf("%s: LimitProperties %v, the compiled unit %v", p.Name, p.Value, compiled[p.Name])
		}
	}
}
