package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSet is a verb's flags with its usage line.
type flagSet struct {
	*flag.FlagSet
	usage string    // e.g. "[--json] NAME"
	help  io.Writer // where -h prints
}

// newFlags returns the flag set of verb; -h prints its help to w.
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

// oneName checks that exactly one workload name was given.
func oneName(fs *flagSet) (string, error) {
	if fs.NArg() != 1 {
		return "", usagef("%s: want exactly one workload name, got %d arguments", fs.Name(), fs.NArg())
	}
	return fs.Arg(0), nil
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
