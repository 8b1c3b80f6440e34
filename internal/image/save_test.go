package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/sys/unix"
)

// richLayers are two layers with every kind of entry a layer holds: a
// base with owners, a setuid file, sub-second times, a user xattr, a
// symlink, hard links (to a file, to the symlink), a device and a FIFO;
// and a top layer with a
// whiteout, an opaque directory and a new file.
func richLayers(t *testing.T) [][]byte {
	t.Helper()
	mtime := time.Unix(1700000000, 123456789)
	base := []*tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/passwd", Mode: 0o644, Size: 5},
		{Name: "etc/gone", Mode: 0o644, Size: 5},
		{Name: "etc/opq/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 7},
		{Name: "etc/opq/old", Mode: 0o644, Size: 5},
		{Name: "usr/bin/tool", Mode: 0o4755, Size: 5},
		{Name: "home/u/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000},
		{Name: "home/u/f", Mode: 0o600, Uid: 1000, Gid: 100, Size: 5, PAXRecords: map[string]string{paxXattrPrefix + "user.note": "hi"}},
		{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: "etc/passwd", Uid: 3},
		{Name: "hard", Typeflag: tar.TypeLink, Linkname: "etc/passwd"},
		{Name: "hardlnk", Typeflag: tar.TypeLink, Linkname: "lnk"},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o640},
	}
	top := []*tar.Header{
		{Name: "etc/.wh.gone", Size: 0},
		{Name: "etc/opq/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/opq/.wh..wh..opq"},
		{Name: "etc/opq/new", Mode: 0o644, Size: 5},
		{Name: "app/run", Mode: 0o755, Size: 5},
	}
	return [][]byte{tarHeaders(t, mtime, base), tarHeaders(t, mtime, top)}
}

// tarHeaders is a tar of hdrs, each regular file holding Size bytes of
// its name.
func tarHeaders(t *testing.T, mtime time.Time, hdrs []*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		h.ModTime, h.Format = mtime, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(tw, "%-*.*s", h.Size, h.Size, filepath.Base(h.Name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// save saves refs from s into a file in format.
func save(t *testing.T, s *Store, format string, refs ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "saved.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.Save(context.Background(), f, refs, format); err != nil {
		t.Fatalf("save %v: %v", refs, err)
	}
	return p
}

// TestSaveImportRoundTrip pulls an image of richLayers, saves it in each
// format, and imports the archive into another store: every layer holds
// the same files (contents, modes, owners, times, symlinks, hard links,
// devices, xattrs, whiteouts, opaque directories), the config is the
// same but for its diff_ids, and the name is the local one. A second
// round trip gives the same layer digests.
func TestSaveImportRoundTrip(t *testing.T) {
	r, s := registryAndStore(t)
	var layers []v1.Layer
	for _, tb := range richLayers(t) {
		layers = append(layers, mkLayer(t, tb, ociGzip))
	}
	ref := r.push(t, "test/rt:1", mkImage(t, true, hostPlatform().Architecture, layers...))
	orig := mustPull(t, s, ref, nil)
	for _, format := range []string{FormatDockerArchive, FormatOCIArchive} {
		t.Run(format, func(t *testing.T) {
			s2 := newStore(t, nil)
			rec := importOne(t, s2, save(t, s, format, ref), ImportOptions{})
			if !slices.Equal(rec.Names, []string{"localhost/test/rt:1"}) || !slices.Equal(rec.Config.Config.Cmd, orig.Config.Config.Cmd) {
				t.Errorf("imported %v with Cmd %v", rec.Names, rec.Config.Config.Cmd)
			}
			sameLayers(t, s, orig, s2, rec)
			s3 := newStore(t, nil)
			again := importOne(t, s3, save(t, s2, format, "localhost/test/rt:1"), ImportOptions{})
			for i := range rec.Layers {
				if again.Layers[i].DiffID != rec.Layers[i].DiffID {
					t.Errorf("layer %d: second round trip %s, first %s", i, again.Layers[i].DiffID, rec.Layers[i].DiffID)
				}
			}
			if got := entries(t, s.TmpDir()); len(got) != 0 {
				t.Errorf("tmp/ after the save holds %v", got)
			}
		})
	}
}

// sameLayers compares the layer directories of a in s with b's in s2.
func sameLayers(t *testing.T, s *Store, a ImageRecord, s2 *Store, b ImageRecord) {
	t.Helper()
	if len(a.Layers) != len(b.Layers) {
		t.Fatalf("%d layers, want %d", len(b.Layers), len(a.Layers))
	}
	for i := range a.Layers {
		want, got := describeTree(t, s.LayerDir(a.Layers[i].DiffID)), describeTree(t, s2.LayerDir(b.Layers[i].DiffID))
		if !slices.Equal(got, want) {
			t.Errorf("layer %d differs:\n got %q\nwant %q", i, got, want)
		}
		if len(want) < 4 {
			t.Errorf("layer %d: only %q", i, want)
		}
	}
}

// describeTree is one line per entry under dir (not dir itself): name,
// type, mode, owner, link count, device, mtime (not of whiteouts, which
// the unpacker dates itself), user and opaque xattrs, and contents or
// link target.
func describeTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %o %d:%d n%d dev%d", rel, st.Mode, st.Uid, st.Gid, st.Nlink, st.Rdev)
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			line += fmt.Sprintf(" t%d.%09d", st.Mtim.Sec, st.Mtim.Nsec)
		}
		xattrs, opaque, err := imageXattrs(xattrSource{path: p})
		line += fmt.Sprintf(" %v opaque=%v %s", xattrs, opaque, contentOf(t, p, st))
		out = append(out, line)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// contentOf is a regular file's digest or a symlink's target.
func contentOf(t *testing.T, p string, st unix.Stat_t) string {
	t.Helper()
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	case unix.S_IFLNK:
		l, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		return "-> " + l
	}
	return ""
}

