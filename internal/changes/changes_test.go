package changes

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestOf: a writable layer with a changed file, a new directory, a
// whiteout, an opaque directory and a symlink over an image directory,
// against two layers, one of which has a symlink where the other has a
// directory.
func TestOf(t *testing.T) {
	base := t.TempDir()
	lower, top, upper := filepath.Join(base, "lower"), filepath.Join(base, "top"), filepath.Join(base, "upper")
	for _, d := range []string{"lower/etc", "lower/usr/lib", "lower/opq", "top/var", "upper/etc", "upper/new/sub", "upper/var", "upper/lib", "upper/opq"} {
		must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	must(t, os.Symlink("/", filepath.Join(top, "escape")))                                        // a layer's symlink is never followed
	must(t, os.WriteFile(filepath.Join(base, "lower/etc/hosts"), nil, 0o644))                     // changed
	must(t, os.WriteFile(filepath.Join(base, "lower/etc/gone"), nil, 0o644))                      // deleted
	must(t, os.WriteFile(filepath.Join(upper, "etc/hosts"), []byte("x"), 0o644))                  // C
	must(t, unix.Mknod(filepath.Join(upper, "etc/gone"), unix.S_IFCHR, 0))                        // D
	must(t, os.WriteFile(filepath.Join(upper, "new/sub/f"), nil, 0o644))                          // A, A, A
	must(t, os.WriteFile(filepath.Join(upper, "var/log"), nil, 0o644))                            // C /var, A /var/log
	must(t, os.MkdirAll(filepath.Join(upper, "escape/tmp"), 0o755))                               // /escape is top's symlink: C; /escape/tmp not through it: A
	must(t, os.Symlink("/etc/hosts", filepath.Join(upper, "lib/link")))                           // A /lib (no layer has it), A /lib/link
	must(t, unix.Setxattr(filepath.Join(upper, "opq"), "trusted.overlay.opaque", []byte("y"), 0)) // rm -rf /opq; mkdir /opq: D
	got, err := Of(upper, []string{top, lower})
	must(t, err)
	want := []Change{
		{"/escape", Modified}, {"/escape/tmp", Added},
		{"/etc", Modified}, {"/etc/gone", Deleted}, {"/etc/hosts", Modified},
		{"/lib", Added}, {"/lib/link", Added},
		{"/new", Added}, {"/new/sub", Added}, {"/new/sub/f", Added}, {"/opq", Deleted},
		{"/var", Modified}, {"/var/log", Added},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Of =\n%v\nwant\n%v", got, want)
	}
	if got, err := Of(filepath.Join(base, "none"), nil); err != nil || len(got) != 0 {
		t.Errorf("Of a writable layer not made yet = %v, %v; want none", got, err)
	}
}

// TestOfLeavesOutCopiedUpDirectories: a directory the writable layer
// holds only because a change is under it, with the image's size, mode
// and time, is no change (Docker's rule), unless an entry in it was
// added or deleted; one whose mode changed is.
func TestOfLeavesOutCopiedUpDirectories(t *testing.T) {
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	for _, d := range []string{"lower/a/b", "lower/c", "lower/m", "upper/a/b", "upper/c", "upper/m"} {
		must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	for _, f := range []string{"a/b/file", "c/old", "m/x"} {
		must(t, os.WriteFile(filepath.Join(lower, f), nil, 0o644))
		must(t, os.WriteFile(filepath.Join(upper, f), []byte("changed"), 0o644)) // C
	}
	must(t, os.Remove(filepath.Join(upper, "c/old")))
	must(t, unix.Mknod(filepath.Join(upper, "c/old"), unix.S_IFCHR, 0)) // D: /c listed for it
	must(t, os.Chmod(filepath.Join(upper, "m"), 0o700))                 // C: its mode changed
	when := time.Unix(1700000000, 0)
	for _, d := range []string{"a", "a/b", "c", "m"} { // as a copy-up leaves them: the image's time
		must(t, os.Chtimes(filepath.Join(lower, d), when, when))
		must(t, os.Chtimes(filepath.Join(upper, d), when, when))
	}
	got, err := Of(upper, []string{lower})
	must(t, err)
	want := []Change{{"/a/b/file", Modified}, {"/c", Modified}, {"/c/old", Deleted}, {"/m", Modified}, {"/m/x", Modified}}
	if !slices.Equal(got, want) {
		t.Errorf("Of =\n%v\nwant\n%v", got, want)
	}
}
