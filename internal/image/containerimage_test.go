package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/image/stored"
)

// writableLayer makes an overlayfs upper directory as a container with
// host IDs from 100000 leaves it over threeLayers: a new file owned by
// the container's uid 5, a file of the image deleted (a 0:0 character
// device) and a directory made opaque.
func writableLayer(t *testing.T) string {
	t.Helper()
	up := filepath.Join(t.TempDir(), "upper")
	for _, d := range []string{up, up + "/etc", up + "/opq"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(up+"/etc/made", []byte("made\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(up+"/etc/made", 100005, 100006); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(up+"/etc/base", unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(up+"/opq", stored.OpaqueXattr, []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{up, up + "/etc", up + "/opq"} { // the container's root's; the whiteout stays root's, as overlayfs makes it
		if err := os.Lchown(p, 100000, 100000); err != nil {
			t.Fatal(err)
		}
	}
	return up
}

// ociBase is a store holding threeLayers as the OCI image
// localhost/base:1, and its record.
func ociBase(t *testing.T) (*Store, ImageRecord) {
	t.Helper()
	needRoot(t)
	s := newStore(t, nil)
	img, _ := threeLayerImage(t, true, ociGzip)
	return s, importOne(t, s, ociLayout(t, img), ImportOptions{Name: "base:1"})
}

// TestCommitContainer commits a writable layer onto an imported image:
// the new image has the base's layers and one more, unpacked like any
// layer (the file with the container's owner, the whiteout, the opaque
// directory), the configuration given, one history entry more, its name,
// and nothing is left in tmp/.
func TestCommitContainer(t *testing.T) {
	needRoot(t)
	s := newStore(t, nil)
	img, _ := threeLayerImage(t, false, dockerGzip)
	base := importOne(t, s, dockerArchive(t, img, false), ImportOptions{Name: "base:1"})
	cfg := v1.Config{Cmd: []string{"/app"}, Env: []string{"A=1"}}
	rec, err := s.CommitContainer(context.Background(), CommitOptions{Base: "localhost/base:1", Upper: writableLayer(t), IDs: shifted,
		Config: cfg, Author: "me", Comment: "why", CreatedBy: "sh -c edit", Name: "registry.example:5000/app:2"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Names, []string{"registry.example:5000/app:2"}) || rec.MediaType != types.DockerManifestSchema2 {
		t.Errorf("names %v, media type %s", rec.Names, rec.MediaType)
	}
	if len(rec.Layers) != len(base.Layers)+1 || !reflect.DeepEqual(rec.Layers[:len(base.Layers)], base.Layers) {
		t.Fatalf("layers %v, want the base's %v and one more", rec.Layers, base.Layers)
	}
	c := rec.Config
	h := c.History[len(c.History)-1]
	if !reflect.DeepEqual(c.Config, cfg) || c.Author != "me" || h.Comment != "why" || h.CreatedBy != "sh -c edit" || len(c.RootFS.DiffIDs) != len(rec.Layers) {
		t.Errorf("config %+v, history %+v", c, h)
	}
	top := s.LayerDir(rec.Layers[len(rec.Layers)-1].DiffID)
	var st unix.Stat_t
	if err := unix.Lstat(top+"/etc/made", &st); err != nil || st.Uid != 5 || st.Gid != 6 || st.Mode&0o777 != 0o640 {
		t.Errorf("etc/made: %+v, %v; want 5:6 0640", st, err)
	}
	if err := unix.Lstat(top+"/etc/base", &st); err != nil || !stored.IsWhiteout(st.Mode, st.Rdev) {
		t.Errorf("etc/base is no whiteout: %v", err)
	}
	if v, err := getXattr(xattrSource{path: top + "/opq"}, stored.OpaqueXattr); v != "y" {
		t.Errorf("opq is not opaque: %q %v", v, err)
	}
	if got, err := s.Lookup("registry.example:5000/app:2"); err != nil || got.Digest != rec.Digest {
		t.Errorf("lookup: %v %v", got.Digest, err)
	}
	if left := entries(t, s.TmpDir()); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

// TestCommitContainerRefusesRedirects refuses a writable layer with an
// overlayfs redirect (its directory does not hold what it shows), and
// stores nothing.
func TestCommitContainerRefusesRedirects(t *testing.T) {
	s, _ := ociBase(t)
	up := writableLayer(t)
	if err := unix.Lsetxattr(up+"/opq", overlayRedirect, []byte("/etc"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := s.CommitContainer(context.Background(), CommitOptions{Base: "localhost/base:1", Upper: up, Name: "bad:1"})
	if err == nil || !strings.Contains(err.Error(), overlayRedirect) {
		t.Fatalf("got %v, want the redirect refused", err)
	}
	if _, err := s.Lookup("bad:1"); err == nil {
		t.Error("bad:1 is in the store")
	}
	if left := entries(t, s.TmpDir()); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

// TestCommitContainerNeverStarted commits a container that never ran:
// no layer more (Docker's rule for an empty one), and a history entry
// that says so.
func TestCommitContainerNeverStarted(t *testing.T) {
	s, base := ociBase(t)
	rec, err := s.CommitContainer(context.Background(), CommitOptions{Base: base.Digest.String(), Upper: "/nonexistent/upper"})
	if err != nil {
		t.Fatal(err)
	}
	h := rec.Config.History
	if len(rec.Layers) != 3 || len(rec.Config.RootFS.DiffIDs) != 3 || !h[len(h)-1].EmptyLayer || len(rec.Names) != 0 || rec.MediaType != types.OCIManifestSchema1 {
		t.Errorf("layers %d, diff IDs %d, history %+v, names %v, %s", len(rec.Layers), len(rec.Config.RootFS.DiffIDs), h, rec.Names, rec.MediaType)
	}
	if rec.Digest == base.Digest {
		t.Error("the commit is the base image")
	}
}

// TestCommitContainerRefusesForeignIDs refuses a writable layer with a
// file whose owner the container's user namespace does not map (made
// there by the host), rather than give it another owner.
func TestCommitContainerRefusesForeignIDs(t *testing.T) {
	s, _ := ociBase(t)
	up := writableLayer(t)
	if err := os.Lchown(up+"/etc/made", 0, 0); err != nil {
		t.Fatal(err)
	}
	_, err := s.CommitContainer(context.Background(), CommitOptions{Base: "localhost/base:1", Upper: up, IDs: shifted})
	if err == nil || !strings.Contains(err.Error(), "etc/made") || !strings.Contains(err.Error(), "owner ID 0") {
		t.Fatalf("got %v, want etc/made's owner refused", err)
	}
}

// TestLayerTarOpensNoFIFO writes a FIFO (which no one writes to) as an
// entry without opening it: an open would block.
func TestLayerTarOpensNoFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var buf bytes.Buffer
	go func() { done <- writeLayerTar(context.Background(), dir, &buf, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writeLayerTar blocks on a FIFO")
	}
	hdr, err := tar.NewReader(&buf).Next()
	if err != nil || hdr.Name != "fifo" || hdr.Typeflag != tar.TypeFifo {
		t.Errorf("first entry %+v, %v; want the FIFO", hdr, err)
	}
}

// TestLayerTarRefusesADeepTree refuses a tree deeper than maxLayerDepth
// with an error that names the deepest entry once.
func TestLayerTarRefusesADeepTree(t *testing.T) {
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range maxLayerDepth + 2 { // beyond PATH_MAX by name: made relative to the last
		if err := unix.Mkdirat(int(d.Fd()), "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := os.OpenFile(fdPath(d)+"/d", os.O_RDONLY|unix.O_DIRECTORY, 0)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		d = next
	}
	d.Close()
	err = writeLayerTar(context.Background(), dir, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "directories deep") || len(err.Error()) > 3*(maxLayerDepth+2)+500 {
		t.Fatalf("got an error of %d bytes: %.200v", len(fmt.Sprint(err)), err)
	}
	if err := os.RemoveAll(dir); err != nil { // RemoveAll handles the depth itself
		t.Log(err)
	}
}
