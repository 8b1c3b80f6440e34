package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// verb is cmd's path without the program name: "run", "image ls".
func verb(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// flagError makes a bad flag (cobra's FlagErrorFunc) a usage error.
func flagError(cmd *cobra.Command, err error) error {
	if !cmd.HasParent() {
		return usagef("%v (see %s --help)", err, cmd.CommandPath())
	}
	return usagef("%s: %v (see %s --help)", verb(cmd), err, cmd.CommandPath())
}

// listValue is the values of a repeatable flag, in order; help shows it
// as docker does ("-e, --env list").
type listValue []string

func (l *listValue) String() string     { return strings.Join(*l, ",") }
func (l *listValue) Set(v string) error { *l = append(*l, v); return nil }
func (l *listValue) Type() string       { return "list" }

// noArgs is the argument check of a verb that takes none.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s: takes no arguments", verb(cmd))
	}
	return nil
}

// wantArgs is an argument check: between min and max arguments (max < 0:
// no upper bound), what they are being said otherwise.
func wantArgs(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || max >= 0 && len(args) > max {
			return usagef("%s: want %s, got %d arguments", verb(cmd), what, len(args))
		}
		return nil
	}
}

// splitCommand splits a verb's positional arguments at "--" into its own
// and the payload's command. pflag consumes a "--" that comes before the
// first positional argument (ArgsLenAtDash); with interspersing off, a
// later one stays in args.
func splitCommand(cmd *cobra.Command, args []string) (before, command []string) {
	if n := cmd.ArgsLenAtDash(); n >= 0 {
		return args[:n], args[n:]
	}
	before, command, _ = cutArgs(args, "--")
	return before, command
}

// cutArgs splits args at the first sep.
func cutArgs(args []string, sep string) (before, after []string, found bool) {
	for i, a := range args {
		if a == sep {
			return args[:i], args[i+1:], true
		}
	}
	return args, nil, false
}

// apiAnnotation marks the verbs that work through the API (api.Backend);
// the others need systemd itself (cove run passes file descriptors to it).
const apiAnnotation = "cove.api"

// viaAPI marks c as a verb that works through the API.
func viaAPI(c *cobra.Command) *cobra.Command {
	c.Annotations = map[string]string{apiAnnotation: "yes"}
	return c
}

// apiVerbs are the names of root's verbs that work through the API.
func apiVerbs(root *cobra.Command) []string {
	var names []string
	for _, c := range root.Commands() {
		if c.Annotations[apiAnnotation] != "" {
			names = append(names, c.Name())
		}
	}
	return names
}

// checkHost refuses an explicit --host before one of cove's verbs that
// cannot work through the API (help, version and completion ignore it).
func checkHost(cmd *cobra.Command, _ []string) error {
	top := cmd
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	if cmd.Flags().Changed("host") && top.GroupID != "" && top.Annotations[apiAnnotation] == "" {
		return usagef("%s: does not work through the API (--host); run it as root on the host", verb(cmd))
	}
	return nil
}

// flagSet is the Go flag set of a hidden verb, with its usage line: those
// verbs keep the flag syntax the unit compiler writes.
type flagSet struct {
	*flag.FlagSet
	usage string    // e.g. "--name NAME [flags] -- COMMAND..."
	help  io.Writer // where -h prints
}

// newFlags returns the flag set of hidden verb; -h prints its help to w.
func newFlags(verb, usage string, w io.Writer) *flagSet {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, usage: usage, help: w}
}

// parse parses args. It returns false with no error after -h (help was
// printed), and wraps bad flags as usage errors.
func parse(fs *flagSet, args []string) (bool, error) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(fs.help, "usage: cove %s %s\n", fs.Name(), fs.usage)
		fs.SetOutput(fs.help)
		fs.PrintDefaults()
		return false, nil
	}
	if err != nil {
		return false, usagef("%s: %v (see cove %s -h)", fs.Name(), err, fs.Name())
	}
	return true, nil
}
