package copier

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/image/layer"
	"github.com/cove-project/cove/isolate/inside"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"golang.org/x/sys/unix"
)

// hostMaps are the maps of a container without a user namespace.
var hostMaps = inside.IDMaps{UID: inside.HostRange, GID: inside.HostRange}

// newRoot makes a container root in a directory of its own, inside a
// parent that nothing may reach from it: /etc/hosts, a relative and an
// absolute symlink, a symlink that tries to climb out, a directory with a
// hard link.
func newRoot(t *testing.T, maps inside.IDMaps) (Root, string) {
	t.Helper()
	parent := t.TempDir()
	dir := filepath.Join(parent, "root")
	for _, d := range []string{"etc", "d/sub"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(dir, "etc/hosts"), []byte("container hosts\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("app:x:33:44::/:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(parent, "secret"), []byte("host\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "d/sub/f"), []byte("f"), 0o640))
	must(t, os.Link(filepath.Join(dir, "d/sub/f"), filepath.Join(dir, "d/hl")))
	for link, target := range map[string]string{"etc/link": "hosts", "abs": "/etc", "esc": "../../../..", "up": "../secret", "dangling": "/nope/x"} {
		must(t, os.Symlink(target, filepath.Join(dir, link)))
	}
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	r := Root{Dir: f, Maps: maps}
	r.Owner = r.ConfigOwner(launch.Config{Image: launch.Image{UserName: "app"}})
	return r, dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestStat(t *testing.T) {
	r, _ := newRoot(t, hostMaps)
	cases := []struct {
		path, name string
		dir        bool
		link       string
	}{
		{"/etc/hosts", "hosts", false, ""},
		{"etc/link", "link", false, "/etc/hosts"},
		{"/abs", "abs", false, "/etc"},
		{"/abs/", "abs", true, ""},
		{"/abs/.", ".", true, ""},
		{"/", "/", true, ""},
		{".", ".", true, ""},
		{"/esc", "esc", false, "/"},
		{"/up", "up", false, "/secret"},
		{"/dangling", "dangling", false, "/nope/x"},
		{"/esc/etc/hosts", "hosts", false, ""},
	}
	for _, c := range cases {
		st, err := r.Stat(c.path)
		if err != nil {
			t.Errorf("Stat(%q): %v", c.path, err)
			continue
		}
		if st.Name != c.name || st.Mode.IsDir() != c.dir || st.LinkTarget != c.link {
			t.Errorf("Stat(%q) = %+v, want name %q, dir %v, link %q", c.path, st, c.name, c.dir, c.link)
		}
	}
	if st, _ := r.Stat("/esc/etc/hosts"); st.Size != int64(len("container hosts\n")) {
		t.Errorf("/esc/etc/hosts is %d bytes: not the container's", st.Size)
	}
	for _, p := range []string{"/nope", "/up/", "/abs/nope"} {
		if _, err := r.Stat(p); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", p, err)
		}
	}
}

// entry is what a test sees of a tar entry.
type entry struct {
	name string
	typ  byte
	link string
	body string
}

// send is path p of r as entries.
func send(t *testing.T, r Root, p string) []entry {
	t.Helper()
	src, err := r.Open(p)
	if err != nil {
		t.Fatalf("Open(%q): %v", p, err)
	}
	defer src.Close()
	var buf bytes.Buffer
	must(t, src.Send(&buf))
	var out []entry
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		body, _ := io.ReadAll(tr)
		out = append(out, entry{hdr.Name, hdr.Typeflag, hdr.Linkname, string(body)})
	}
}

func TestSendNames(t *testing.T) {
	r, _ := newRoot(t, hostMaps)
	d := []entry{{"d/", tar.TypeDir, "", ""}, {"d/hl", tar.TypeReg, "", "f"}, {"d/sub/", tar.TypeDir, "", ""}, {"d/sub/f", tar.TypeLink, "d/hl", ""}}
	cases := map[string][]entry{
		"/d":         d,
		"d/":         d,
		"/etc/hosts": {{"hosts", tar.TypeReg, "", "container hosts\n"}},
		"/abs":       {{"abs", tar.TypeSymlink, "/etc", ""}},
		"/abs/":      {{"abs/", tar.TypeDir, "", ""}, {"abs/hosts", tar.TypeReg, "", "container hosts\n"}, {"abs/link", tar.TypeSymlink, "hosts", ""}, {"abs/passwd", tar.TypeReg, "", "app:x:33:44::/:/bin/sh\n"}},
		"/d/sub/.":   {{"./", tar.TypeDir, "", ""}, {"./f", tar.TypeReg, "", "f"}},
	}
	for p, want := range cases {
		if got := send(t, r, p); !slices.Equal(got, want) {
			t.Errorf("Send(%q) =\n%v\nwant\n%v", p, got, want)
		}
	}
	all := send(t, r, "/")
	if all[0].name != "/" || !slices.Contains(all, entry{"/etc/hosts", tar.TypeReg, "", "container hosts\n"}) {
		t.Errorf("Send(/) = %v, want /, /etc/hosts among them", all)
	}
	for _, e := range all {
		if strings.Contains(e.body, "host\n") && e.body != "container hosts\n" {
			t.Errorf("Send(/) holds %s with the host's secret", e.name)
		}
	}
}

func TestSendOwnersInContainerIDs(t *testing.T) {
	r, dir := newRoot(t, inside.IDMaps{UID: spec.IDRange{Base: 100000, Count: 65536}, GID: spec.IDRange{Base: 200000, Count: 65536}})
	must(t, os.Lchown(filepath.Join(dir, "etc/hosts"), 100033, 200044))
	must(t, os.Lchown(filepath.Join(dir, "d/sub/f"), 5, 5)) // not in the maps
	src, err := r.Open("/")
	must(t, err)
	defer src.Close()
	var buf bytes.Buffer
	must(t, src.Send(&buf))
	tr := tar.NewReader(&buf)
	want := map[string][2]int{"/etc/hosts": {33, 44}, "/d/hl": {65534, 65534}}
	for hdr, err := tr.Next(); err == nil; hdr, err = tr.Next() {
		if w, ok := want[hdr.Name]; ok && (hdr.Uid != w[0] || hdr.Gid != w[1]) {
			t.Errorf("%s: owner %d:%d, want %d:%d", hdr.Name, hdr.Uid, hdr.Gid, w[0], w[1])
		}
	}
}

// tarOf is a tar stream of the entries.
func tarOf(t *testing.T, ents ...entry) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body)), Uid: 7, Gid: 8}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		must(t, tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(e.body))
		must(t, err)
	}
	must(t, tw.Close())
	return &buf
}

