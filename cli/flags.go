package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
)

// newFlags returns a flag set whose errors are usage errors and whose help
// goes to w.
func newFlags(name, usage string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		io.WriteString(w, "usage: cove "+name+" "+usage+"\n")
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and wraps errors as usage errors; -h is not an error.
func parse(fs *flag.FlagSet, args []string) (bool, error) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return false, nil
	}
	if err != nil {
		return false, usageError{err}
	}
	return true, nil
}

// oneName checks that exactly one workload name was given.
func oneName(fs *flag.FlagSet) (string, error) {
	if fs.NArg() != 1 {
		return "", usagef("%s: want exactly one workload name, got %d arguments", fs.Name(), fs.NArg())
	}
	return fs.Arg(0), nil
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
