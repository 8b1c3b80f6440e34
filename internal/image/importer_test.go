package image

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/cove-project/cove/internal/image/layer"
	"github.com/cove-project/cove/tests/registry"
)

// archiveTag is the name test archives give their image; imported, it
// is localName's "localhost/test/app:1".
const (
	archiveTag = "registry.example/test/app:1"
	importedAs = "localhost/test/app:1"
)

// threeLayerImage is threeLayers as an image of layers in form.
func threeLayerImage(t *testing.T, oci bool, form string) (v1.Image, []v1.Layer) {
	t.Helper()
	var layers []v1.Layer
	for _, tb := range threeLayers(t) {
		layers = append(layers, mkLayer(t, tb, form))
	}
	return mkImage(t, oci, hostPlatform().Architecture, layers...), layers
}

// dockerArchive writes img as a docker-archive (go-containerregistry's
// tarball.Write) tagged archiveTag, gzipped whole when gz.
func dockerArchive(t *testing.T, img v1.Image, gz bool) string {
	t.Helper()
	tag, err := name.NewTag(archiveTag)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	return writeTestFile(t, "docker.tar", maybeGzip(t, buf.Bytes(), gz))
}

// ociLayout writes img into a new OCI image layout directory
// (go-containerregistry's layout), its index entry named archiveTag.
func ociLayout(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err == nil {
		err = p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: archiveTag}))
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// ociArchive is the layout directory dir as an oci-archive (the tar of
// its tree, as tests/registry's DirLayer makes it), gzipped when gz.
func ociArchive(t *testing.T, dir string, gz bool) string {
	t.Helper()
	l, err := registry.DirLayer(dir)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return writeTestFile(t, "oci.tar", maybeGzip(t, data, gz))
}

// maybeGzip is data, gzipped when gz.
func maybeGzip(t *testing.T, data []byte, gz bool) []byte {
	t.Helper()
	if gz {
		return gzipOf(t, data)
	}
	return data
}

// writeTestFile writes data to a new file base in a temporary directory.
func writeTestFile(t *testing.T, base string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), base)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// importOne imports path into s and wants one image.
func importOne(t *testing.T, s *Store, path string, opt ImportOptions) ImageRecord {
	t.Helper()
	recs, err := s.Import(context.Background(), path, opt)
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	if len(recs) != 1 {
		t.Fatalf("import %s: %d images, want 1", path, len(recs))
	}
	return recs[0]
}

// TestImportFormats imports one three-layer image from each input kind:
// docker-archive (plain and gzipped), oci-archive (plain and gzipped),
// and an OCI layout directory. Each is stored under the local name of
// the archive's tag, with the image's config and diffIDs, the layers
// unpacked like a pull's (setuid file, symlink, whiteout), and nothing
// left in tmp/. An OCI input keeps its manifest, so the image ID is the
// registry's.
func TestImportFormats(t *testing.T) {
	needRoot(t)
	img, layers := threeLayerImage(t, true, ociGzip)
	dir := ociLayout(t, img)
	inputs := map[string]string{
		"docker-archive":    dockerArchive(t, img, false),
		"docker-archive.gz": dockerArchive(t, img, true),
		"oci-archive":       ociArchive(t, dir, false),
		"oci-archive.gz":    ociArchive(t, dir, true),
		"oci-dir":           dir,
	}
	want, _ := img.Digest()
	cfgDigest, _ := img.ConfigName()
	for kind, path := range inputs {
		t.Run(kind, func(t *testing.T) {
			s := newStore(t, nil)
			rec := importOne(t, s, path, ImportOptions{})
			if !slices.Equal(rec.Names, []string{importedAs}) || rec.Repository != "localhost/test/app" {
				t.Errorf("names %v, repository %q; want [%s]", rec.Names, rec.Repository, importedAs)
			}
			if rec.ConfigDigest != cfgDigest || !slices.Equal(rec.Config.Config.Cmd, []string{"/app/run"}) {
				t.Errorf("config %s %v, want %s", rec.ConfigDigest, rec.Config.Config.Cmd, cfgDigest)
			}
			if kind[:3] == "oci" && rec.Digest != want {
				t.Errorf("image %s, want the layout's manifest %s", rec.Digest, want)
			}
			checkImportedLayers(t, s, rec, layers)
		})
	}
}

