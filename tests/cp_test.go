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
	coveCpRules(t, dir)
	if r := cove(t, "cp", "cpy:/nope", dir); r.Code == 0 || !strings.Contains(r.Stderr, "/nope") {
		t.Errorf("cove cp of a missing path: exit %d: %s", r.Code, r.Stderr)
	}
	mustCove(t, "stop", "cpy") // a cove run container is gone once stopped
	if r := cove(t, "cp", "cpy:/tmp/b.txt", "-"); r.Code == 0 || !strings.Contains(r.Stderr, "no such workload cpy") {
		t.Errorf("cove cp of a stopped container: exit %d: %s", r.Code, r.Stderr)
	}
}

// coveCpRules: docker cp's destination rules and cove cp's care on the
// host: a setuid file copied out is not setuid there; SRC/. copies what
// it holds; a missing DEST/ for a directory is made; a DEST that is a
// symlink to a directory gets SRC in what it points to, and stays.
func coveCpRules(t *testing.T, dir string) {
	mustCove(t, "exec", "cpy", "--", "sh", "-c", "cp /bin/busybox /tmp/suid; chmod 4755 /tmp/suid; mkdir /tmp/real; ln -s /tmp/real /tmp/link")
	mustCove(t, "cp", "cpy:/tmp/suid", filepath.Join(dir, "suid"))
	if st, err := os.Stat(filepath.Join(dir, "suid")); err != nil || st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || st.Mode().Perm() != 0o755 {
		t.Errorf("a setuid file of the container copied to the host: %v (%v), want -rwxr-xr-x", st.Mode(), err)
	}
	mustCove(t, "cp", filepath.Join(dir, "in")+"/.", "cpy:/tmp/contents")
	mustCove(t, "cp", filepath.Join(dir, "in"), "cpy:/tmp/newdir/")
	mustCove(t, "cp", filepath.Join(dir, "in/a.txt"), "cpy:/tmp/link")
	check := "cat /tmp/contents/a.txt /tmp/newdir/a.txt /tmp/real/a.txt && test -L /tmp/link && echo ok"
	if r := cove(t, "exec", "cpy", "--", "sh", "-c", check); r.Stdout != "alpha\nalpha\nalpha\nok\n" {
		t.Errorf("cove cp's destinations (exit %d): %q %s", r.Code, r.Stdout, r.Stderr)
	}
}