func TestPut(t *testing.T) {
	r, dir := newRoot(t, hostMaps)
	must(t, r.Put("/d", tarOf(t, entry{"new/", tar.TypeDir, "", ""}, entry{"new/x", tar.TypeReg, "", "x"}), PutOptions{}))
	wantFile(t, filepath.Join(dir, "d/new/x"), "x", 7, 8)
	must(t, r.Put("/abs", tarOf(t, entry{"y", tar.TypeReg, "", "y"}), PutOptions{})) // a symlink at the end is followed
	wantFile(t, filepath.Join(dir, "etc/y"), "y", 7, 8)
	must(t, r.Put("/esc", tarOf(t, entry{"z", tar.TypeReg, "", "z"}), PutOptions{})) // the root's "..": the root
	wantFile(t, filepath.Join(dir, "z"), "z", 7, 8)
	must(t, r.Put("/d", tarOf(t, entry{"hl", tar.TypeReg, "", "replaced"}), PutOptions{}))
	wantFile(t, filepath.Join(dir, "d/hl"), "replaced", 7, 8)
	wantFile(t, filepath.Join(dir, "d/sub/f"), "f", 0, 0) // the other link is untouched

	must(t, unix.Chmod(filepath.Join(dir, "d"), 0o1777))
	must(t, r.Put("/d", tarOf(t, entry{"./", tar.TypeDir, "", ""}, entry{"dot", tar.TypeReg, "", "."}), PutOptions{}))
	if st, err := os.Stat(filepath.Join(dir, "d")); err != nil || st.Mode()&os.ModePerm != 0o777 || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("a \".\" entry changed the directory it was extracted into: %v %v", st.Mode(), err)
	}
	errs := []struct {
		path string
		body io.Reader
		o    PutOptions
		want error
	}{
		{"/nope", tarOf(t), PutOptions{}, ErrNotFound},
		{"/etc/hosts", tarOf(t), PutOptions{}, ErrNotDir},
		{"/d", tarOf(t, entry{"../../secret", tar.TypeReg, "", "x"}), PutOptions{}, layer.ErrRefused},
		{"/", tarOf(t, entry{"up/x", tar.TypeReg, "", "x"}), PutOptions{}, layer.ErrRefused},
		{"/d", tarOf(t, entry{"sub", tar.TypeReg, "", "x"}), PutOptions{NoOverwriteDirNonDir: true}, layer.ErrRefused},
		{"/d", tarOf(t, entry{"hl/", tar.TypeDir, "", ""}), PutOptions{NoOverwriteDirNonDir: true}, layer.ErrRefused},
	}
	for _, e := range errs {
		if err := r.Put(e.path, e.body, e.o); !errors.Is(err, e.want) {
			t.Errorf("Put(%q) = %v, want %v", e.path, err, e.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "secret")); string(b) != "host\n" {
		t.Errorf("the file outside the root now holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "d/sub")); err != nil {
		t.Errorf("a refused entry removed the directory: %v", err)
	}
}

func TestPutOwners(t *testing.T) {
	r, dir := newRoot(t, inside.IDMaps{UID: spec.IDRange{Base: 100000, Count: 65536}, GID: spec.IDRange{Base: 200000, Count: 65536}})
	must(t, r.Put("/", tarOf(t, entry{"mapped", tar.TypeReg, "", "m"}, entry{"dev", tar.TypeChar, "", ""}), PutOptions{}))
	wantFile(t, filepath.Join(dir, "mapped"), "m", 100007, 200008)
	if _, err := os.Lstat(filepath.Join(dir, "dev")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a device was made in a container with a user namespace: %v", err)
	}
	big := &tar.Header{Name: "far", Typeflag: tar.TypeReg, Uid: 70000, Mode: 0o644}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(big))
	must(t, tw.Close())
	if err := r.Put("/", &buf, PutOptions{}); !errors.Is(err, layer.ErrRefused) {
		t.Errorf("an owner outside the maps: %v, want refused", err)
	}
	must(t, r.Put("/", tarOf(t, entry{"mine", tar.TypeReg, "", "m"}), PutOptions{CopyUIDGID: true}))
	wantFile(t, filepath.Join(dir, "mine"), "m", 100033, 200044) // app, in the container's passwd
	r.Owner = r.ConfigOwner(launch.Config{})                     // no user: the entries' own, as Docker's
	must(t, r.Put("/", tarOf(t, entry{"theirs", tar.TypeReg, "", "t"}), PutOptions{CopyUIDGID: true}))
	wantFile(t, filepath.Join(dir, "theirs"), "t", 100007, 200008)
}

