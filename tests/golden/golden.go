// Package golden compares test output with the files that pin it (golden
// files), or rewrites them when the calling test package's -update flag
// is set.
package golden

import (
	"os"
	"testing"
)

// Check compares got with the file at path; with update it writes got to
// the file instead.
func Check(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