// checkImportedLayers checks rec's diffIDs against layers (bottom
// first), threeLayers' contents, and a clean tmp/.
func checkImportedLayers(t *testing.T, s *Store, rec ImageRecord, layers []v1.Layer) {
	t.Helper()
	for i, l := range layers {
		if rec.Layers[i].DiffID != diffIDOf(t, l) {
			t.Errorf("layer %d: diffID %s, want %s", i, rec.Layers[i].DiffID, diffIDOf(t, l))
		}
	}
	dirs, err := s.LayerDirs(rec)
	if err != nil {
		t.Fatal(err)
	}
	checkContents(t, dirs)
	if got := entries(t, s.TmpDir()); len(got) != 0 {
		t.Errorf("tmp/ after the import holds %v", got)
	}
}

// TestImportSharesPulledLayers pulls an image from the registry, then
// imports its oci-archive: the same record (same manifest), a second
// name, no layer unpacked again.
func TestImportSharesPulledLayers(t *testing.T) {
	r, s := registryAndStore(t)
	img, layers := threeLayerImage(t, true, ociZstd)
	pulled := mustPull(t, s, r.push(t, "test/app:1", img), nil)
	ev := &events{}
	rec := importOne(t, s, ociArchive(t, ociLayout(t, img), false), ImportOptions{Progress: ev.add})
	if rec.Digest != pulled.Digest || !slices.Equal(rec.Names, []string{importedAs}) {
		t.Errorf("imported %s %v, pulled %s", rec.Digest, rec.Names, pulled.Digest)
	}
	if both, err := s.Lookup(importedAs); err != nil || len(both.Names) != 2 {
		t.Errorf("the record after the import: names %v, %v; want the pull's and the import's", both.Names, err)
	}
	for _, l := range layers {
		if st := ev.states(diffIDOf(t, l)); !slices.Equal(st, []LayerState{Waiting, AlreadyExists}) {
			t.Errorf("layer %s: %v, want waiting, already-exists", diffIDOf(t, l), st)
		}
	}
	if got := entries(t, s.LayersDir()); len(got) != 3 {
		t.Errorf("layers/ = %v", got)
	}
}

