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
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/buildinfo"
	"github.com/cove-project/cove/internal/stage"
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

// Env is what a command may touch: its output streams, the path of the
// cove binary (written into units as the launcher) and the API address
// the workload verbs use instead of systemd (--host or COVE_HOST; "": see
// withBackend).
type Env struct {
	Stdout, Stderr io.Writer
	Self           string
	Host           string
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
	return dispatch(ctx, env, hiddenVerbs(), args)
}

// Root is cove's command tree as help shows it, for the man page generator
// packaging/man: newRoot's tree with the help and completion commands
// that cobra adds when it runs, writing to os.Stdout and os.Stderr, with
// no default for --host (COVE_HOST is not read, so no page shows the
// builder's) and no path of its own binary. It is for reading: running
// a verb of it needs Main's environment.
func Root() *cobra.Command {
	root := newRoot(&Env{Stdout: os.Stdout, Stderr: os.Stderr})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	return root
}

// dispatch runs the command line args: a verb of hidden (those units
// run) at once with its arguments untouched, so that the start and stop
// paths build no command tree; a container stage as cove-launch runs it
// (units name cove-launch; cove still runs the stages for the units
// written before cove-launch existed, which name cove); any other
// through cove's (newRoot).
func dispatch(ctx context.Context, env *Env, hidden map[string]hiddenVerb, args []string) int {
	if len(args) > 0 {
		if stage.Is(args[0]) {
			return stage.Main(env.Self, args, env.Stderr)
		}
		if run, ok := hidden[args[0]]; ok {
			return exitStatus(env, run(ctx, env, args[1:]))
		}
	}
	return execute(ctx, env, newRoot(env), args)
}

// execute runs the command line args on root and returns the exit status.
func execute(ctx context.Context, env *Env, root *cobra.Command, args []string) int {
	root.SetArgs(append([]string{}, args...)) // never nil: cobra reads os.Args then
	return exitStatus(env, root.ExecuteContext(ctx))
}

// Help groups.
const (
	groupWorkloads = "workloads"
	groupDeclared  = "declared"
	groupImages    = "images"
	groupNetworks  = "networks"
	groupVolumes   = "volumes"
)

// newRoot returns cove's command tree: the verbs by group, help, version
// and completion (not hiddenVerbs: see dispatch).
func newRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "cove",
		Short: "run containers and VMs as systemd units, with no daemon",
		Example: `  cove run --rm busybox echo hello
  cove run -d --name web -p 8080:80 nginx:alpine
  cove apply /etc/cove
  cove help run`,
		Version:           versionString(),
		Args:              unknownCommand,
		PersistentPreRunE: checkHost,
		SilenceErrors:     true,
		SilenceUsage:      true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmd.Help(); err != nil {
				return err
			}
			return usagef("no command given")
		},
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(flagError)
	root.SetVersionTemplate("cove {{.Version}}\n")
	root.Flags().Bool("version", false, "print cove's version")
	root.PersistentFlags().StringVarP(&env.Host, "host", "H", env.Host,
		"send the verbs that work through the API to the cove API at this address (unix:///PATH; default $COVE_HOST)")
	root.AddGroup(
		&cobra.Group{ID: groupWorkloads, Title: "Workloads:"},
		&cobra.Group{ID: groupDeclared, Title: "Declared workloads and specs:"},
		&cobra.Group{ID: groupImages, Title: "Images:"},
		&cobra.Group{ID: groupNetworks, Title: "Networks:"},
		&cobra.Group{ID: groupVolumes, Title: "Volumes and disk use:"},
	)
	inGroup(groupWorkloads, root, runCommand(env), psCommand(env), statusCommand(env),
		nameCommand(env, startVerb), nameCommand(env, stopVerb), nameCommand(env, restartVerb),
		nameCommand(env, pauseVerb), nameCommand(env, unpauseVerb),
		execCommand(env), cpCommand(env), commitCommand(env), killCommand(env), rmCommand(env), logsCommand(env), statsCommand(env), eventsCommand(env), consoleCommand(env), attachCommand(env),
		vncCommand(env), screenshotCommand(env))
	inGroup(groupDeclared, root, applyCommand(env, false), applyCommand(env, true),
		enableCommand(env, true), enableCommand(env, false), scaleCommand(env), updateCommand(env),
		validateCommand(env), renderCommand(env))
	h := hostImageIO()
	inGroup(groupImages, root, pullCommand(env, "pull"), pushCommand(env, "push"), imagesCommand(env, "images"), imageCommand(env, h),
		rmiCommand(env, "rmi"), h.importCommand(env, "import"), h.saveCommand(env, "save"),
		h.loginCommand(env), h.logoutCommand(env))
	inGroup(groupNetworks, root, networkCommand(env))
	inGroup(groupVolumes, root, volumeCommand(env), systemCommand(env))
	root.AddCommand(apiCommand(env), versionCommand(env))
	root.SetHelpCommand(helpCommand())
	root.Long = "cove runs containers and VMs as systemd units, with no daemon.\n\n" +
		"Run as root, cove talks to systemd directly; otherwise, or with --host (or COVE_HOST),\n" +
		strings.Join(apiVerbs(root), ", ") + " go through the cove API\n(" + api.DefaultHost + " by default), with the same output."
	return root
}

// inGroup adds cmds to root under help group id.
func inGroup(id string, root *cobra.Command, cmds ...*cobra.Command) {
	for _, c := range cmds {
		c.GroupID = id
		root.AddCommand(c)
	}
}

// hiddenVerb runs a verb of hiddenVerbs with its arguments.
type hiddenVerb func(ctx context.Context, env *Env, args []string) error

// hiddenVerbs are the verbs that units and cove itself run (launch's
// *Verb constants), with the argument lists the unit compiler writes;
// they are not in the command tree (help, completion, man pages).
func hiddenVerbs() map[string]hiddenVerb {
	return map[string]hiddenVerb{
		launch.HealthVerb:         healthProbeCmd,
		launch.VMLaunchVerb:       launchVMCmd,
		launch.VMStopVerb:         launchVMStopCmd,
		launch.VMReadyVerb:        launchVMReadyCmd,
		launch.NetworkUpVerb:      networkUpCmd,
		launch.NetworkDownVerb:    networkDownCmd,
		launch.NetworkReleaseVerb: networkReleaseCmd,
		launch.DNSServeVerb:       dnsServeCmd,
		launch.DHCPServeVerb:      dhcpServeCmd,
		launch.RAServeVerb:        raServeCmd,
		launch.UserNSHoldVerb:     userNSHoldCmd,
	}
}

// helpCommand is cove help [COMMAND...]: the help that COMMAND --help
// prints, or cove's.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND...]",
		Short: "show the help of cove or of a command",
		Example: `  cove help
  cove help run
  cove help image ls`,
		ValidArgsFunction: completeCommands,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("help: unknown command %q (see cove --help)", strings.Join(args, " "))
			}
			target.InitDefaultHelpFlag() // as --help shows it
			return target.Help()
		},
	}
}

// unknownCommand is the root's argument check: any argument is a verb
// cobra did not find.
func unknownCommand(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unknown command %q (see cove --help)", args[0])
	}
	return nil
}

// versionString is cove's version and, when Go recorded it, the commit.
func versionString() string {
	v := buildinfo.Version()
	if c := buildinfo.Commit(); c != "" {
		v += " (" + c + ")"
	}
	return v
}

// versionCommand is cove version (the same as cove --version).
func versionCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "print cove's version",
		Example: "  cove version\n  cove --version",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(env.Stdout, "cove "+versionString())
			return err
		},
	}
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
