// Package cli implements the cove command line: it parses arguments, calls
// spec, units and supervisor, and prints results. It holds no logic of its
// own beyond presentation.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/buildinfo"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad flags, bad specs
)

// usageError marks errors in how cove was called (exit status 2).
type usageError struct{ error }

// usagef returns a usageError.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitError carries a payload's exit status through (cove run).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// command is one cove verb.
type command struct {
	name    string
	summary string
	hidden  bool
	run     func(ctx context.Context, env *Env, args []string) error
}

// Env is what a command may touch: its output streams, the path of the
// cove binary (written into units as the launcher) and the API address
// the workload verbs use instead of systemd (--host or COVE_HOST; "": see
// withBackend).
type Env struct {
	Stdout, Stderr io.Writer
	Self           string
	Host           string
}

// commands lists the verbs in help order.
func commands() []command {
	return []command{
		{name: "run", summary: "run a workload as a transient unit", run: runCmd},
		{name: "ps", summary: "list workloads", run: psCmd},
		{name: "status", summary: "show one workload", run: statusCmd},
		{name: "start", summary: "start a declared workload", run: startCmd},
		{name: "stop", summary: "stop a workload", run: stopCmd},
		{name: "restart", summary: "restart a workload", run: restartCmd},
		{name: "exec", summary: "run a command inside a running container", run: execCmd},
		{name: "kill", summary: "send a signal (default KILL) to a workload's main process", run: killCmd},
		{name: "rm", summary: "stop and remove a workload", run: rmCmd},
		{name: "logs", summary: "show a workload's output", run: logsCmd},
		{name: "console", summary: "attach to a VM's serial console (Ctrl-] detaches)", run: consoleCmd},
		{name: "apply", summary: "install specs and start/restart/stop what changed", run: applyCmd},
		{name: "diff", summary: "show what cove apply would do", run: diffCmd},
		{name: "enable", summary: "start a declared workload at boot", run: enableCmd},
		{name: "disable", summary: "do not start a declared workload at boot", run: disableCmd},
		{name: "pull", summary: "pull an image from a registry into the store", run: pullCmd},
		{name: "images", summary: "list the images in the store", run: imagesCmd},
		{name: "update", summary: "pull newer images for declared workloads and restart them (rolling back on failure)", run: updateCmd},
		{name: "rmi", summary: "remove images (refused while a workload uses them)", run: rmiCmd},
		{name: "image", summary: "manage images: ls, pull, inspect, rm, prune, import, save", run: imageCmd},
		{name: "import", summary: "load images from a docker-archive, oci-archive, OCI layout or rootfs tarball", run: importCmd},
		{name: "save", summary: "write images as a docker-archive or oci-archive", run: saveCmd},
		{name: "login", summary: "check and store credentials for a registry", run: loginCmd},
		{name: "logout", summary: "remove a registry's stored credentials", run: logoutCmd},
		{name: "network", summary: "manage networks: ls, inspect, create, rm", run: networkCmd},
		{name: "validate", summary: "check spec files", run: validateCmd},
		{name: "render", summary: "print the unit file of a spec", run: renderCmd},
		{name: launch.LaunchVerb, hidden: true, run: launchCmd},
		{name: launch.InitVerb, hidden: true, run: launchInitCmd},
		{name: launch.EnterVerb, hidden: true, run: enterInitCmd},
		{name: launch.HealthVerb, hidden: true, run: healthProbeCmd},
		{name: launch.VMLaunchVerb, hidden: true, run: launchVMCmd},
		{name: launch.VMStopVerb, hidden: true, run: launchVMStopCmd},
		{name: launch.VMReadyVerb, hidden: true, run: launchVMReadyCmd},
		{name: launch.NetworkUpVerb, hidden: true, run: networkUpCmd},
		{name: launch.NetworkDownVerb, hidden: true, run: networkDownCmd},
		{name: launch.NetworkReleaseVerb, hidden: true, run: networkReleaseCmd},
		{name: launch.DNSServeVerb, hidden: true, run: dnsServeCmd},
		{name: launch.DHCPServeVerb, hidden: true, run: dhcpServeCmd},
		{name: "api", summary: "serve the HTTP API (cove-api.service runs cove api serve)", run: apiCmd},
		{name: "version", summary: "print cove's version", run: versionCmd},
	}
}

// versionCmd prints cove's version (and the commit, when Go recorded it).
func versionCmd(_ context.Context, env *Env, args []string) error {
	fs := newFlags("version", "", env.Stderr)
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version: takes no arguments")
	}
	v := "cove " + buildinfo.Version()
	if c := buildinfo.Commit(); c != "" {
		v += " (" + c + ")"
	}
	fmt.Fprintln(env.Stdout, v)
	return nil
}

// Main runs cove with args (without the program name) and returns the exit
// status.
func Main(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cove: find own binary: %v\n", err)
		return exitFailure
	}
	if filepath.Base(os.Args[0]) == "cove-generator" {
		return generatorMain(self, args)
	}
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Self: self, Host: os.Getenv("COVE_HOST")}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitStatus(env, dispatch(ctx, env, args))
}

// dispatch finds the verb and runs it.
func dispatch(ctx context.Context, env *Env, args []string) error {
	args, err := hostFlag(env, args)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "--version" {
		args[0] = "version"
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printHelp(env.Stdout)
		if len(args) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	return usagef("unknown command %q (see cove --help)", args[0])
}

// exitStatus prints err and maps it to an exit status.
func exitStatus(env *Env, err error) int {
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(env.Stderr, "cove: %v\n", err)
	var ue usageError
	var se spec.Errors
	var e1 *spec.Error
	if errors.As(err, &ue) || errors.As(err, &se) || errors.As(err, &e1) {
		return exitUsage
	}
	return exitFailure
}

// printHelp lists the verbs.
func printHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: cove COMMAND [ARGS]\n\ncove runs containers as systemd units, with no daemon.\n\ncommands:")
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintln(w, "\nRun cove COMMAND -h for a command's flags.")
	fmt.Fprintln(w, "Global flag: --host unix:///PATH (or COVE_HOST) sends ps, status, start, stop, restart, rm,\n"+
		"logs, apply and diff through the cove API; without it they go to systemd when run as root,\n"+
		"else to the API at "+api.DefaultHost+".")
}