// TestImportNames: an explicit name replaces the archive's (and may
// carry localhost/), one with another registry is refused; a pull of a
// localhost/ name is refused; localName's mapping of archive names.
func TestImportNames(t *testing.T) {
	needRoot(t)
	img, _ := threeLayerImage(t, false, dockerGzip)
	path := dockerArchive(t, img, false)
	s := newStore(t, nil)
	if rec := importOne(t, s, path, ImportOptions{Name: "web:2"}); !slices.Equal(rec.Names, []string{"localhost/web:2"}) {
		t.Errorf("names %v, want localhost/web:2", rec.Names)
	}
	if rec := importOne(t, s, path, ImportOptions{Name: "localhost/web"}); !slices.Contains(rec.Names, "localhost/web:latest") {
		t.Errorf("names %v, want localhost/web:latest among them", rec.Names)
	}
	_, err := s.Import(context.Background(), path, ImportOptions{Name: "registry.example/web:1"})
	wantErr(t, err, "registry.example", "localhost/NAME")
	_, err = pull(t, s, "localhost/web:2", nil)
	wantErr(t, err, "cove import")
	cases := map[string]string{
		"nginx":                            "localhost/nginx:latest",
		"nginx:1.25":                       "localhost/nginx:1.25",
		"docker.io/library/nginx:1":        "localhost/library/nginx:1",
		"127.0.0.1:5000/team/app:2":        "localhost/team/app:2",
		"localhost/app":                    "localhost/app:latest",
		"registry.example/a/b@sha256:" + h: "",
		"UPPER":                            "",
	}
	for in, want := range cases {
		got, err := localName(in, false)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("localName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// h is a well-formed digest hex for names.
const h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestImportIndexPicksHost imports OCI layouts of a multi-arch image:
// one whose index.json points at an index (followed by the platform, as
// a pull does, and recorded as the image's index), and one whose
// index.json lists each platform's image (the others are skipped).
func TestImportIndexPicksHost(t *testing.T) {
	needRoot(t)
	host, other := hostAndOtherArch()
	imgs := map[string]v1.Image{}
	for _, arch := range []string{host, other} {
		imgs[arch] = mkImage(t, true, arch, mkLayer(t, tarOf(t, tfile{name: "arch", body: arch}), ociGzip))
	}
	idx := mkIndex(t, false, imgs)
	nested, err := layout.Write(filepath.Join(t.TempDir(), "nested"), empty.Index)
	if err == nil {
		err = nested.AppendIndex(idx, layout.WithAnnotations(map[string]string{annotationRefName: archiveTag}))
	}
	flat, ferr := layout.Write(filepath.Join(t.TempDir(), "flat"), empty.Index)
	for _, arch := range []string{other, host} {
		if ferr == nil {
			ferr = flat.AppendImage(imgs[arch], layout.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		}
	}
	if err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	want, _ := imgs[host].Digest()
	idxDigest, _ := idx.Digest()
	s := newStore(t, nil)
	rec := importOne(t, s, string(nested), ImportOptions{})
	if rec.Digest != want || rec.IndexDigest == nil || *rec.IndexDigest != idxDigest || !slices.Equal(rec.Names, []string{importedAs}) {
		t.Errorf("nested: %s (index %v) %v, want %s from %s", rec.Digest, rec.IndexDigest, rec.Names, want, idxDigest)
	}
	if rec := importOne(t, newStore(t, nil), string(flat), ImportOptions{Name: "flat"}); rec.Digest != want || rec.IndexDigest != nil {
		t.Errorf("flat: %s (index %v), want %s", rec.Digest, rec.IndexDigest, want)
	}
}

// TestImportStreamAndTag imports a docker-archive from a reader (docker
// load's body) as "localhost/…"; a tag gives it a second local name, then
// moves to another image; a tag with a registry keeps it; an archive
// over the byte limit is refused with nothing added; with KeepRegistry
// the archive's registry name is kept.
func TestImportStreamAndTag(t *testing.T) {
	needRoot(t)
	img, _ := threeLayerImage(t, false, ociGzip)
	s := newStore(t, nil)
	archive, err := os.ReadFile(dockerArchive(t, img, false))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ImportStream(context.Background(), bytes.NewReader(archive), ImportOptions{Limits: layer.Limits{MaxBytes: int64(len(archive)) - 1}})
	wantErr(t, err, "import the archive", "more than")
	assertNothingAdded(t, s, nil)
	recs, err := s.ImportStream(context.Background(), bytes.NewReader(archive), ImportOptions{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("import stream: %v, %v", recs, err)
	}
	if rec, err := s.Lookup(importedAs); err != nil || rec.Digest != recs[0].Digest || !slices.Equal(recs[0].Names, []string{importedAs}) {
		t.Errorf("%s: %v, %v; the import named it %v", importedAs, rec.Digest, err, recs[0].Names)
	}
	key, err := s.Name(recs[0].Digest, "web")
	if err != nil || key != "localhost/web:latest" {
		t.Fatalf("tag web: %q, %v", key, err)
	}
	if rec, err := s.Lookup("localhost/web"); err != nil || !slices.Equal(rec.Names, []string{"localhost/test/app:1", "localhost/web:latest"}) {
		t.Errorf("after the tag: %v, %v", rec.Names, err)
	}
	other := importOne(t, s, writeTestFile(t, "rootfs.tar", tarOf(t, tfile{name: "f", body: "x"})), ImportOptions{Name: "other:1"})
	if _, err := s.Name(other.Digest, "localhost/web"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.Lookup("localhost/web"); rec.Digest != other.Digest {
		t.Errorf("web names %s after the tag moved, want %s", rec.Digest, other.Digest)
	}
	if key, err := s.Name(other.Digest, "registry.example/web:2"); err != nil || key != "registry.example/web:2" {
		t.Errorf("tag registry.example/web:2: %q, %v", key, err)
	}
	for _, bad := range []string{"Bad Name", "sha256:" + other.Digest.Hex, other.Digest.Hex, "localhost/" + other.Digest.Hex + ":1"} {
		if _, err := s.Name(other.Digest, bad); err == nil || ValidName(bad) == nil {
			t.Errorf("tag %q: no error", bad)
		}
	}
	recs, err = s.ImportStream(context.Background(), bytes.NewReader(archive), ImportOptions{KeepRegistry: true})
	if err != nil || len(recs) != 1 || !slices.Equal(recs[0].Names, []string{archiveTag}) {
		t.Errorf("import keeping the registry: %v, %v, want the name %s alone (the import's)", recs, err, archiveTag)
	}
}
