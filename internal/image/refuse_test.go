package image

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// badBlobImage pushes an image whose second layer is 1 MiB of random data
// (so that its gzip blob is large) on top of a small base that the store
// already has, and returns the reference and the big layer.
func badBlobImage(t *testing.T, r *testRegistry, s *Store, repo string) (string, v1.Layer) {
	t.Helper()
	base := mkLayer(t, tarOf(t, tfile{name: "base", body: "base"}), dockerGzip)
	mustPull(t, s, r.push(t, repo+"-base:1", mkImage(t, false, "amd64", base)), nil)
	big := mkLayer(t, tarOf(t, tfile{name: "big", body: randomBody(1 << 20)}), dockerGzip)
	return r.push(t, repo+":1", mkImage(t, false, "amd64", base, big)), big
}

// forgetImages removes every record and name, keeping layers, so that a
// failed pull can be checked to add none.
func forgetImages(t *testing.T, s *Store) []string {
	t.Helper()
	recs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if _, err := s.Remove(rec.ID()); err != nil {
			t.Fatal(err)
		}
	}
	return entries(t, s.LayersDir())
}

// TestBadBlobRefused damages a layer blob in the registry's storage
// (one byte flipped in the middle; the file cut in half): the pull is
// refused naming the blob's digest, and nothing is added to layers/,
// images/ or the names.
func TestBadBlobRefused(t *testing.T) {
	damage := map[string]func(data []byte) []byte{
		"does not match its digest": func(data []byte) []byte { data[len(data)/2] ^= 0xff; return data },
		"the manifest says":         func(data []byte) []byte { return data[:len(data)/2] },
	}
	for want, f := range damage {
		t.Run(want, func(t *testing.T) {
			r, s := registryAndStore(t)
			ref, big := badBlobImage(t, r, s, "test/bad")
			d := digestOf(t, big)
			data, err := os.ReadFile(r.blobFile(d.Hex))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(r.blobFile(d.Hex), f(data), 0o644); err != nil {
				t.Fatal(err)
			}
			before := forgetImages(t, s)
			_, err = pull(t, s, ref, nil)
			wantErr(t, err, d.String(), want, "refused")
			assertNothingAdded(t, s, before)
		})
	}
}

// TestWrongDiffIDRefused pushes a gzip layer whose config diff_id is the
// compressed digest: the uncompressed digest does not match, refused.
func TestWrongDiffIDRefused(t *testing.T) {
	r, s := registryAndStore(t)
	gz := gzipOf(t, tarOf(t, tfile{name: "f", body: "x"}))
	l := static.NewLayer(gz, types.DockerLayer) // its DiffID is its digest: wrong
	ref := r.push(t, "test/diffid:1", mkImage(t, false, "amd64", l))
	_, err := pull(t, s, ref, nil)
	wantErr(t, err, digestOf(t, l).String(), "diff_id")
	assertNothingAdded(t, s, nil)
}

// TestMediaTypeMismatchRefused pushes a gzip blob labelled as an
// uncompressed layer: the magic bytes give it away.
func TestMediaTypeMismatchRefused(t *testing.T) {
	r, s := registryAndStore(t)
	gz := gzipOf(t, tarOf(t, tfile{name: "f", body: "x"}))
	l := static.NewLayer(gz, types.OCIUncompressedLayer)
	_, err := pull(t, s, r.push(t, "test/mislabelled:1", mkImage(t, true, "amd64", l)), nil)
	wantErr(t, err, digestOf(t, l).String(), "the stream is gzip")
	assertNothingAdded(t, s, nil)
}

// TestNameWithoutRegistryRefused: no silent docker.io. Without search
// registries a short name is refused before any network use; with one
// configured, it resolves there and is stored under its full name.
func TestNameWithoutRegistryRefused(t *testing.T) {
	s := newStore(t, nil)
	for _, ref := range []string{"alpine", "library/alpine:3", "app/web@sha256:" + string(make64('a'))} {
		_, err := pull(t, s, ref, nil)
		if !errors.Is(err, ErrNoRegistry) {
			t.Errorf("pull %s: %v, want ErrNoRegistry", ref, err)
		}
	}
	needRoot(t)
	r := startRegistry(t, false)
	r.push(t, "test/short:1", mkImage(t, true, "amd64", mkLayer(t, tarOf(t, tfile{name: "f", body: "x"}), ociGzip)))
	reg := r.registries()
	reg.Search = []string{r.host}
	s = newStore(t, reg)
	rec := mustPull(t, s, "test/short:1", nil)
	if want := r.host + "/test/short:1"; len(rec.Names) != 1 || rec.Names[0] != want {
		t.Errorf("names %v, want [%s]", rec.Names, want)
	}
	if _, err := s.Lookup("test/short:1"); err != nil {
		t.Errorf("lookup by short name: %v", err)
	}
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

// TestPlainHTTPOnlyWhenInsecure: a plain-HTTP registry on 127.0.0.1 is
// refused (go-containerregistry alone would fall back to HTTP for a
// loopback host) unless its location is listed with insecure = true.
func TestPlainHTTPOnlyWhenInsecure(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, false)
	ref := r.push(t, "test/plain:1", mkImage(t, true, "amd64", mkLayer(t, tarOf(t, tfile{name: "f", body: "x"}), ociGzip)))
	for _, reg := range []*Registries{nil, {Registry: []Registry{{Location: r.host}}}, {Registry: []Registry{{Location: "127.0.0.1:1", Insecure: true}}}} {
		s := newStore(t, reg)
		_, err := pull(t, s, ref, nil)
		wantErr(t, err, "insecure = true", r.host)
		assertNothingAdded(t, s, nil)
	}
	mustPull(t, newStore(t, r.registries()), ref, nil)
}

// TestTLSWithCA pulls over TLS from a registry whose certificate a test
// CA signed: refused without the CA, pulled with ca_file.
func TestTLSWithCA(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, true)
	ref := r.push(t, "test/tls:1", mkImage(t, true, "amd64", mkLayer(t, tarOf(t, tfile{name: "f", body: "x"}), ociGzip)))
	s := newStore(t, nil)
	_, err := pull(t, s, ref, nil)
	wantErr(t, err, "certificate")
	assertNothingAdded(t, s, nil)
	mustPull(t, newStore(t, r.registries()), ref, nil)
}

// gzipOf is b gzipped.
func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestMirror pulls through a mirror (with a path prefix) listed for a
// registry that does not answer: the image comes from the mirror and is
// named as the original reference.
func TestMirror(t *testing.T) {
	needRoot(t)
	mirror := startRegistry(t, false)
	mirror.push(t, "cache/test/app:1", mkImage(t, true, "amd64", mkLayer(t, tarOf(t, tfile{name: "f", body: "x"}), ociGzip)))
	origin := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens there
	reg := &Registries{Registry: []Registry{
		{Location: origin, Mirrors: []string{mirror.host + "/cache"}},
		{Location: mirror.host, Insecure: true},
	}}
	s := newStore(t, reg)
	rec := mustPull(t, s, origin+"/test/app:1", nil)
	if want := origin + "/test/app:1"; len(rec.Names) != 1 || rec.Names[0] != want || rec.Repository != origin+"/test/app" {
		t.Errorf("names %v, repository %s; want [%s]", rec.Names, rec.Repository, want)
	}
}
