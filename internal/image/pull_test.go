package image

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// events collects a pull's progress events.
type events struct {
	mu  sync.Mutex
	all []Progress
}

func (e *events) add(p Progress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, p)
}

// states are the states seen for the layer with diffID id, in order.
func (e *events) states(id v1.Hash) []LayerState {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []LayerState
	for _, p := range e.all {
		if p.DiffID == id {
			out = append(out, p.State)
		}
	}
	return out
}

// pull pulls ref into s with the test keychain, collecting events.
func pull(t *testing.T, s *Store, ref string, ev *events) (ImageRecord, error) {
	t.Helper()
	opt := PullOptions{Keychain: testKeychain}
	if ev != nil {
		opt.Progress = ev.add
	}
	return s.Pull(context.Background(), ref, opt)
}

// mustPull is pull that fails the test on error.
func mustPull(t *testing.T, s *Store, ref string, ev *events) ImageRecord {
	t.Helper()
	rec, err := pull(t, s, ref, ev)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return rec
}

// threeLayers are a base, an app layer (a setuid file with an xattr, a
// symlink and a hard link to it, a device node) and a layer that whites
// out a base file and makes a base directory opaque, as uncompressed
// tars.
func threeLayers(t *testing.T) [][]byte {
	return [][]byte{
		tarOf(t, dirEntry("etc/"), tfile{name: "etc/base", body: "base\n"}, tfile{name: "etc/gone", body: "x"},
			dirEntry("opq/"), tfile{name: "opq/old", body: "old\n"}),
		appLayer(t, "#!/bin/sh\n"),
		tarOf(t, dirEntry("etc/"), tfile{name: "etc/.wh.gone"}, tfile{name: "etc/top", body: "top\n"},
			dirEntry("opq/"), tfile{name: "opq/.wh..wh..opq"}, tfile{name: "opq/new", body: "new\n"}),
	}
}

// TestPullMultiLayerGzip pulls a three-layer Docker schema 2 image with
// gzip layers and checks the record, the name, the layer directories
// (top first), their contents (a setuid file, a symlink, a whiteout as a
// 0:0 character device), the progress events, and a clean tmp/.
func TestPullMultiLayerGzip(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, false)
	var layers []v1.Layer
	for _, tb := range threeLayers(t) {
		layers = append(layers, mkLayer(t, tb, dockerGzip))
	}
	ref := r.push(t, "test/app:1", mkImage(t, false, "amd64", layers...))
	s := newStore(t, r.registries())
	ev := &events{}
	rec := mustPull(t, s, ref, ev)

	if rec.MediaType != types.DockerManifestSchema2 || len(rec.Layers) != 3 || rec.IndexDigest != nil {
		t.Fatalf("record: media type %s, %d layers, index %v", rec.MediaType, len(rec.Layers), rec.IndexDigest)
	}
	if want := []string{ref}; !slices.Equal(rec.Names, want) {
		t.Errorf("names = %v, want %v", rec.Names, want)
	}
	if got := rec.Config.Config.Cmd; !slices.Equal(got, []string{"/app/run"}) {
		t.Errorf("config Cmd = %v", got)
	}
	dirs, err := s.LayerDirs(rec)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		if want := filepath.Join(s.Root(), "layers", "sha256", diffIDOf(t, l).Hex); dirs[len(dirs)-1-i] != want {
			t.Errorf("layer dir %d = %s, want %s (top first)", len(dirs)-1-i, dirs[len(dirs)-1-i], want)
		}
		if rec.Layers[i].DiffID != diffIDOf(t, l) || rec.Layers[i].Digest != digestOf(t, l) {
			t.Errorf("record layer %d = %+v", i, rec.Layers[i])
		}
		if st := ev.states(diffIDOf(t, l)); st[0] != Waiting || st[len(st)-1] != Done || !slices.Contains(st, Downloading) {
			t.Errorf("layer %d events = %v", i, st)
		}
	}
	checkContents(t, dirs)
	if got := entries(t, s.TmpDir()); len(got) != 0 {
		t.Errorf("tmp/ after the pull holds %v", got)
	}
}

// checkContents checks the unpacked layers of threeLayers (top first).
func checkContents(t *testing.T, dirs []string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(dirs[2], "etc/base")); err != nil || string(b) != "base\n" {
		t.Errorf("base layer etc/base = %q, %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(dirs[1], "app/run")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("app/run: %v, %v (want setuid)", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dirs[1], "app/link")); err != nil || l != "run" {
		t.Errorf("app/link -> %q, %v", l, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dirs[0], "etc/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout etc/gone: mode %o rdev %d, %v (want a 0:0 character device)", st.Mode, st.Rdev, err)
	}
	checkAppLayer(t, dirs[1])
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dirs[0], "opq"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque opq/: trusted.overlay.opaque = %q, %v (want y)", buf[:max(n, 0)], err)
	}
	if _, err := os.Lstat(filepath.Join(dirs[0], "opq/.wh..wh..opq")); !os.IsNotExist(err) {
		t.Errorf("opq/.wh..wh..opq unpacked as a file: %v", err)
	}
}

