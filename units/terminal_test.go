package units

import (
	"slices"
	"testing"

	"github.com/cove-project/cove/launch"
)

// launcherUnit is a container's unit whose launcher runs c, with props.
func launcherUnit(c launch.Config, props ...Prop) Unit {
	exec := Exec(append([]string{"/usr/bin/cove-launch", launch.LaunchVerb}, c.Args()...))
	return Unit{Name: "cove-box.service", Props: append([]Prop{{Section: SectionService, DBus: "ExecStart", Value: exec}}, props...)}
}

// launched reads back the launcher configuration and the properties of u.
func launched(t *testing.T, u Unit) (launch.Config, map[string]any) {
	t.Helper()
	props := map[string]any{}
	var c launch.Config
	for _, p := range u.Props {
		props[p.DBus] = p.Value
		if exec, ok := p.Value.(Exec); ok && p.DBus == "ExecStart" {
			var err error
			if c, err = launch.ParseArgs(exec[2:]); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c, props
}

// TestWithTerminal: a run with a terminal gives the payload one (the
// launcher's --console), the user's TERM unless the spec sets one, and the
// runtime directory of the terminal's relay socket, beside any other.
func TestWithTerminal(t *testing.T) {
	base := launch.Config{Name: "box", Rootfs: "/srv/box", Argv: []string{"/bin/sh"}, Env: []string{"A=1"}}
	u, err := WithTerminal(launcherUnit(base), "xterm-test")
	if err != nil {
		t.Fatal(err)
	}
	c, props := launched(t, u)
	if !c.Console || !slices.Equal(slices.Sorted(slices.Values(c.Env)), []string{"A=1", "TERM=xterm-test"}) || !slices.Equal(c.Argv, base.Argv) {
		t.Errorf("launcher config: console %v, env %q, argv %q", c.Console, c.Env, c.Argv)
	}
	if got := props["RuntimeDirectory"]; !slices.Equal(got.(List), List{"cove/terminal/box"}) {
		t.Errorf("RuntimeDirectory = %v, want the relay's cove/terminal/box", got)
	}

	base.Env = []string{"TERM=dumb"}
	ids := Prop{Section: SectionService, DBus: "RuntimeDirectory", Value: List{"cove/userns/box"}}
	if u, err = WithTerminal(launcherUnit(base, ids), "xterm"); err != nil {
		t.Fatal(err)
	}
	c, props = launched(t, u)
	if !slices.Equal(c.Env, []string{"TERM=dumb"}) {
		t.Errorf("the spec's TERM is replaced: %q", c.Env)
	}
	if got := props["RuntimeDirectory"]; !slices.Equal(got.(List), List{"cove/userns/box", "cove/terminal/box"}) {
		t.Errorf("RuntimeDirectory = %v, want the user namespace record's and the relay's", got)
	}

	vm := Unit{Name: "cove-vm.service", Props: []Prop{{Section: SectionService, DBus: "ExecStart", Value: Exec{"/usr/bin/cove", launch.VMLaunchVerb}}}}
	if _, err := WithTerminal(vm, "xterm"); err == nil {
		t.Error("a VM got a terminal")
	}
}
