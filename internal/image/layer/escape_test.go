package layer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEscapesRefused unpacks layers that try to write outside the layer
// directory (by name, through symlinks the layer made, or by hard link) or
// to replace its root, and checks that each fails, naming the entry, and
// that nothing outside changed: the layer's parent (a fresh temporary
// directory) still holds only the layer and the file "outside", which
// still has one link, and no opaque xattr; the layer's first entry "f" is
// intact.
func TestEscapesRefused(t *testing.T) {
	f := regEnt("f", "inside")
	for _, c := range []struct {
		name  string
		ents  func(parent string) []ent
		entry string // the entry the error names
		want  error  // what the error wraps
	}{
		{"dotdot", nil1(regEnt("../x", "")), "../x", ErrRefused},
		{"inner dotdot", nil1(regEnt("a/../../x", "")), "a/../../x", ErrRefused},
		{"absolute dotdot", nil1(regEnt("/../x", "")), "/../x", ErrRefused},
		{"dotdot dir", nil1(dirEnt("../d")), "../d", ErrRefused},
		{"dotdot symlink", nil1(symEnt("./../s", "/")), "./../s", ErrRefused},
		{"dotdot whiteout", nil1(regEnt("../.wh.outside", "")), "../.wh.outside", ErrRefused},
		{"file through symlink to /", func(p string) []ent {
			return []ent{symEnt("a", "/"), regEnt("a"+p+"/escaped", "")}
		}, "a" + "<parent>/escaped", ErrRefused},
		{"file through symlink to ..", nil2(symEnt("a", ".."), regEnt("a/escaped", "")), "a/escaped", ErrRefused},
		{"file through symlink to ../../..", func(p string) []ent {
			return []ent{symEnt("a", "../../.."), regEnt("a"+p+"/escaped", "")}
		}, "a" + "<parent>/escaped", ErrRefused},
		{"symlink chain", func(p string) []ent {
			return []ent{symEnt("a", "b"), symEnt("b", p), regEnt("a/escaped", "")}
		}, "a/escaped", ErrRefused},
		{"dir through symlink", symTo("a/newdir", dirEnt), "a/newdir", ErrRefused},
		{"symlink through symlink", symTo("a/s", func(n string) ent { return symEnt(n, "/") }), "a/s", ErrRefused},
		{"whiteout through symlink", symTo("a/.wh.outside", func(n string) ent { return regEnt(n, "") }), "a/.wh.outside", ErrRefused},
		{"opaque through symlink", symTo("a/.wh..wh..opq", func(n string) ent { return regEnt(n, "") }), "a/.wh..wh..opq", ErrRefused},
		{"hard link through symlink", symTo("a/h", func(n string) ent { return linkEnt(n, "f") }), "a/h", ErrRefused},
		{"hard link to ../outside", nil1(linkEnt("h", "../outside")), "h", ErrRefused},
		{"hard link to /etc/passwd", nil1(linkEnt("h", "/etc/passwd")), "h", unix.ENOENT},
		{"hard link via symlinked dir", func(p string) []ent {
			return []ent{symEnt("s", p), linkEnt("h", "s/outside")}
		}, "h", ErrRefused},
		{"hard link to a directory", nil2(dirEnt("d"), linkEnt("h", "d")), "h", ErrRefused},
		{"hard link to the root", nil1(linkEnt("h", "./")), "h", ErrRefused},
		{"hard link to itself", nil1(linkEnt("f", "./f")), "f", ErrRefused},
		{"hard link as the root", nil1(linkEnt("./", "f")), "./", ErrRefused},
		{"file as the root", nil1(regEnt("a/..", "x")), "a/..", ErrRefused},
	} {
		t.Run(c.name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("unpacking a layer needs root")
			}
			probe := t.TempDir() // the layer's parent, which its symlinks aim at
			ents := append([]ent{f}, c.ents(probe)...)
			_, parent, _, err := unpackInParent(t, probe, layerTar(t, ents...))
			entry := strings.ReplaceAll(c.entry, "<parent>", probe)
			if !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), `layer entry "`+entry+`": `) {
				t.Errorf("Unpack = %v, want an error about entry %q wrapping %v", err, entry, c.want)
			}
			wantUntouched(t, parent)
			if data, err := os.ReadFile(filepath.Join(parent, "layer/f")); string(data) != "inside" {
				t.Errorf("layer/f = %q (%v), want the layer's own file intact", data, err)
			}
		})
	}
}

