package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/spec"
)

// testStore is a store in a temporary directory.
func testStore(t *testing.T) Store {
	d := t.TempDir()
	return Store{Dir: filepath.Join(d, "volumes"), Declared: filepath.Join(d, "etc")}
}

// TestStore: create (idempotent), get, list with declared volumes,
// remove (refused for a declared one), prune, and names that would leave
// the store refused.
func TestStore(t *testing.T) {
	s := testStore(t)
	v, err := s.Create("data", Options{Labels: map[string]string{"team": "db"}})
	if err != nil || v.Mountpoint != filepath.Join(s.Dir, "data", "_data") || v.CreatedAt.IsZero() || v.Labels["team"] != "db" {
		t.Fatalf("create: %+v, %v", v, err)
	}
	if again, err := s.Create("data", Options{}); err != nil || !again.CreatedAt.Equal(v.CreatedAt) || again.Labels["team"] != "db" {
		t.Errorf("create again: %+v, %v", again, err)
	}
	os.MkdirAll(s.Declared, 0o755)
	os.WriteFile(filepath.Join(s.Declared, "Decl_1.toml"), []byte("version = 1\nkind = \"volume\"\n[volume]\nlabels = { a = \"b\" }\n"), 0o644)
	os.WriteFile(filepath.Join(s.Dir, ".new-x"), nil, 0o644) // a crashed creation's leftover
	vs, err := s.List()
	if err != nil || len(vs) != 2 || vs[0].Name != "Decl_1" || vs[0].File == "" || vs[0].Labels["a"] != "b" || vs[0].CreatedAt.IsZero() == false || vs[1].Name != "data" {
		t.Fatalf("list: %+v, %v", vs, err)
	}
	if d, err := s.Create("Decl_1", Options{}); err != nil || d.Labels["a"] != "b" || d.CreatedAt.IsZero() {
		t.Errorf("create a declared volume: %+v, %v", d, err)
	}
	if err := s.Remove("Decl_1"); !errors.Is(err, ErrDeclared) || !strings.Contains(err.Error(), "Decl_1.toml") {
		t.Errorf("remove a declared volume: %v", err)
	}
	os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("12345"), 0o644)
	if n, err := s.Size("data"); n != 5 || err != nil {
		t.Errorf("size: %d, %v", n, err)
	}
	s.Create("other", Options{})
	removed, reclaimed, err := s.Prune(map[string]bool{"other": true})
	if err != nil || len(removed) != 1 || removed[0] != "data" || reclaimed != 5 {
		t.Errorf("prune: %v %d %v", removed, reclaimed, err)
	}
	if _, err := s.Get("data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after prune: %v", err)
	}
	if err := s.Remove("other"); err != nil {
		t.Errorf("remove: %v", err)
	}
	if err := s.Remove("other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove again: %v", err)
	}
	for _, bad := range []string{"..", "../x", "a/b", "/etc", ".new-x"} {
		if _, err := s.Create(bad, Options{}); err == nil || !strings.Contains(err.Error(), "invalid volume name") {
			t.Errorf("create %q: %v", bad, err)
		}
		if err := s.Remove(bad); err == nil {
			t.Errorf("remove %q succeeded", bad)
		}
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 2 { // .new-x and Decl_1
		t.Errorf("left in the store: %v", entries)
	}
}

