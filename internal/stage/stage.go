// Package stage runs a container unit's stages, the hidden verbs systemd
// runs inside the unit: launch (ExecStart=: the launcher's first stage)
// and launch-stop (ExecStop= and ExecStopPost=), the relay of a
// container's terminal (launch-relay, started by launch), and the service
// of a published port's [::1] proxy (port-proxy, containers' and VMs'). It is
// all of the cove-launch binary (cmd/cove-launch), which every container
// start and stop runs, so it links what these stages need and nothing of
// the command line, the API or the DNS and DHCP responders: each Go start
// pays the package initialisation and the size of what it links. The
// stages inside the container's namespaces are another, smaller binary's
// (package isolate/inside, cmd/cove-init).
package stage

import (
	"errors"
	"fmt"
	"io"

	"github.com/cove-project/cove/launch"
)

// usageError marks arguments that do not parse (exit status 2).
type usageError struct{ error }

// usagef returns a usageError.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitError carries a status through (enter-init's command's).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// verb runs one stage: self is the path of the running binary (the
// launcher re-executes it for the next stage), args follow the verb.
type verb func(self string, stderr io.Writer, args []string) error

// verbs are the stages by their launch.*Verb names.
var verbs = map[string]verb{
	launch.LaunchVerb: launchStage,
	launch.StopVerb:   stopStages,
	launch.ProxyVerb:  portProxy,
	launch.RelayVerb:  terminalRelay,
}

// Is reports whether verb names a stage.
func Is(verb string) bool { _, ok := verbs[verb]; return ok }

// Main runs the stage args[0] with args[1:] and returns the exit status;
// errors go to stderr as "cove: ERROR" (the unit's journal).
func Main(self string, args []string, stderr io.Writer) int {
	if len(args) == 0 || !Is(args[0]) {
		fmt.Fprintf(stderr, "cove: want one of the stages %s, %s, %s, %s; cove-launch is run by container units\n",
			launch.LaunchVerb, launch.StopVerb, launch.ProxyVerb, launch.RelayVerb)
		return launch.ExitUsage
	}
	err := verbs[args[0]](self, stderr, args[1:])
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintf(stderr, "cove: %v\n", err)
	if errors.As(err, new(usageError)) {
		return launch.ExitUsage
	}
	return launch.ExitFailure
}
