// Package inside is the part of a container's set-up that runs inside its
// namespaces: the launcher's second stage (launch-init: the container's
// first process, which builds its root, applies its identity and
// restrictions and executes the payload) and the enter stage of cove exec
// and health probes (enter-init), with the mount, user namespace and
// restriction primitives the launcher (package isolate) shares. It is all
// of the cove-init binary (cmd/cove-init), which every container start
// runs, so it links no network, registry or D-Bus code: each Go start pays
// the package initialisation and the size of what it links.
package inside

import (
	"errors"
	"fmt"
	"io"

	"github.com/cove-project/cove/launch"
)

// Main runs the stage args[0] (launch.InitVerb or launch.EnterVerb) with
// args[1:] and returns the exit status; errors go to stderr as
// "cove: ERROR" (the unit's journal, or cove exec's standard error).
func Main(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] != launch.InitVerb && args[0] != launch.EnterVerb && args[0] != launch.EnterNSVerb {
		fmt.Fprintf(stderr, "cove: want the stage %s, %s or %s; %s is run by the container launcher and cove exec\n",
			launch.InitVerb, launch.EnterVerb, launch.EnterNSVerb, launch.InsideBinary)
		return launch.ExitUsage
	}
	c, err := launch.ParseArgs(args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "cove: %v\n", err)
		return launch.ExitUsage
	}
	switch args[0] {
	case launch.InitVerb:
		return initStage(c, stderr)
	case launch.EnterNSVerb:
		return enterStage(c, stderr, func(c launch.Config) (int, error) { return 0, EnterNS(c) })
	}
	return enterStage(c, stderr, Enter)
}

// initStage is the launcher's second stage; a setup error it reported to
// the first stage, which prints it, only makes it exit non-zero.
func initStage(c launch.Config, stderr io.Writer) int {
	err := Init(c)
	if !errors.Is(err, ErrReported) {
		fmt.Fprintf(stderr, "cove: %v\n", err)
	}
	return launch.ExitFailure // Init returns only on error
}

// enterStage is the enter stage of cove exec and health probes (Enter, or
// in a user namespace, EnterNS, which returns only on error): it exits with the command's status, 127 for a command that is
// not there and 126 for one that cannot be run, as a shell does.
func enterStage(c launch.Config, stderr io.Writer, enter func(launch.Config) (int, error)) int {
	code, err := enter(c)
	switch {
	case errors.Is(err, ErrCommandNotFound):
		fmt.Fprintf(stderr, "cove: %v\n", err)
		return 127
	case err != nil:
		fmt.Fprintf(stderr, "cove: %v\n", err)
		return 126
	}
	return code
}