// appLayer is threeLayers' app layer with app/run holding body.
func appLayer(t *testing.T, body string) []byte {
	return tarOf(t, dirEntry("app/"), tfile{name: "app/run", body: body, mode: 0o4755, xattrs: map[string]string{"user.cove": "app"}},
		tfile{name: "app/link", typ: tar.TypeSymlink, link: "run"}, tfile{name: "app/hard", typ: tar.TypeLink, link: "app/run"},
		tfile{name: "app/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3})
}

// checkAppLayer checks threeLayers' app layer unpacked in dir: the
// setuid file's xattr, its hard link (one inode) and the device node.
func checkAppLayer(t *testing.T, dir string) {
	t.Helper()
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "app/run"), "user.cove", buf); err != nil || string(buf[:n]) != "app" {
		t.Errorf("app/run's xattr user.cove = %q, %v (want app)", buf[:max(n, 0)], err)
	}
	var run, hard, null unix.Stat_t
	if err := errors.Join(unix.Lstat(filepath.Join(dir, "app/run"), &run), unix.Lstat(filepath.Join(dir, "app/hard"), &hard)); err != nil || run.Ino != hard.Ino || run.Nlink != 2 {
		t.Errorf("app/hard: inode %d, app/run: inode %d with %d links, %v (want one inode, two links)", hard.Ino, run.Ino, run.Nlink, err)
	}
	if err := unix.Lstat(filepath.Join(dir, "app/null"), &null); err != nil || null.Mode&unix.S_IFMT != unix.S_IFCHR || null.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("app/null: mode %o rdev %d, %v (want character device 1:3)", null.Mode, null.Rdev, err)
	}
}

// TestPullFormats pulls each layer compression (gzip, zstd, none) under
// Docker schema 2 and OCI media types.
func TestPullFormats(t *testing.T) {
	r, s := registryAndStore(t)
	cases := []struct {
		form string
		oci  bool
		mt   types.MediaType
	}{
		{dockerGzip, false, types.DockerManifestSchema2},
		{dockerTar, false, types.DockerManifestSchema2},
		{ociGzip, true, types.OCIManifestSchema1},
		{ociZstd, true, types.OCIManifestSchema1},
		{ociTar, true, types.OCIManifestSchema1},
	}
	for _, c := range cases {
		t.Run(c.form, func(t *testing.T) {
			var layers []v1.Layer
			for i, tb := range threeLayers(t) {
				if i == 1 { // make this image's layers its own
					tb = appLayer(t, c.form)
				}
				layers = append(layers, mkLayer(t, tb, c.form))
			}
			rec := mustPull(t, s, r.push(t, "test/"+c.form+":1", mkImage(t, c.oci, "amd64", layers...)), nil)
			if rec.MediaType != c.mt {
				t.Errorf("manifest media type %s, want %s", rec.MediaType, c.mt)
			}
			l0 := rec.Layers[0].MediaType
			if want, _ := layers[0].MediaType(); l0 != want {
				t.Errorf("layer media type %s, want %s", l0, want)
			}
			dirs, err := s.LayerDirs(rec)
			if err != nil {
				t.Fatal(err)
			}
			checkContents(t, dirs)
		})
	}
}

// TestPullIndexPicksHost pulls a multi-arch index (OCI, then Docker
// manifest list) and gets the host's image.
func TestPullIndexPicksHost(t *testing.T) {
	r, s := registryAndStore(t)
	host, other := hostAndOtherArch()
	for _, docker := range []bool{false, true} {
		hostImg := mkImage(t, !docker, host, mkLayer(t, tarOf(t, tfile{name: "arch", body: host}), ociGzip))
		otherImg := mkImage(t, !docker, other, mkLayer(t, tarOf(t, tfile{name: "arch", body: other}), ociGzip))
		idx := mkIndex(t, docker, map[string]v1.Image{other: otherImg, host: hostImg})
		ref := r.pushIndex(t, "test/multi:"+map[bool]string{false: "oci", true: "docker"}[docker], idx)
		rec := mustPull(t, s, ref, nil)
		hd, _ := hostImg.Digest()
		id, _ := idx.Digest()
		if rec.Digest != hd || rec.IndexDigest == nil || *rec.IndexDigest != id || rec.Platform.Architecture != host {
			t.Fatalf("pulled %s (index %v, %s), want %s from index %s", rec.Digest, rec.IndexDigest, rec.Platform, hd, id)
		}
		dirs, err := s.LayerDirs(rec)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dirs[0], "arch")); string(b) != host {
			t.Errorf("unpacked layer says %q, want %q", b, host)
		}
		byIndex, err := s.Lookup(r.host + "/test/multi@" + id.String())
		if err != nil || byIndex.Digest != hd {
			t.Errorf("lookup by index digest: %v, %v", byIndex.Digest, err)
		}
	}
}

