package layer

import (
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// wantWhiteout checks that name is an overlayfs whiteout: a 0:0
// character device.
func wantWhiteout(t *testing.T, name string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		t.Errorf("whiteout %s: %v", name, err)
	} else if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout %s: mode %#o rdev %#x, want a 0:0 character device", name, st.Mode, st.Rdev)
	}
}

// wantOpaque checks that the directory name is (or is not) overlayfs
// opaque.
func wantOpaque(t *testing.T, name string, want bool) {
	t.Helper()
	got, err := getxattr(name, "trusted.overlay.opaque")
	if want && got != "y" || !want && err != unix.ENODATA {
		t.Errorf("%s: trusted.overlay.opaque = %q (%v), want opaque %v", name, got, err, want)
	}
}

// TestWhiteout checks that ".wh.NAME" becomes a 0:0 character device
// NAME (in the root and in a directory the layer does not list) and that
// no ".wh." file is made.
func TestWhiteout(t *testing.T) {
	dir := mustUnpack(t, regEnt(".wh.gone", ""), regEnt("etc/.wh.passwd", ""))
	wantWhiteout(t, filepath.Join(dir, "gone"))
	wantWhiteout(t, filepath.Join(dir, "etc/passwd"))
	if got := listDir(t, dir); !slices.Equal(got, []string{"etc", "gone"}) {
		t.Errorf("layer root holds %v, want [etc gone]", got)
	}
}

// TestOpaque checks an opaque marker both before its directory's entry
// (the directory is made for it, and the entry then sets its attributes)
// and after the directory's contents: either way the directory is
// opaque, keeps its contents, and the marker itself is not made.
func TestOpaque(t *testing.T) {
	first := dirEnt("first")
	first.Mode = 0o700
	dir := mustUnpack(t,
		regEnt("first/.wh..wh..opq", ""), first, regEnt("first/f", "x"),
		dirEnt("last"), regEnt("last/f", "x"), regEnt("last/.wh..wh..opq", ""),
		dirEnt("plain"),
	)
	for _, d := range []string{"first", "last"} {
		wantOpaque(t, filepath.Join(dir, d), true)
		if got := listDir(t, filepath.Join(dir, d)); !slices.Equal(got, []string{"f"}) {
			t.Errorf("%s holds %v, want [f]", d, got)
		}
	}
	wantStat(t, "first", lstatT(t, filepath.Join(dir, "first")), unix.S_IFDIR|0o700, 0, 0)
	wantOpaque(t, filepath.Join(dir, "plain"), false)
}

// TestWhiteoutInSameLayer checks a whiteout and an entry of the same
// name in one layer, in both orders. Per the OCI spec a whiteout applies
// only to lower layers, so the entry stays; and since the lower
// directory of that name is deleted, a directory there becomes opaque.
func TestWhiteoutInSameLayer(t *testing.T) {
	dir := mustUnpack(t,
		regEnt("f1", "kept"), regEnt(".wh.f1", ""),
		regEnt(".wh.f2", ""), regEnt("f2", "replaces the whiteout"),
		dirEnt("d1"), regEnt("d1/x", ""), regEnt(".wh.d1", ""),
		regEnt(".wh.d2", ""), dirEnt("d2"),
	)
	for _, f := range []string{"f1", "f2"} {
		wantStat(t, f, lstatT(t, filepath.Join(dir, f)), unix.S_IFREG|0o644, 0, 0)
	}
	for _, d := range []string{"d1", "d2"} {
		wantStat(t, d, lstatT(t, filepath.Join(dir, d)), unix.S_IFDIR|0o755, 0, 0)
		wantOpaque(t, filepath.Join(dir, d), true)
	}
	if got := listDir(t, filepath.Join(dir, "d1")); !slices.Equal(got, []string{"x"}) {
		t.Errorf("d1 holds %v, want [x]", got)
	}
}
