package image

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tfile is one entry of a test layer: a regular file unless typ says
// otherwise.
type tfile struct {
	name         string
	body         string
	mode         int64
	typ          byte
	link         string
	xattrs       map[string]string // as PAX records SCHILY.xattr.NAME
	major, minor int64             // a device node's
}

// tarOf is an uncompressed tar of files, in order.
func tarOf(t *testing.T, files ...tfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Typeflag: f.typ, Linkname: f.link, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX,
			Devmajor: f.major, Devminor: f.minor}
		for k, v := range f.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// randomBody is n incompressible bytes.
func randomBody(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return string(b)
}

// dirEntry is a directory entry for tarOf.
func dirEntry(name string) tfile { return tfile{name: name, typ: tar.TypeDir, mode: 0o755} }

// Layer forms the tests push.
const (
	dockerGzip = "docker-gzip"
	ociGzip    = "oci-gzip"
	ociZstd    = "oci-zstd"
	ociTar     = "oci-tar"
	dockerTar  = "docker-tar"
)

// mkLayer makes a layer of the uncompressed tar tb in the given form.
func mkLayer(t *testing.T, tb []byte, form string) v1.Layer {
	t.Helper()
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil }
	var l v1.Layer
	var err error
	switch form {
	case dockerGzip:
		l, err = tarball.LayerFromOpener(opener, tarball.WithMediaType(types.DockerLayer))
	case ociGzip:
		l, err = tarball.LayerFromOpener(opener, tarball.WithMediaType(types.OCILayer))
	case ociZstd:
		l, err = tarball.LayerFromOpener(opener, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	case ociTar:
		l = static.NewLayer(tb, types.OCIUncompressedLayer)
	case dockerTar:
		l = static.NewLayer(tb, types.DockerUncompressedLayer)
	default:
		t.Fatalf("unknown layer form %q", form)
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// mkImage is an image of layers (bottom first) for linux/arch, with an
// OCI or a Docker schema 2 manifest and config.
func mkImage(t *testing.T, oci bool, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Cmd = []string{"/app/run"}
	cf.Config.Env = []string{"PATH=/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// pushOpts are the options for pushing to r.
func (r *testRegistry) pushOpts() []remote.Option {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.caFile != "" {
		tr.TLSClientConfig = r.client.Transport.(*http.Transport).TLSClientConfig
	}
	return []remote.Option{remote.WithTransport(tr)}
}

// push writes img to r as repoTag ("test/app:1"); returns "HOST/repoTag".
func (r *testRegistry) push(t *testing.T, repoTag string, img v1.Image) string {
	t.Helper()
	return r.write(t, repoTag, func(ref name.Reference) error { return remote.Write(ref, img, r.pushOpts()...) })
}

// pushIndex writes idx to r as repoTag; returns "HOST/repoTag".
func (r *testRegistry) pushIndex(t *testing.T, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	return r.write(t, repoTag, func(ref name.Reference) error { return remote.WriteIndex(ref, idx, r.pushOpts()...) })
}

// write runs put on "HOST/repoTag" and returns that reference.
func (r *testRegistry) write(t *testing.T, repoTag string, put func(name.Reference) error) string {
	t.Helper()
	ref := r.host + "/" + repoTag
	tag, err := name.ParseReference(ref)
	if err == nil {
		err = put(tag)
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// image reads back the image ref from r.
func (r *testRegistry) image(t *testing.T, ref string) v1.Image {
	t.Helper()
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tag, r.pushOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// registries are settings that reach r: plain HTTP allowed, or its CA.
func (r *testRegistry) registries() *Registries {
	if r.caFile != "" {
		return &Registries{Registry: []Registry{{Location: r.host, CAFile: r.caFile}}}
	}
	return &Registries{Registry: []Registry{{Location: r.host, Insecure: true}}}
}

// registryAndStore starts a plain registry (for a test run as root) and
// opens a store that reaches it.
func registryAndStore(t *testing.T) (*testRegistry, *Store) {
	t.Helper()
	needRoot(t)
	r := startRegistry(t, false)
	return r, newStore(t, r.registries())
}

// newStore opens a store in a fresh directory with settings reg.
func newStore(t *testing.T, reg *Registries) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testKeychain is anonymous: tests must not read the host's credentials.
var testKeychain = FileKeychain("/nonexistent/auth.json")

// entries are the names in dir (none when it is missing).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// digestOf is l's compressed digest; diffIDOf its uncompressed one.
func digestOf(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	h, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func diffIDOf(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	h, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// mkIndex is a multi-arch index (OCI, or a Docker manifest list) of the
// linux images imgs, by architecture, in sorted order.
func mkIndex(t *testing.T, docker bool, imgs map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	if docker {
		idx = mutate.IndexMediaType(idx, types.DockerManifestList)
	}
	for _, arch := range slices.Sorted(maps.Keys(imgs)) {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        imgs[arch],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx
}