// TestSharedLayerStoredOnce pulls two images that share a base layer:
// three layer directories, not four; the second pull finds the base.
func TestSharedLayerStoredOnce(t *testing.T) {
	r, s := registryAndStore(t)
	base := mkLayer(t, tarOf(t, tfile{name: "base", body: "base"}), ociGzip)
	a := r.push(t, "test/a:1", mkImage(t, true, "amd64", base, mkLayer(t, tarOf(t, tfile{name: "a", body: "a"}), ociGzip)))
	b := r.push(t, "test/b:1", mkImage(t, true, "amd64", base, mkLayer(t, tarOf(t, tfile{name: "b", body: "b"}), ociZstd)))
	mustPull(t, s, a, nil)
	ev := &events{}
	mustPull(t, s, b, ev)
	if got := entries(t, s.LayersDir()); len(got) != 3 {
		t.Errorf("layers/ holds %d directories, want 3: %v", len(got), got)
	}
	if st := ev.states(diffIDOf(t, base)); !slices.Equal(st, []LayerState{Waiting, AlreadyExists}) {
		t.Errorf("shared layer in the second pull: %v, want waiting, already-exists", st)
	}
}

// TestSecondPullIsNoop pulls an image twice: the second downloads
// nothing, and keeps the record as it was.
func TestSecondPullIsNoop(t *testing.T) {
	r, s := registryAndStore(t)
	var layers []v1.Layer
	for _, tb := range threeLayers(t) {
		layers = append(layers, mkLayer(t, tb, ociGzip))
	}
	ref := r.push(t, "test/app:1", mkImage(t, true, "amd64", layers...))
	first := mustPull(t, s, ref, nil)
	ev := &events{}
	second := mustPull(t, s, ref, ev)
	for _, p := range ev.all {
		if p.State != Waiting && p.State != AlreadyExists {
			t.Errorf("second pull: %s %s", p.State, p.Digest)
		}
	}
	if len(ev.all) != 2*len(layers) {
		t.Errorf("second pull: %d events, want %d", len(ev.all), 2*len(layers))
	}
	if !second.Created.Equal(first.Created) || second.Digest != first.Digest {
		t.Errorf("record changed: %v %s → %v %s", first.Created, first.Digest, second.Created, second.Digest)
	}
}

// hostAndOtherArch are this host's architecture and another one.
func hostAndOtherArch() (string, string) {
	host := hostPlatform().Architecture
	if host == "arm64" {
		return host, "amd64"
	}
	return host, "arm64"
}

func hostPlatform() v1.Platform { return PullOptions{}.platform() }

// assertNothingAdded checks that a failed pull left nothing visible
// (assertNothingVisible) and cleaned up its work in tmp/.
func assertNothingAdded(t *testing.T, s *Store, layersBefore []string) {
	t.Helper()
	assertNothingVisible(t, s, layersBefore)
	if got := entries(t, s.TmpDir()); len(got) != 0 {
		t.Errorf("tmp/ = %v, want nothing", got)
	}
}

// assertNothingVisible checks that layers/ is as before and that there
// is no record and no name.
func assertNothingVisible(t *testing.T, s *Store, layersBefore []string) {
	t.Helper()
	if got := entries(t, s.LayersDir()); !slices.Equal(got, layersBefore) {
		t.Errorf("layers/ = %v, want %v", got, layersBefore)
	}
	if got := entries(t, s.ImagesDir()); len(got) != 0 {
		t.Errorf("images/ = %v, want nothing", got)
	}
	if names, err := s.ReadNames(); err != nil || len(names) != 0 {
		t.Errorf("names = %v, %v, want none", names, err)
	}
}

// wantErr fails unless err mentions every one of subs.
func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", subs)
	}
	t.Logf("refused as expected: %v", err)
	for _, sub := range subs {
		if !strings.Contains(err.Error(), sub) {
			t.Errorf("error %q does not mention %q", err, sub)
		}
	}
}