// TestSavedArchivesAreValid saves two images (sharing a layer, one by
// two names, one by ID) and reads the archives with go-containerregistry
// (docker-archive with its tarball reader, oci-archive unpacked and read
// as a layout): every image validates (digests, sizes, diffIDs), the
// shared layer is written once, and only images saved by a name carry
// one.
func TestSavedArchivesAreValid(t *testing.T) {
	r, s := registryAndStore(t)
	a, b, _ := twoImages(t, r)
	mustPull(t, s, a, nil)
	recB := mustPull(t, s, b, nil)
	refs := []string{a, recB.ID(), b}
	docker := save(t, s, FormatDockerArchive, refs...)
	for _, tag := range []string{a, b} {
		nt, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(docker, &nt)
		if err != nil {
			t.Fatalf("docker-archive: %s: %v", tag, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("docker-archive: %s: %v", tag, err)
		}
	}
	if n := countMembers(t, docker, "blobs/sha256/"); n != 3+2 {
		t.Errorf("docker-archive: %d blobs, want 3 layers and 2 configs", n)
	}
	checkOCIArchive(t, save(t, s, FormatOCIArchive, refs...), []string{a, b})
	_, err := s.Import(context.Background(), docker, ImportOptions{Name: "x"})
	wantErr(t, err, "holds 2 images")
	err = s.Save(context.Background(), io.Discard, []string{"127.0.0.1:1/none:1"}, FormatOCIArchive)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("save of a missing image: %v, want ErrNotFound", err)
	}
}

// checkOCIArchive unpacks an oci-archive and validates its index and
// images with go-containerregistry's layout reader (its layer check
// assumes gzip, so each layer's digest and diffID are checked here);
// names are the io.containerd.image.name annotations.
func checkOCIArchive(t *testing.T, path string, names []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := extractArchive(path, dir, PullOptions{}.limits()); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx, validate.Fast); err != nil {
		t.Errorf("oci-archive: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range im.Manifests {
		if n := d.Annotations[annotationContainerName]; n != "" {
			got = append(got, n)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkLayerDigests(t, img)
	}
	if !slices.Equal(got, names) || len(im.Manifests) != 2 {
		t.Errorf("oci-archive names %v in %d entries, want %v in 2", got, len(im.Manifests), names)
	}
}

// checkLayerDigests checks that each layer of img, read uncompressed,
// has the digest of its descriptor and of its config's diff_id.
func checkLayerDigests(t *testing.T, img v1.Image) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if d, _ := l.Digest(); err != nil || h != d || h != diffIDOf(t, l) {
			t.Errorf("layer %s: content %s, diffID %s, %v", d, h, diffIDOf(t, l), err)
		}
	}
}

// countMembers counts the regular members of the tar at path under prefix.
func countMembers(t *testing.T, path, prefix string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg && strings.HasPrefix(hdr.Name, prefix) {
			n++
		}
	}
}
