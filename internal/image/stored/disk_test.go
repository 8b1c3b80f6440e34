package stored

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// diskLayer is one layer's /disk for TestDiskFile: files (name → content,
// "" for a whiteout), whether /disk is opaque, or a symlink instead.
type diskLayer struct {
	files   map[string]string
	opaque  bool
	symlink string
}

// TestDiskFile: an image's disk file is the one regular file of /disk as
// its layers merge it; whiteouts and an opaque /disk hide lower entries;
// a symbolic link for /disk or in it, two files, or none are refused.
func TestDiskFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("whiteouts (device nodes) and trusted xattrs need root")
	}
	for _, c := range []struct {
		name   string
		layers []diskLayer // bottom first
		want   string      // the file's name, or an error's text
	}{
		{"one", []diskLayer{{files: map[string]string{"d.qcow2": "x"}}}, "d.qcow2"},
		{"replaced upper", []diskLayer{{files: map[string]string{"old.qcow2": "x"}}, {files: map[string]string{"old.qcow2": "", "new.qcow2": "y"}}}, "new.qcow2"},
		{"opaque upper", []diskLayer{{files: map[string]string{"old.qcow2": "x"}}, {files: map[string]string{"new.qcow2": "y"}, opaque: true}}, "new.qcow2"},
		{"two", []diskLayer{{files: map[string]string{"a.qcow2": "x"}}, {files: map[string]string{"b.qcow2": "y"}}}, "holds 2 files"},
		{"only whited out", []diskLayer{{files: map[string]string{"d.qcow2": "x"}}, {files: map[string]string{"d.qcow2": ""}}}, "holds 0 files"},
		{"none", []diskLayer{{}}, "holds 0 files"},
		{"symlinked dir", []diskLayer{{symlink: "/etc"}}, "not a directory"},
		{"symlinked file", []diskLayer{{files: map[string]string{"d.qcow2": "->/etc/shadow"}}}, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, rec := diskImage(t, c.layers)
			got, err := s.DiskFile(rec)
			switch {
			case err != nil && !strings.Contains(err.Error(), c.want):
				t.Errorf("DiskFile: %v; want %q", err, c.want)
			case err == nil && filepath.Base(got) != c.want:
				t.Errorf("DiskFile = %s; want %s", got, c.want)
			}
		})
	}
}

// diskImage makes a store holding an image of layers and returns both.
func diskImage(t *testing.T, layers []diskLayer) (*Store, ImageRecord) {
	t.Helper()
	s, err := Open(t.TempDir(), &Registries{})
	if err != nil {
		t.Fatal(err)
	}
	var rec ImageRecord
	for i, l := range layers {
		h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i+1)}
		rec.Layers = append(rec.Layers, LayerRecord{DiffID: h})
		makeDiskLayer(t, filepath.Join(s.LayerDir(h), DiskDir), l)
	}
	return s, rec
}

// makeDiskLayer writes one layer's /disk at dir.
func makeDiskLayer(t *testing.T, dir string, l diskLayer) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if l.symlink != "" {
		if err := os.Symlink(l.symlink, dir); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range l.files {
		p := filepath.Join(dir, name)
		var err error
		switch target, link := strings.CutPrefix(body, "->"); {
		case body == "":
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		case link:
			err = os.Symlink(target, p)
		default:
			err = os.WriteFile(p, []byte(body), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if l.opaque {
		if err := unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			t.Fatal(err)
		}
	}
}
