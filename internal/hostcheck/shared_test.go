package hostcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-project/cove/spec"
)

// TestSharedDisks: an image one VM writes may be opened by no other VM
// (as a disk, read-only or not, or as a base), also through a symbolic
// link; images only read, and bases, may be shared; a run's check names
// only the run's conflicts.
func TestSharedDisks(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "x.img")
	link := filepath.Join(dir, "link.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(img, link); err != nil {
		t.Fatal(err)
	}
	vm := func(name, disk string) *spec.Spec {
		t.Helper()
		p := filepath.Join(dir, name+".toml")
		text := "version = 1\nkind = \"vm\"\n[vm]\nmachine = \"q35\"\nkernel = \"/k\"\n\n[[vm.disk]]\n" + disk + "\n"
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := spec.Load(p, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	writes := func(p string) string { return "path = \"" + p + "\"\nformat = \"raw\"" }
	reads := func(p string) string { return writes(p) + "\nread_only = true" }
	base := func(p string) string { return "base = \"" + p + "\"\nformat = \"raw\"" }
	for _, c := range []struct {
		what, a, b, err string
	}{
		{"two writers", writes(img), writes(img), "b.toml:8:1: vm.disk[1].path: " + img + " is also a writable disk of VM a"},
		{"a writer and a reader", writes(img), reads(img), "b.toml:8:1: vm.disk[1].path: " + img + " is also a writable disk of VM a"},
		{"a reader and a writer", reads(img), writes(img), "is also read (read-only, or as a base) by VM a"},
		{"a base and a writer", base(img), writes(img), "is also read (read-only, or as a base) by VM a"},
		{"a writer through a link", writes(img), writes(link), "vm.disk[1].path: " + img + " is also a writable disk of VM a"},
		{"two readers", reads(img), reads(link), ""},
		{"two overlays of one base", base(img), base(link), ""},
	} {
		err := SharedDisks([]*spec.Spec{vm("a", c.a), vm("b", c.b)})
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.what, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v, want an error with %q", c.what, err, c.err)
		}
	}
	a, b, run := vm("a", writes(img)), vm("b", writes(img)), vm("run", reads(filepath.Join(dir, "other.img")))
	if err := SharedDisksWith(run, []*spec.Spec{a, b}); err != nil {
		t.Errorf("a run without a conflict of its own: %v", err)
	}
	if err := SharedDisksWith(vm("run", reads(img)), []*spec.Spec{a}); err == nil || !strings.Contains(err.Error(), "run.toml:8:1: vm.disk[1].path") {
		t.Errorf("a run reading a declared VM's disk: %v", err)
	}
}
