package units

import (
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