// nil1 and nil2 make an escape case of fixed entries.
func nil1(e ent) func(string) []ent    { return func(string) []ent { return []ent{e} } }
func nil2(a, b ent) func(string) []ent { return func(string) []ent { return []ent{a, b} } }

// symTo makes an escape case: the symlink "a" to the parent, then the
// entry mk(name), whose path goes through "a".
func symTo(name string, mk func(string) ent) func(string) []ent {
	return func(p string) []ent { return []ent{symEnt("a", p), mk(name)} }
}

// unpackInParent unpacks stream into parent/layer, parent holding
// "outside" (one line, one link) beside it.
func unpackInParent(t *testing.T, parent string, stream []byte) (string, string, Stats, error) {
	t.Helper()
	dir := filepath.Join(parent, "layer")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "outside"), []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Unpack(dir, strings.NewReader(string(stream)), Limits{})
	return dir, parent, st, err
}

// wantUntouched checks that parent holds only "layer" and "outside",
// unchanged, and has no opaque xattr.
func wantUntouched(t *testing.T, parent string) {
	t.Helper()
	if got := listDir(t, parent); !slices.Equal(got, []string{"layer", "outside"}) {
		t.Errorf("the layer's parent holds %v, want [layer outside]", got)
	}
	st := lstatT(t, filepath.Join(parent, "outside"))
	data, _ := os.ReadFile(filepath.Join(parent, "outside"))
	if st.Nlink != 1 || st.Mode != unix.S_IFREG|0o644 || string(data) != "outside\n" {
		t.Errorf("outside: nlink %d mode %#o data %q: changed", st.Nlink, st.Mode, data)
	}
	if v, err := getxattr(parent, "trusted.overlay.opaque"); err != unix.ENODATA {
		t.Errorf("the parent got trusted.overlay.opaque = %q (%v)", v, err)
	}
}

// TestHardLinks checks hard links that stay inside: a link by absolute
// name to a file of the layer (not the host's), and a link to a symlink,
// which links the symlink itself.
func TestHardLinks(t *testing.T) {
	dir := mustUnpack(t, regEnt("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), linkEnt("passwd", "/etc/passwd"),
		symEnt("s", "/etc/passwd"), linkEnt("s2", "./s"))
	if a, b := lstatT(t, filepath.Join(dir, "etc/passwd")), lstatT(t, filepath.Join(dir, "passwd")); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("passwd is not a second link to etc/passwd")
	}
	st := lstatT(t, filepath.Join(dir, "s2"))
	if st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Ino != lstatT(t, filepath.Join(dir, "s")).Ino {
		t.Errorf("s2: mode %#o, want a link to the symlink s", st.Mode)
	}
}

// TestSymlinkNeverFollowed checks that a path through a symlink is
// refused even when the symlink stays inside the layer ("a -> d", then
// "a/x"): the entry would otherwise land under another name.
func TestSymlinkNeverFollowed(t *testing.T) {
	dir, _, _, err := unpackTar(t, layerTar(t, dirEnt("d"), symEnt("a", "d"), regEnt("a/x", "")), Limits{})
	if !errors.Is(err, ErrRefused) || !errors.Is(err, unix.ELOOP) {
		t.Errorf("Unpack = %v, want ErrRefused wrapping ELOOP", err)
	}
	if got := listDir(t, filepath.Join(dir, "d")); len(got) != 0 {
		t.Errorf("d holds %v through the symlink a", got)
	}
}
