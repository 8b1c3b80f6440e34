// Command man writes cove's man pages: DIR/man1, a page for every command
// that cove's help shows (cove.1, cove-run.1, cove-image-pull.1, … as
// cobra/doc names them), and DIR/man5/cove.toml.5, the spec files'
// reference, built from the key table of package spec and the meaning of
// each key in README.md's reference (package readme). The pages are
// dated SOURCE_DATE_EPOCH, else a fixed date: the same source and date
// give the same bytes. It runs once, when a package is built, so that
// cove itself links neither cobra/doc nor what that needs; scripts/package
// runs it:
//
//	go run ./packaging/man [-readme FILE] DIR
//
// (-readme: README.md of the current directory by default.) Its exit
// status is 0 when the pages are written, 1 when they cannot be (or the
// README cannot be read), and 2 when it is called wrongly (not one DIR,
// or a SOURCE_DATE_EPOCH that is no number of seconds).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/cove-project/cove/internal/buildinfo"
	"github.com/cove-project/cove/internal/cli"
	"github.com/cove-project/cove/internal/readme"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// manDateFallback is the date of the man pages when SOURCE_DATE_EPOCH is
// not set: a fixed one, so that two builds write the same pages.
var manDateFallback = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv("SOURCE_DATE_EPOCH"), os.Stderr))
}

// run writes cove's pages into the one directory of args, dated epoch
// (SOURCE_DATE_EPOCH's value; "": manDateFallback), and returns the exit
// status; what goes wrong is said on stderr.
func run(args []string, epoch string, stderr io.Writer) int {
	fs := flag.NewFlagSet("man", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	readmePath := fs.String("readme", "README.md", "cove's README, whose reference gives each key's meaning")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: go run ./packaging/man [-readme FILE] DIR")
		return exitUsage
	}
	date, err := manDate(epoch)
	if err != nil {
		fmt.Fprintln(stderr, "man:", err)
		return exitUsage
	}
	text, err := os.ReadFile(*readmePath)
	if err != nil {
		fmt.Fprintln(stderr, "man:", err)
		return exitFailure
	}
	if err := writeManPages(cli.Root(), fs.Arg(0), date, readme.Reference(string(text))); err != nil {
		fmt.Fprintln(stderr, "man:", err)
		return exitFailure
	}
	return exitOK
}

// manDate is the date of the pages: that of epoch, seconds since 1970
// (SOURCE_DATE_EPOCH), else manDateFallback when epoch is "". An epoch
// that is no number is an error naming SOURCE_DATE_EPOCH.
func manDate(epoch string) (time.Time, error) {
	if epoch == "" {
		return manDateFallback, nil
	}
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
	}
	return time.Unix(n, 0).UTC(), nil
}

// writeManPages writes root's pages (one per command help shows) into
// dir/man1 and cove.toml(5) (with ref, the README's reference) into
// dir/man5, creating both, all dated date.
func writeManPages(root *cobra.Command, dir string, date time.Time, ref []readme.Row) error {
	man1, man5 := filepath.Join(dir, "man1"), filepath.Join(dir, "man5")
	for _, d := range []string{man1, man5} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("write man pages: %w", err)
		}
	}
	root.DisableAutoGenTag = true // its HISTORY section dates each build
	header := &doc.GenManHeader{Date: &date, Source: "cove " + buildinfo.Version(), Manual: "cove Manual"}
	if err := doc.GenManTree(root, header, man1); err != nil {
		return fmt.Errorf("write man pages into %s: %w", man1, err)
	}
	path := filepath.Join(man5, "cove.toml.5")
	if err := os.WriteFile(path, []byte(specManPage(date, ref)), 0o644); err != nil {
		return fmt.Errorf("write man page: %w", err)
	}
	return nil
}
