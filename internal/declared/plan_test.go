package declared

import (
	"reflect"
	"testing"
	"time"

	"github.com/cove-project/cove/spec"
)

// TestCompare checks added, changed (with keys), removed and unchanged.
func TestCompare(t *testing.T) {
	mk := func(name string, mem uint64) *spec.Spec {
		s := spec.Defaults(name)
		s.Container.Rootfs, s.Container.Command = "/r", []string{"/bin/true"}
		s.Resources.Memory = mem
		return s
	}
	same, changed := mk("same", 1<<20), mk("changed", 1<<20)
	changed2 := mk("changed", 2<<20)
	changed2.Service.RestartDelay = 3 * time.Second
	changed2.File = "/elsewhere.toml" // where it came from is not a change
	applied := map[string]*spec.Spec{"same": same, "changed": changed, "gone": mk("gone", 0)}
	p := Compare(applied, []*spec.Spec{mk("same", 1<<20), changed2, mk("new", 0)})
	got := map[string]Change{}
	for _, c := range p {
		got[c.Name] = c
	}
	want := map[string]string{"same": Unchanged, "changed": Changed, "gone": Removed, "new": Added}
	for name, kind := range want {
		if got[name].Kind != kind {
			t.Errorf("%s: %s, want %s", name, got[name].Kind, kind)
		}
	}
	if keys := got["changed"].Keys; !reflect.DeepEqual(keys, []string{"resources.memory", "service.restart_delay"}) {
		t.Errorf("changed keys = %v", keys)
	}
	if p[0].Name != "changed" || p[len(p)-1].Name != "same" {
		t.Errorf("plan not sorted: %v", p)
	}
}

// TestDiffKeysNames: changed keys are named as in a spec file.
func TestDiffKeysNames(t *testing.T) {
	a := spec.Defaults("web")
	b := spec.Defaults("web")
	b.Container.Mounts = []spec.Mount{{Type: spec.MountTmpfs, Target: "/tmp"}}
	b.Container.ReadOnly = true
	b.Container.User = spec.User{UID: 1000, GID: 1000}
	b.Security.AllowNewPrivileges = true
	b.Service.Ready, b.Service.ReadyPort = spec.ReadyTCP, 80
	want := []string{"container.user", "container.read_only", "container.mount", "service.ready", "security.no_new_privileges"}
	if got := DiffKeys(a, b); !reflect.DeepEqual(got, want) {
		t.Errorf("DiffKeys = %q, want %q", got, want)
	}
}

func TestNeedsRestart(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want bool
	}{
		{[]string{"resources.memory", "resources.cpus"}, false},
		{[]string{"install.wanted_by", "description"}, false},
		{[]string{"resources.memory", "container.command"}, true},
		{[]string{"service.restart"}, true},
		{[]string{"resources_x"}, true},
		{[]string{"descriptions"}, true},
	} {
		if got := needsRestart(tc.keys); got != tc.want {
			t.Errorf("needsRestart(%q) = %v, want %v", tc.keys, got, tc.want)
		}
	}
}
