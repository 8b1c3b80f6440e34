package units

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cove-project/cove/launch"
)

// ErrNotContainer is returned by WithTerminal for a unit that does not
// launch a container.
var ErrNotContainer = errors.New("not a container")

// WithTerminal makes u, a container's transient unit from ForRun, give
// its payload a terminal over the console socket on its stdin (package
// tty): the launcher's --console (the payload's stdio and controlling
// terminal are a pty of the container, kept by its relay in the unit),
// term as TERM unless the payload's environment sets it ("": none), and
// the runtime directory of the relay's socket (launch.TerminalSocket),
// which systemd removes when the unit stops.
func WithTerminal(u Unit, term string) (Unit, error) {
	props := append([]Prop(nil), u.Props...)
	i := launcherStart(props)
	if i < 0 {
		return u, fmt.Errorf("give %s a terminal: %w", u.Name, ErrNotContainer)
	}
	cmd := props[i].Value.(Exec)
	c, err := launch.ParseArgs(cmd[2:])
	if err != nil {
		return u, fmt.Errorf("give %s a terminal: read the launcher's arguments: %w", u.Name, err)
	}
	flags := []string{"--console"}
	if env := launch.WithTerm(c.Env, term); len(env) > len(c.Env) {
		flags = append(flags, "--env", env[len(env)-1])
	}
	props[i].Value = withLaunchFlags(cmd, flags...)
	dir := launch.TerminalRuntimeDirectory(c.Name)
	if j := slices.IndexFunc(props, func(p Prop) bool { return p.DBus == "RuntimeDirectory" }); j >= 0 {
		props[j].Value = append(slices.Clone(props[j].Value.(List)), dir)
	} else {
		props = append(props, Prop{Section: SectionService, DBus: "RuntimeDirectory", Value: List{dir}})
	}
	u.Props = props
	return u, nil
}

// launcherStart is the index in props of a container's ExecStart= (the
// launcher's launch stage with its arguments), -1 if there is none (a VM).
func launcherStart(props []Prop) int {
	return slices.IndexFunc(props, func(p Prop) bool {
		cmd, ok := p.Value.(Exec)
		return p.DBus == "ExecStart" && ok && len(cmd) > 2 && cmd[1] == launch.LaunchVerb
	})
}

// withLaunchFlags is the launcher's command cmd with flags before its
// arguments.
func withLaunchFlags(cmd Exec, flags ...string) Exec {
	return append(append(Exec{cmd[0], cmd[1]}, flags...), cmd[2:]...)
}