// wantFile checks the content and owner of file p.
func wantFile(t *testing.T, p, body string, uid, gid uint32) {
	t.Helper()
	b, err := os.ReadFile(p)
	var st unix.Stat_t
	if err == nil {
		err = unix.Lstat(p, &st)
	}
	if err != nil || string(b) != body || st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: %q owned by %d:%d (%v), want %q owned by %d:%d", p, b, st.Uid, st.Gid, err, body, uid, gid)
	}
}

func TestUnmounted(t *testing.T) {
	r, dir := newRoot(t, hostMaps)
	r.Unmounted = []string{"/etc/hosts", "/d/sub", "/abs/mnt"} // /abs is /etc: /etc/mnt
	for _, p := range []string{"/etc/hosts", "/etc/link", "/d/sub/f", "/abs/hosts", "/esc/d/sub/", "/etc/mnt/x"} {
		if _, err := r.Stat(p); !errors.Is(err, ErrMounted) {
			t.Errorf("Stat(%q) = %v, want ErrMounted", p, err)
		}
	}
	if err := r.Put("/d/sub", tarOf(t), PutOptions{}); !errors.Is(err, ErrMounted) {
		t.Errorf("Put into /d/sub = %v, want ErrMounted", err)
	}
	for _, e := range []entry{{"sub/x", tar.TypeReg, "", "x"}, {"sub", tar.TypeReg, "", "x"}, {"l", tar.TypeLink, "sub/f", ""}} {
		if err := r.Put("/d", tarOf(t, e), PutOptions{}); !errors.Is(err, layer.ErrRefused) {
			t.Errorf("Put of %s into /d = %v, want refused", e.name, err)
		}
	}
	must(t, r.Put("/abs", tarOf(t, entry{"other", tar.TypeReg, "", "o"}), PutOptions{}))
	wantFile(t, filepath.Join(dir, "etc/other"), "o", 7, 8)
	if _, err := os.Lstat(filepath.Join(dir, "d/sub/x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an entry under a mount was written: %v", err)
	}
}

// TestExportStaysOnTheRoot: Export names what the root holds relative to
// it and leaves out what mounts in it hold: a tmpfs on a directory (its
// entry stays) and a bind-mounted file (left out). The mounts are made in
// a mount namespace of the test's thread, which ends with the test.
func TestExportStaysOnTheRoot(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread and its mount namespace end with the test
	must(t, unix.Unshare(unix.CLONE_NEWNS))
	must(t, unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""))
	r, dir := newRoot(t, hostMaps)
	must(t, os.Mkdir(filepath.Join(dir, "mnt"), 0o755))
	must(t, unix.Mount("tmpfs", filepath.Join(dir, "mnt"), "tmpfs", 0, "mode=0700"))
	must(t, os.WriteFile(filepath.Join(dir, "mnt/inside"), []byte("x"), 0o644))
	must(t, unix.Mount(filepath.Join(filepath.Dir(dir), "secret"), filepath.Join(dir, "etc/hosts"), "", unix.MS_BIND, ""))
	t.Cleanup(func() { // before TempDir's removal
		unix.Unmount(filepath.Join(dir, "etc/hosts"), 0)
		unix.Unmount(filepath.Join(dir, "mnt"), 0)
	})
	var buf bytes.Buffer
	must(t, r.Export(&buf))
	got := map[string]bool{}
	tr := tar.NewReader(&buf)
	for hdr, err := tr.Next(); err == nil; hdr, err = tr.Next() {
		got[hdr.Name] = true
	}
	for _, n := range []string{"abs", "d/", "d/sub/f", "etc/", "etc/passwd", "mnt/"} {
		if !got[n] {
			t.Errorf("Export has no %s: %v", n, got)
		}
	}
	for _, n := range []string{"/", "./", "mnt/inside", "etc/hosts"} {
		if got[n] {
			t.Errorf("Export has %s: %v", n, got)
		}
	}
}
