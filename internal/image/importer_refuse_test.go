package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/image/layer"
)

// manifestMember makes an archive a docker-archive to the survey.
var manifestMember = tfile{name: "manifest.json", body: "[]"}

// TestImportHostileArchives imports archives with members that try to
// write outside the import's directory, that are no files, or that pass
// the limits: each is refused, naming the member, and nothing is added to
// the store or written next to it.
func TestImportHostileArchives(t *testing.T) {
	needRoot(t)
	cases := map[string]struct {
		files []tfile
		lim   layer.Limits
		want  string
	}{
		"dotdot":           {files: []tfile{{name: "../escape", body: "x"}}, want: `has a ".." component`},
		"dotdot-inner":     {files: []tfile{{name: "blobs/../../escape", body: "x"}}, want: `has a ".." component`},
		"absolute":         {files: []tfile{{name: "/tmp/escape", body: "x"}}, want: "absolute"},
		"symlink-absolute": {files: []tfile{{name: "blobs", typ: tar.TypeSymlink, link: "/tmp"}, {name: "blobs/escape", body: "x"}}, want: "only relative symlinks"},
		"symlink-outside":  {files: []tfile{{name: "x", typ: tar.TypeSymlink, link: "../../../etc/hostname"}}, want: "outside the archive"},
		"hard-link":        {files: []tfile{{name: "h", typ: tar.TypeLink, link: "/etc/hostname"}}, want: "hard link"},
		"device":           {files: []tfile{{name: "d", typ: tar.TypeChar}}, want: "character device"},
		"twice":            {files: []tfile{{name: "a", body: "1"}, {name: "a", body: "2"}}, want: "appears twice"},
		"entries":          {files: []tfile{{name: "a"}, {name: "b"}, {name: "c"}}, lim: layer.Limits{MaxEntries: 3}, want: "more than 3 members"},
		"bytes":            {files: []tfile{{name: "big", body: randomBody(4096)}}, lim: layer.Limits{MaxBytes: 1000}, want: "would pass 1000"},
	}
	for what, c := range cases {
		t.Run(what, func(t *testing.T) {
			s := newStore(t, nil)
			path := writeTestFile(t, "hostile.tar", tarOf(t, append([]tfile{manifestMember}, c.files...)...))
			_, err := s.Import(context.Background(), path, ImportOptions{Limits: c.lim})
			wantErr(t, err, c.want)
			assertNothingAdded(t, s, nil)
			if got := entries(t, filepath.Dir(s.Root())); !slices.Equal(got, []string{"images"}) {
				t.Errorf("next to the store: %v", got)
			}
			if _, err := os.Lstat("/tmp/escape"); err == nil {
				t.Error("/tmp/escape exists: the import wrote outside its directory")
			}
		})
	}
}

// TestImportHostileLayouts: a layout whose blob is a symlink out of the
// directory, and a docker-archive whose manifest.json names a layer
// outside the archive, are refused.
func TestImportHostileLayouts(t *testing.T) {
	needRoot(t)
	img, _ := threeLayerImage(t, true, ociGzip)
	dir := ociLayout(t, img)
	cfg, _ := img.ConfigName()
	blob := filepath.Join(dir, "blobs", "sha256", cfg.Hex)
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", blob); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, nil)
	_, err := s.Import(context.Background(), dir, ImportOptions{})
	wantErr(t, err, cfg.Hex, "leads out of", "refused")
	assertNothingAdded(t, s, nil)

	manifest := `[{"Config":"c.json","RepoTags":["a:1"],"Layers":["../../../etc/hostname"]}]`
	path := writeTestFile(t, "docker.tar", tarOf(t, tfile{name: "manifest.json", body: manifest}, tfile{name: "c.json", body: "{}"}))
	_, err = s.Import(context.Background(), path, ImportOptions{})
	wantErr(t, err, "../../../etc/hostname", `".." component`)
	assertNothingAdded(t, s, nil)
}

// TestImportTamperedRefused: a layout whose layer blob has a byte
// flipped fails its digest, and a docker-archive whose config's diff_id
// is not its layer's fails the diffID check; no image is added (only
// the complete, verified layers of the first, as a failed pull leaves).
func TestImportTamperedRefused(t *testing.T) {
	needRoot(t)
	img, layers := threeLayerImage(t, true, ociGzip)
	dir := ociLayout(t, img)
	d := digestOf(t, layers[1])
	blob := filepath.Join(dir, "blobs", "sha256", d.Hex)
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, nil)
	_, err = s.Import(context.Background(), dir, ImportOptions{})
	wantErr(t, err, d.String(), "does not match its digest", "refused")
	before := entries(t, s.LayersDir())
	if slices.Contains(before, diffIDOf(t, layers[1]).Hex) {
		t.Errorf("the tampered layer is in layers/")
	}
	assertNothingAdded(t, s, before)

	gz := gzipOf(t, tarOf(t, tfile{name: "f", body: "x"}))
	bad := mkImage(t, false, hostPlatform().Architecture, static.NewLayer(gz, types.DockerLayer)) // its diffID is its digest: wrong
	_, err = s.Import(context.Background(), dockerArchive(t, bad, false), ImportOptions{})
	wantErr(t, err, "diff_id", "refused")
	assertNothingAdded(t, s, before)
}

