package cli

import (
	"slices"
	"testing"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/units"
)

// launcherUnit is a container's unit whose launcher runs c.
func launcherUnit(c launch.Config) units.Unit {
	exec := units.Exec(append([]string{"/usr/bin/cove", launch.LaunchVerb}, c.Args()...))
	return units.Unit{Name: "cove-box.service", Props: []units.Prop{{Section: units.SectionService, DBus: "ExecStart", Value: exec}}}
}

// launched reads back the launcher configuration and the properties of u.
func launched(t *testing.T, u units.Unit) (launch.Config, map[string]any) {
	t.Helper()
	props := map[string]any{}
	var c launch.Config
	for _, p := range u.Props {
		props[p.DBus] = p.Value
		if exec, ok := p.Value.(units.Exec); ok && p.DBus == "ExecStart" {
			var err error
			if c, err = launch.ParseArgs(exec[2:]); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c, props
}

// TestTTYUnit: cove run -t's unit gives the payload a terminal (the
// launcher's --console), the user's TERM unless the spec sets one, and a
// file descriptor store that keeps the terminal across a detach.
func TestTTYUnit(t *testing.T) {
	t.Setenv("TERM", "xterm-test")
	base := launch.Config{Name: "box", Rootfs: "/srv/box", Argv: []string{"/bin/sh"}, Env: []string{"A=1"}}
	u, err := ttyUnit(launcherUnit(base))
	if err != nil {
		t.Fatal(err)
	}
	c, props := launched(t, u)
	if !c.Console || !slices.Equal(slices.Sorted(slices.Values(c.Env)), []string{"A=1", "TERM=xterm-test"}) || !slices.Equal(c.Argv, base.Argv) {
		t.Errorf("launcher config: console %v, env %q, argv %q", c.Console, c.Env, c.Argv)
	}
	if props["FileDescriptorStoreMax"] != units.Uint32(1) {
		t.Errorf("FileDescriptorStoreMax = %v, want 1", props["FileDescriptorStoreMax"])
	}

	base.Env = []string{"TERM=dumb"}
	if u, err = ttyUnit(launcherUnit(base)); err != nil {
		t.Fatal(err)
	}
	if c, _ := launched(t, u); !slices.Equal(c.Env, []string{"TERM=dumb"}) {
		t.Errorf("the spec's TERM is replaced: %q", c.Env)
	}

	vm := units.Unit{Name: "cove-vm.service", Props: []units.Prop{{Section: units.SectionService, DBus: "ExecStart", Value: units.Exec{"/usr/bin/cove", launch.VMLaunchVerb}}}}
	if _, err := ttyUnit(vm); err == nil {
		t.Error("a VM got a terminal")
	}
}
