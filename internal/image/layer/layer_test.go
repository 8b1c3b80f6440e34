package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one entry of a test layer.
type ent struct {
	tar.Header
	body string
}

// mtime is the modification time test entries get unless they say.
var mtime = time.Date(2021, 3, 4, 5, 6, 7, 890, time.UTC)

func regEnt(name, body string) ent {
	return ent{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, body}
}

func dirEnt(name string) ent {
	return ent{tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}, ""}
}

func symEnt(name, target string) ent {
	return ent{tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, ""}
}

func linkEnt(name, target string) ent {
	return ent{tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}, ""}
}

// layerTar encodes ents as a PAX tar stream, ended by the end-of-archive
// blocks.
func layerTar(t *testing.T, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range ents {
		h := e.Header
		h.Format = tar.FormatPAX
		if h.ModTime.IsZero() {
			h.ModTime = mtime
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := w.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatalf("tar data %q: %v", h.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// unpackTar unpacks stream into "layer", a new empty directory in a
// fresh temporary directory, and returns both paths.
func unpackTar(t *testing.T, stream []byte, lim Limits) (dir, parent string, st Stats, err error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking a layer needs root (chown, mknod, trusted.* xattrs)")
	}
	parent = t.TempDir()
	dir = filepath.Join(parent, "layer")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err = Unpack(dir, bytes.NewReader(stream), lim)
	return dir, parent, st, err
}

// mustUnpack unpacks ents and fails the test on error.
func mustUnpack(t *testing.T, ents ...ent) string {
	t.Helper()
	dir, _, _, err := unpackTar(t, layerTar(t, ents...), Limits{})
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	return dir
}

// lstat returns the status of name itself.
func lstatT(t *testing.T, name string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return &st
}

// wantStat checks the type, permission bits and owner of st.
func wantStat(t *testing.T, name string, st *unix.Stat_t, mode uint32, uid, gid uint32) {
	t.Helper()
	if st.Mode != mode || st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: mode %#o owner %d:%d, want %#o %d:%d", name, st.Mode, st.Uid, st.Gid, mode, uid, gid)
	}
}

// wantTimes checks st's mtime and atime.
func wantTimes(t *testing.T, name string, st *unix.Stat_t, atime, mtime time.Time) {
	t.Helper()
	gotM, gotA := time.Unix(st.Mtim.Unix()), time.Unix(st.Atim.Unix())
	if !gotM.Equal(mtime) || !gotA.Equal(atime) {
		t.Errorf("%s: atime %v mtime %v, want %v %v", name, gotA, gotM, atime, mtime)
	}
}

// getxattr returns the xattr key of name itself, or "" with the error.
func getxattr(name, key string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(name, key, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// TestEntryTypes unpacks one entry of every supported type and checks
// what each became: type, mode, owner, device number, link target,
// contents, and times (a directory's after its contents were made).
func TestEntryTypes(t *testing.T) {
	atime := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	f := regEnt("d/f", "hello")
	f.Mode, f.Uid, f.Gid, f.AccessTime = 0o640, 1000, 2000, atime
	d := dirEnt("d")
	d.Mode, d.Uid, d.Gid, d.AccessTime = 0o750, 1001, 1002, atime
	s := symEnt("d/s", "/no/such/target")
	s.Uid, s.Gid, s.AccessTime = 1003, 1004, atime
	c := ent{tar.Header{Typeflag: tar.TypeChar, Name: "d/null", Mode: 0o666, Devmajor: 1, Devminor: 3, Uid: 5}, ""}
	b := ent{tar.Header{Typeflag: tar.TypeBlock, Name: "d/loop0", Mode: 0o660, Devmajor: 7, Devminor: 0, Gid: 6}, ""}
	p := ent{tar.Header{Typeflag: tar.TypeFifo, Name: "d/fifo", Mode: 0o620}, ""}
	cont := ent{tar.Header{Typeflag: tar.TypeCont, Name: "d/cont", Mode: 0o600}, "contiguous"}
	cont.Size = int64(len(cont.body))
	dir, _, st, err := unpackTar(t, layerTar(t, d, f, s, linkEnt("d/h", "d/f"), c, b, p, cont), Limits{})
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if st != (Stats{Bytes: 15, Entries: 8}) {
		t.Errorf("stats %+v, want 15 bytes, 8 entries", st)
	}
	at := func(n string) string { return filepath.Join(dir, n) }
	fst := lstatT(t, at("d/f"))
	wantStat(t, "file", fst, unix.S_IFREG|0o640, 1000, 2000)
	wantTimes(t, "file", fst, atime, mtime)
	if fst.Nlink != 2 || lstatT(t, at("d/h")).Ino != fst.Ino {
		t.Errorf("hard link d/h: nlink %d, not the inode of d/f", fst.Nlink)
	}
	sst := lstatT(t, at("d/s"))
	wantStat(t, "symlink", sst, unix.S_IFLNK|0o777, 1003, 1004)
	wantTimes(t, "symlink", sst, atime, mtime)
	if target, _ := os.Readlink(at("d/s")); target != "/no/such/target" {
		t.Errorf("symlink target %q", target)
	}
	cst := lstatT(t, at("d/null"))
	wantStat(t, "char device", cst, unix.S_IFCHR|0o666, 5, 0)
	if cst.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("char device rdev %#x, want 1:3", cst.Rdev)
	}
	bst := lstatT(t, at("d/loop0"))
	wantStat(t, "block device", bst, unix.S_IFBLK|0o660, 0, 6)
	if bst.Rdev != unix.Mkdev(7, 0) {
		t.Errorf("block device rdev %#x, want 7:0", bst.Rdev)
	}
	wantStat(t, "fifo", lstatT(t, at("d/fifo")), unix.S_IFIFO|0o620, 0, 0)
	wantStat(t, "contiguous file", lstatT(t, at("d/cont")), unix.S_IFREG|0o600, 0, 0)
	dst := lstatT(t, at("d"))
	wantStat(t, "dir", dst, unix.S_IFDIR|0o750, 1001, 1002)
	wantTimes(t, "dir", dst, atime, mtime)
	if data, _ := os.ReadFile(at("d/f")); string(data) != "hello" {
		t.Errorf("file contents %q", data)
	}
}

// TestSpecialModeBitsSurviveChown checks that setuid, setgid and sticky
// bits stay on entries owned by a non-root user (chown clears them, so
// chmod must come after it).
func TestSpecialModeBitsSurviveChown(t *testing.T) {
	f := regEnt("suid", "#!")
	f.Mode, f.Uid, f.Gid = 0o6755, 1000, 1000
	d := dirEnt("tmp")
	d.Mode, d.Uid = 0o1777, 1000
	dir := mustUnpack(t, f, d)
	wantStat(t, "setuid file", lstatT(t, filepath.Join(dir, "suid")), unix.S_IFREG|0o6755, 1000, 1000)
	wantStat(t, "sticky dir", lstatT(t, filepath.Join(dir, "tmp")), unix.S_IFDIR|0o1777, 1000, 0)
}

// capNetBindService is a vfs_cap_data (revision 2) granting
// CAP_NET_BIND_SERVICE, effective.
var capNetBindService = string([]byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

// TestXattrs checks that user.* and security.capability xattrs are set
// (the capability after chown, which would clear it), on files and
// directories.
func TestXattrs(t *testing.T) {
	f := regEnt("bin/ping", "elf")
	f.Mode, f.Uid = 0o755, 1000
	f.PAXRecords = map[string]string{
		"SCHILY.xattr.user.origin":         "layer",
		"SCHILY.xattr.security.capability": capNetBindService,
	}
	d := dirEnt("bin")
	d.PAXRecords = map[string]string{"SCHILY.xattr.user.dir": "yes"}
	dir := mustUnpack(t, d, f)
	for _, c := range []struct{ path, key, want string }{
		{"bin/ping", "user.origin", "layer"},
		{"bin/ping", "security.capability", capNetBindService},
		{"bin", "user.dir", "yes"},
	} {
		if got, err := getxattr(filepath.Join(dir, c.path), c.key); got != c.want {
			t.Errorf("%s %s = %q (%v), want %q", c.path, c.key, got, err, c.want)
		}
	}
}

// aclUserRead is a system.posix_acl_access value (version 2): owner rw,
// user 1000 r, group r, mask r, other none, as for mode 0640.
var aclUserRead = string([]byte{
	2, 0, 0, 0,
	0x01, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, // ACL_USER_OBJ rw
	0x02, 0, 4, 0, 0xe8, 0x03, 0, 0, // ACL_USER 1000 r
	0x04, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, // ACL_GROUP_OBJ r
	0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, // ACL_MASK r
	0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // ACL_OTHER
})

// TestACL checks that a POSIX access ACL is applied, and survives the
// chmod after it, where the file system supports ACLs.
func TestACL(t *testing.T) {
	f := regEnt("secret", "x")
	f.Mode = 0o640
	f.PAXRecords = map[string]string{"SCHILY.xattr.system.posix_acl_access": aclUserRead}
	dir := mustUnpack(t, f)
	got, err := getxattr(filepath.Join(dir, "secret"), "system.posix_acl_access")
	if errors.Is(err, unix.ENOTSUP) {
		t.Skip("the file system has no POSIX ACLs")
	}
	if got != aclUserRead {
		t.Errorf("system.posix_acl_access = %x (%v), want %x", got, err, aclUserRead)
	}
}

// TestXattrPolicy checks which xattr names an image may set, and where
// failing with ENOTSUP is ignored.
func TestXattrPolicy(t *testing.T) {
	for _, c := range []struct {
		key                    string
		allowed, ignoreENOTSUP bool
	}{
		{"user.anything", true, false},
		{"security.capability", true, false},
		{"security.ima", true, false},
		{"security.selinux", true, true},
		{"system.posix_acl_access", true, true},
		{"system.posix_acl_default", true, true},
		{"system.nfs4_acl", false, false},
		{"trusted.overlay.opaque", false, false},
		{"trusted.anything", false, false},
		{"btrfs.compression", false, false},
	} {
		ignore, err := xattrPolicy(c.key)
		if (err == nil) != c.allowed || ignore != c.ignoreENOTSUP || err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("xattrPolicy(%q) = %v, %v; want allowed %v, ignore ENOTSUP %v", c.key, ignore, err, c.allowed, c.ignoreENOTSUP)
		}
	}
}

// TestXattrsRefused checks that an image can set no trusted.* xattr (it
// would forge overlayfs metadata) and no system.* other than POSIX ACLs,
// and that the refused entry is not made.
func TestXattrsRefused(t *testing.T) {
	for _, key := range []string{"trusted.overlay.opaque", "trusted.overlay.redirect", "system.nfs4_acl", "other.key"} {
		t.Run(key, func(t *testing.T) {
			d := dirEnt("d")
			d.PAXRecords = map[string]string{"SCHILY.xattr." + key: "y"}
			dir, _, _, err := unpackTar(t, layerTar(t, d), Limits{})
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Unpack = %v, want ErrRefused", err)
			}
			if names := listDir(t, dir); len(names) != 0 {
				t.Errorf("layer holds %v after the refusal", names)
			}
		})
	}
}

// TestNames checks name normalisation ("/x", "./x", "x//y" are inside
// the layer), that a "./" entry gives the layer root its attributes, that
// missing parents are made 0755, and that AUFS bookkeeping is skipped.
func TestNames(t *testing.T) {
	root := dirEnt("./")
	root.Mode = 0o711
	dir := mustUnpack(t, root, regEnt("/etc/abs", "a"), regEnt("./etc/dot", "b"), regEnt("usr//lib/../share/x", "c"),
		regEnt(".wh..wh.plnk/123.456", "aufs"), regEnt(".wh..wh.aufs", ""))
	if got := listDir(t, dir); !slices.Equal(got, []string{"etc", "usr"}) {
		t.Errorf("layer root holds %v, want [etc usr]", got)
	}
	for _, p := range []string{"etc/abs", "etc/dot", "usr/share/x"} {
		wantStat(t, p, lstatT(t, filepath.Join(dir, p)), unix.S_IFREG|0o644, 0, 0)
	}
	wantStat(t, "implicit parent", lstatT(t, filepath.Join(dir, "etc")), unix.S_IFDIR|0o755, 0, 0)
	wantStat(t, "root", lstatT(t, dir), unix.S_IFDIR|0o711, 0, 0)
}

// TestUnsupportedType checks that an entry type Unpack does not know is
// refused with the entry named.
func TestUnsupportedType(t *testing.T) {
	_, _, _, err := unpackTar(t, layerTar(t, ent{tar.Header{Typeflag: 'V', Name: "volume"}, ""}), Limits{})
	if !errors.Is(err, ErrRefused) || err.Error() != `layer entry "volume": refused: unsupported tar entry type 'V'` {
		t.Errorf("Unpack = %v", err)
	}
}

// TestNotEmpty checks that Unpack refuses a directory that holds
// anything.
func TestNotEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(dir, bytes.NewReader(nil), Limits{}); err == nil {
		t.Error("Unpack into a non-empty directory succeeded")
	}
}

// TestReplace checks that a later entry replaces an earlier one of the
// same name, removing a directory with its contents, never writing
// through a symlink it replaces; and that a directory over a directory
// keeps the contents and takes the new attributes.
func TestReplace(t *testing.T) {
	d2 := dirEnt("keep")
	d2.Mode = 0o700
	dir, parent, _, err := unpackTar(t, layerTar(t,
		regEnt("a", "file"), dirEnt("a"), regEnt("a/in", "x"),
		dirEnt("b"), regEnt("b/in", "x"), dirEnt("b/sub"), regEnt("b", "now a file"),
		dirEnt("keep"), regEnt("keep/in", "x"), d2,
		symEnt("s", "../victim"), regEnt("s", "regular"),
	), Limits{})
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	wantStat(t, "file replaced by dir", lstatT(t, filepath.Join(dir, "a")), unix.S_IFDIR|0o755, 0, 0)
	wantStat(t, "dir replaced by file", lstatT(t, filepath.Join(dir, "b")), unix.S_IFREG|0o644, 0, 0)
	wantStat(t, "dir replaced by dir", lstatT(t, filepath.Join(dir, "keep")), unix.S_IFDIR|0o700, 0, 0)
	wantStat(t, "symlink replaced by file", lstatT(t, filepath.Join(dir, "s")), unix.S_IFREG|0o644, 0, 0)
	if _, err := os.Lstat(filepath.Join(dir, "keep/in")); err != nil {
		t.Errorf("dir replaced by dir lost its contents: %v", err)
	}
	if got := listDir(t, parent); !slices.Equal(got, []string{"layer"}) {
		t.Errorf("parent holds %v", got)
	}
}