// TestImportDockerSymlinkedLayer imports a docker-archive as docker
// save (before Docker 25) writes one for an image with a repeated layer:
// the second layer.tar is a relative symlink to the first.
func TestImportDockerSymlinkedLayer(t *testing.T) {
	needRoot(t)
	tb := tarOf(t, tfile{name: "same", body: "same"})
	l := mkLayer(t, tb, dockerTar)
	img := mkImage(t, false, hostPlatform().Architecture, l, l)
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := json.Marshal([]dockerEntry{{Config: "c.json", RepoTags: []string{"dup:1"}, Layers: []string{"l1/layer.tar", "l2/layer.tar"}}})
	path := writeTestFile(t, "docker.tar", tarOf(t,
		dirEntry("l1/"), tfile{name: "l1/layer.tar", body: string(tb)},
		dirEntry("l2/"), tfile{name: "l2/layer.tar", typ: tar.TypeSymlink, link: "../l1/layer.tar"},
		tfile{name: "c.json", body: string(cfg)}, tfile{name: "manifest.json", body: string(manifest)}))
	s := newStore(t, nil)
	rec := importOne(t, s, path, ImportOptions{})
	if len(rec.Layers) != 2 || rec.Layers[1].DiffID != diffIDOf(t, l) || !slices.Equal(rec.Names, []string{"localhost/dup:1"}) {
		t.Errorf("record %+v %v", rec.Layers, rec.Names)
	}
	if got := entries(t, s.LayersDir()); len(got) != 1 {
		t.Errorf("layers/ = %v, want one directory", got)
	}
}

// TestImportRootfs imports a root file system tarball, plain, gzip and
// zstd, and once through a pipe: one layer whose diffID is the tar's
// digest, an empty config for this host, the name given; importing it
// again gives the same image. Without a name it is refused.
func TestImportRootfs(t *testing.T) {
	needRoot(t)
	tb := tarOf(t, dirEntry("./"), dirEntry("bin/"), tfile{name: "bin/sh", body: "#!", mode: 0o755}, tfile{name: "sh", typ: tar.TypeSymlink, link: "bin/sh"})
	diffID := sha256Of(tb)
	s := newStore(t, nil)
	forms := map[string][]byte{"plain": tb, "gzip": gzipOf(t, tb), "zstd": zstdOf(t, tb)}
	for form, data := range forms {
		path := writeTestFile(t, "rootfs.tar", data)
		rec := importOne(t, s, path, ImportOptions{Name: "root-" + form})
		if len(rec.Layers) != 1 || rec.Layers[0].DiffID != diffID || rec.Layers[0].Digest != sha256Of(data) {
			t.Errorf("%s: layers %+v, want diffID %s", form, rec.Layers, diffID)
		}
		if rec.Config.Architecture != hostPlatform().Architecture || rec.Config.OS != "linux" || len(rec.Config.Config.Cmd) != 0 {
			t.Errorf("%s: config %+v", form, rec.Config)
		}
		if again := importOne(t, s, path, ImportOptions{Name: "root-" + form}); again.Digest != rec.Digest {
			t.Errorf("%s: second import %s, first %s", form, again.Digest, rec.Digest)
		}
	}
	if got := entries(t, s.LayersDir()); !slices.Equal(got, []string{diffID.Hex}) {
		t.Errorf("layers/ = %v, want only %s", got, diffID.Hex)
	}
	dirs, _ := s.LayerDirs(mustLookup(t, s, "localhost/root-plain"))
	if l, err := os.Readlink(filepath.Join(dirs[0], "sh")); err != nil || l != "bin/sh" {
		t.Errorf("sh -> %q, %v", l, err)
	}
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() { _ = os.WriteFile(fifo, tb, 0o600) }()
	if rec := importOne(t, s, fifo, ImportOptions{Name: "piped"}); rec.Layers[0].DiffID != diffID {
		t.Errorf("through a pipe: %+v", rec.Layers)
	}
	_, err := s.Import(context.Background(), writeTestFile(t, "rootfs.tar", tb), ImportOptions{})
	wantErr(t, err, "root file system", "give the image a name")
}

// mustLookup is Lookup that fails the test on error.
func mustLookup(t *testing.T, s *Store, ref string) ImageRecord {
	t.Helper()
	rec, err := s.Lookup(ref)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// zstdOf is data compressed with zstd.
func zstdOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