// TestPrepare: the first use of an empty volume copies the image's
// directory with owners, modes, links as links (never followed) and
// xattrs; a leftover of a killed copy is replaced; later uses copy
// nothing; a volume that has content gets none.
func TestPrepare(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	s := testStore(t)
	img := t.TempDir()
	os.MkdirAll(filepath.Join(img, "sub", "deep"), 0o750)
	os.WriteFile(filepath.Join(img, "sub", "deep", "f"), []byte("hi"), 0o640)
	os.Chown(filepath.Join(img, "sub", "deep", "f"), 1000, 1001)
	os.Chmod(filepath.Join(img, "sub"), os.ModeSticky|0o777)
	os.Symlink("/etc/shadow", filepath.Join(img, "abs"))
	os.Symlink("../../../outside", filepath.Join(img, "rel"))
	unix.Mkfifo(filepath.Join(img, "fifo"), 0o600)
	xattr := unix.Setxattr(filepath.Join(img, "sub", "deep", "f"), "user.cove", []byte("v"), 0) == nil
	os.Chown(img, 999, 999)

	// A killed copy left a half-done temporary directory.
	s.Create("data", Options{})
	os.MkdirAll(filepath.Join(s.Dir, "data", populateTemp, "junk"), 0o755)
	data := prepare(t, s, "data", img)
	f := filepath.Join(data, "sub", "deep", "f")
	if b, err := os.ReadFile(f); string(b) != "hi" || err != nil {
		t.Fatalf("copied file: %q, %v", b, err)
	}
	checkOwner(t, f, 1000, 1001, 0o640)
	checkOwner(t, filepath.Join(data, "sub"), 0, 0, os.ModeSticky|0o777)
	checkOwner(t, data, 999, 999, 0o755)
	for name, want := range map[string]string{"abs": "/etc/shadow", "rel": "../../../outside"} {
		if got, err := os.Readlink(filepath.Join(data, name)); got != want || err != nil {
			t.Errorf("link %s: %q, %v", name, got, err)
		}
	}
	if st, err := os.Lstat(filepath.Join(data, "fifo")); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v %v", st, err)
	}
	if buf := make([]byte, 8); xattr {
		if n, err := unix.Getxattr(f, "user.cove", buf); err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr: %q, %v", buf[:n], err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "data", populateTemp)); !os.IsNotExist(err) {
		t.Errorf("temporary directory left: %v", err)
	}
	// Later uses copy nothing, even into an emptied volume.
	os.RemoveAll(filepath.Join(data, "sub"))
	prepare(t, s, "data", img)
	if _, err := os.Stat(filepath.Join(data, "sub")); !os.IsNotExist(err) {
		t.Errorf("second use copied again: %v", err)
	}
	// A volume with content gets none; one used without a source is
	// marked all the same.
	v, _ := s.Create("full", Options{})
	os.WriteFile(filepath.Join(v.Mountpoint, "mine"), nil, 0o644)
	prepare(t, s, "full", img)
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "sub")); !os.IsNotExist(err) {
		t.Errorf("a volume with content got the image's: %v", err)
	}
	if _, err := s.Prepare("fresh", nil, spec.IDRange{}); err != nil {
		t.Errorf("prepare without a source: %v", err)
	}
}

// TestPrepareShifted: a source seen from a user namespace (through
// idmapped mounts: owner U on disk shows as BASE+U) is copied with the
// owners on disk, U; owners outside the namespace's IDs stay as they are.
func TestPrepareShifted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	s := testStore(t)
	img := t.TempDir()
	const base = 0x90000
	os.MkdirAll(filepath.Join(img, "d"), 0o750)
	os.WriteFile(filepath.Join(img, "d", "f"), []byte("x"), 0o640)
	os.Symlink("f", filepath.Join(img, "d", "l"))
	os.Chown(filepath.Join(img, "d"), base+70, base+71)
	os.Chown(filepath.Join(img, "d", "f"), base+1000, base)
	os.Lchown(filepath.Join(img, "d", "l"), base+5, base+6)
	os.Chown(img, base, base)
	data := prepareFrom(t, s, "shifted", img, spec.IDRange{Base: base, Count: 65536})
	checkOwner(t, data, 0, 0, 0o755)
	checkOwner(t, filepath.Join(data, "d"), 70, 71, 0o750)
	checkOwner(t, filepath.Join(data, "d", "f"), 1000, 0, 0o640)
	checkOwner(t, filepath.Join(data, "d", "l"), 5, 6, os.ModePerm)
	os.Chown(filepath.Join(img, "d", "f"), 65534, base+65536) // outside: as is
	os.Chown(img, base, base)
	data = prepareFrom(t, s, "outside", img, spec.IDRange{Base: base, Count: 65536})
	checkOwner(t, filepath.Join(data, "d", "f"), 65534, base+65536, 0o640)
}

// prepare runs s.Prepare for name with the directory src.
func prepare(t *testing.T, s Store, name, src string) string {
	t.Helper()
	return prepareFrom(t, s, name, src, spec.IDRange{})
}

// prepareFrom runs s.Prepare for name with the directory src seen from a
// user namespace of IDs from.
func prepareFrom(t *testing.T, s Store, name, src string, from spec.IDRange) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := s.Prepare(name, f, from)
	if err != nil {
		t.Fatalf("prepare %s: %v", name, err)
	}
	return data
}

// checkOwner checks path's owner and mode.
func checkOwner(t *testing.T, path string, uid, gid uint32, mode os.FileMode) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(path)
	if st.Uid != uid || st.Gid != gid || fi.Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid) != mode {
		t.Errorf("%s: %d:%d %v, want %d:%d %v", path, st.Uid, st.Gid, fi.Mode(), uid, gid, mode)
	}
}
