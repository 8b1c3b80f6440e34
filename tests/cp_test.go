package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCoveCp: cove cp copies into and out of a running container as
// docker cp does: a directory into a directory, a file to a new name,
// back out to a host directory and as a tar stream to "-"; the copy in
// keeps the files' numeric owners; a container that is gone is refused. (--volatile: the test's rootfs is shared, and stays as it is.)
func TestCoveCp(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "cpy")
	mustCove(t, runArgs("-d", "--name", "cpy", "--volatile", "--", "/bin/sleep", "1000")...)
	dir := filepath.Join(workDir, "covecp")
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in/a.txt"), []byte("alpha\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "in/a.txt"), 4321, 4321); err != nil {
		t.Fatal(err)
	}
	mustCove(t, "cp", filepath.Join(dir, "in"), "cpy:/tmp/")
	mustCove(t, "cp", filepath.Join(dir, "in/a.txt"), "cpy:/tmp/b.txt")
	if r := cove(t, "exec", "cpy", "--", "sh", "-c", "cat /tmp/in/a.txt /tmp/b.txt; stat -c %u:%a /tmp/in/a.txt"); r.Stdout != "alpha\nalpha\n4321:640\n" {
		t.Errorf("the container's view of the copies (exit %d): %q %s", r.Code, r.Stdout, r.Stderr)
	}
	mustCove(t, "cp", "cpy:/tmp/in", filepath.Join(dir, "out"))
	if b, err := os.ReadFile(filepath.Join(dir, "out/a.txt")); string(b) != "alpha\n" {
		t.Errorf("cove cp cpy:/tmp/in to a new host directory: out/a.txt holds %q (%v)", b, err)
	}
	if r := cove(t, "cp", "cpy:/tmp/b.txt", "-"); tarNames(r.Stdout) != "b.txt" {
		t.Errorf("cove cp cpy:/tmp/b.txt -: exit %d, entries %q: %s", r.Code, tarNames(r.Stdout), r.Stderr)
	}
	if r := cove(t, "cp", "cpy:/nope", dir); r.Code == 0 || !strings.Contains(r.Stderr, "/nope") {
		t.Errorf("cove cp of a missing path: exit %d: %s", r.Code, r.Stderr)
	}
	mustCove(t, "stop", "cpy") // a cove run container is gone once stopped
	if r := cove(t, "cp", "cpy:/tmp/b.txt", "-"); r.Code == 0 || !strings.Contains(r.Stderr, "no such workload cpy") {
		t.Errorf("cove cp of a stopped container: exit %d: %s", r.Code, r.Stderr)
	}
}
