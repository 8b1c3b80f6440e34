package spec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-project/cove/tests/golden"
)

var update = flag.Bool("update", false, "rewrite the expected errors in testdata/bad")

// badDir holds the malformed specs: NAME.toml, and beside it NAME.err with
// every error Parse reports for it, one "FILE:LINE:COL: KEY: message" line
// each, FILE being NAME.toml. The workload is named after the file, so a
// file name can itself be the mistake (Web.toml, "a b.toml").
const badDir = "testdata/bad"

// TestBadSpecs parses every malformed spec in testdata/bad and compares
// its errors with NAME.err; go test ./spec -update rewrites the .err files.
// Adding a case is adding the two files.
func TestBadSpecs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(badDir, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no malformed specs in %s: %v", badDir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			golden.Check(t, strings.TrimSuffix(f, ".toml")+".err", parseErrors(t, f), *update)
		})
	}
	errFiles, _ := filepath.Glob(filepath.Join(badDir, "*.err"))
	for _, e := range errFiles {
		if _, err := os.Stat(strings.TrimSuffix(e, ".err") + ".toml"); err != nil {
			t.Errorf("%s has no spec beside it: %v", e, err)
		}
	}
}

// parseErrors parses the spec file at path as its base name and returns
// its errors as Errors.Error prints them, with a final newline. It fails t
// unless Parse keeps its contract for a bad spec: a nil spec, a non-empty
// Errors whose first error errors.As finds, one line per error.
func parseErrors(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(filepath.Base(path), data, "")
	if err == nil {
		t.Fatalf("no error; spec %+v", s)
	}
	if s != nil {
		t.Errorf("spec %+v returned with error", s)
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error %T %v is not a non-empty Errors", err, err)
	}
	var first *Error
	if !errors.As(err, &first) || first != errs[0] {
		t.Errorf("errors.As(*Error) = %v, want the first error %v", first, errs[0])
	}
	text := err.Error()
	if n := strings.Count(text, "\n") + 1; n != len(errs) {
		t.Errorf("Error() has %d lines for %d errors:\n%s", n, len(errs), text)
	}
	return text + "\n"
}
