package image

import (
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
)

// twoImages pushes images a and b that share a 2 MiB base layer, each
// with a small layer of its own, and returns their references and the
// layers (base, a's, b's).
func twoImages(t *testing.T, r *testRegistry) (a, b string, layers []v1.Layer) {
	t.Helper()
	base := mkLayer(t, tarOf(t, tfile{name: "base", body: randomBody(2 << 20)}), ociGzip)
	la := mkLayer(t, tarOf(t, tfile{name: "a", body: "a"}), ociGzip)
	lb := mkLayer(t, tarOf(t, tfile{name: "b", body: "b"}), ociZstd)
	a = r.push(t, "test/a:1", mkImage(t, true, "amd64", base, la))
	b = r.push(t, "test/b:1", mkImage(t, true, "amd64", base, lb))
	return a, b, []v1.Layer{base, la, lb}
}

// TestConcurrentPullsShareLayers pulls two images sharing a layer at
// once: both succeed, the shared layer is unpacked by exactly one of them
// (the other waits and finds it), and it is stored once.
func TestConcurrentPullsShareLayers(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, false)
	a, b, layers := twoImages(t, r)
	for round := range 5 {
		s := newStore(t, r.registries())
		ev := &events{}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, ref := range []string{a, b} {
			wg.Go(func() { _, errs[i] = pull(t, s, ref, ev) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		st := ev.states(diffIDOf(t, layers[0]))
		if dones := count(st, Done); dones != 1 || count(st, AlreadyExists) != 1 {
			t.Errorf("round %d: shared layer states %v: want one done, one already-exists", round, st)
		}
		if got := entries(t, s.LayersDir()); len(got) != 3 {
			t.Errorf("round %d: layers/ = %v, want 3", round, got)
		}
		if got := entries(t, s.TmpDir()); len(got) != 0 {
			t.Errorf("round %d: tmp/ = %v", round, got)
		}
	}
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// TestPruneRemovesOnlyUnreferenced pulls two images sharing a base and
// prunes one: its own layer, record, name and blobs go; the base and the
// other image stay whole.
func TestPruneRemovesOnlyUnreferenced(t *testing.T) {
	r, s := registryAndStore(t)
	a, b, layers := twoImages(t, r)
	recA, recB := mustPull(t, s, a, nil), mustPull(t, s, b, nil)
	out, err := s.Prune(func(rec ImageRecord) bool { return rec.Digest == recB.Digest })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Images, []v1.Hash{recA.Digest}) || !slices.Equal(out.Layers, []v1.Hash{diffIDOf(t, layers[1])}) {
		t.Errorf("pruned %+v, want image %s and layer %s", out, recA.Digest, diffIDOf(t, layers[1]))
	}
	want := []string{diffIDOf(t, layers[0]).Hex, diffIDOf(t, layers[2]).Hex}
	slices.Sort(want)
	if got := entries(t, s.LayersDir()); !slices.Equal(got, want) {
		t.Errorf("layers/ = %v, want %v", got, want)
	}
	if _, err := s.Lookup(a); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup %s after prune: %v", a, err)
	}
	if _, err := os.Stat(s.BlobPath(recA.ConfigDigest)); !os.IsNotExist(err) {
		t.Errorf("config blob of the pruned image: %v", err)
	}
	if _, err := s.Inspect(b); err != nil {
		t.Errorf("inspect %s after prune: %v", b, err)
	}
	if got := entries(t, s.TmpDir()); len(got) != 0 {
		t.Errorf("tmp/ = %v", got)
	}
}

// TestPruneDuringPullKeepsLeasedLayers prunes (keeping no image) from
// inside a pull, just after its first layer is in place and before its
// record exists: the lease keeps that layer, and the pull completes; an
// unreferenced layer from an earlier image is removed by the same prune.
func TestPruneDuringPullKeepsLeasedLayers(t *testing.T) {
	r, s := registryAndStore(t)
	a, b, layers := twoImages(t, r)
	mustPull(t, s, a, nil)
	if _, err := s.Remove(a); err != nil {
		t.Fatal(err)
	}
	var pruned Pruned
	var perr error
	once := sync.Once{}
	opt := PullOptions{Keychain: testKeychain, Parallel: 1, Progress: func(p Progress) {
		if p.State == Done {
			once.Do(func() { pruned, perr = s.Prune(func(ImageRecord) bool { return false }) })
		}
	}}
	rec, err := s.Pull(context.Background(), b, opt)
	if err != nil || perr != nil {
		t.Fatalf("pull: %v; prune: %v", err, perr)
	}
	if !slices.Equal(pruned.Layers, []v1.Hash{diffIDOf(t, layers[1])}) {
		t.Errorf("prune removed layers %v, want only a's own %s", pruned.Layers, diffIDOf(t, layers[1]))
	}
	if _, err := s.LayerDirs(rec); err != nil {
		t.Errorf("pulled image's layers: %v", err)
	}
}

// TestLookupListRemove looks an image up by name, by digest reference,
// by ID and by ID prefix; moves a tag to another image; removes names
// one at a time, the record going with the last.
func TestLookupListRemove(t *testing.T) {
	r, s := registryAndStore(t)
	a, b, _ := twoImages(t, r)
	recA := mustPull(t, s, a, nil)
	byDigest := r.host + "/test/a@" + recA.Digest.String()
	mustPull(t, s, byDigest, nil)
	for _, ref := range []string{a, byDigest, recA.ID(), "sha256:" + recA.ID(), recA.ID()[:12]} {
		if rec, err := s.Lookup(ref); err != nil || rec.Digest != recA.Digest {
			t.Errorf("lookup %s: %s, %v", ref, rec.Digest, err)
		}
	}
	if rec, _ := s.Lookup(a); !slices.Equal(rec.Names, []string{a, byDigest}) {
		t.Errorf("names %v", rec.Names)
	}
	if _, err := s.Lookup(r.host + "/test/nothere:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup of a missing image: %v", err)
	}
	recB := mustPull(t, s, b, nil)
	r.push(t, "test/a:1", r.image(t, b)) // the tag moves to b's image
	if rec := mustPull(t, s, a, nil); rec.Digest != recB.Digest || !slices.Equal(rec.Names, []string{a, b}) {
		t.Errorf("after the tag moved: %s %v, want %s [%s %s]", rec.Digest, rec.Names, recB.Digest, a, b)
	}
	if list, err := s.List(); err != nil || len(list) != 2 || !slices.Equal(list[1].Names, []string{byDigest}) {
		t.Errorf("list: %v, %v (want a's image left with its digest name)", list, err)
	}
	checkRemove(t, s, byDigest, recA.Digest, true)
	checkRemove(t, s, a, recB.Digest, false)
	checkRemove(t, s, recB.ID()[:8], recB.Digest, true)
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Errorf("list after removing all: %v, %v", list, err)
	}
}

// checkRemove removes ref and checks whether the record went.
func checkRemove(t *testing.T, s *Store, ref string, d v1.Hash, deleted bool) {
	t.Helper()
	out, err := s.Remove(ref)
	if err != nil {
		t.Fatalf("remove %s: %v", ref, err)
	}
	if (out.Deleted != nil) != deleted || len(out.Untagged) == 0 {
		t.Errorf("remove %s: %+v, want deleted=%v", ref, out, deleted)
	}
	if _, err := os.Stat(s.RecordPath(d)); os.IsNotExist(err) != deleted {
		t.Errorf("remove %s: record present = %v", ref, !os.IsNotExist(err))
	}
}

// TestFullDisk pulls into a store on a 1 MiB tmpfs an image with a 2 MiB
// layer: a clear error, and the store as it was.
func TestFullDisk(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, false)
	big := mkLayer(t, tarOf(t, tfile{name: "big", body: randomBody(2 << 20)}), ociGzip)
	a := r.push(t, "test/big:1", mkImage(t, true, "amd64", big))
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mount a tmpfs for the store: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	s, err := Open(filepath.Join(dir, "images"), r.registries())
	if err != nil {
		t.Fatal(err)
	}
	_, err = pull(t, s, a, nil)
	wantErr(t, err, "out of space", "no space left on device")
	if !errors.Is(err, unix.ENOSPC) {
		t.Errorf("error does not wrap ENOSPC: %v", err)
	}
	assertNothingAdded(t, s, nil)
}

// TestVerifier checks the blob stream's bounds and digest directly: a
// short stream, a long one, and a corrupt one are refused naming it.
func TestVerifier(t *testing.T) {
	body := "0123456789"
	d := v1.Descriptor{Digest: sha256Of([]byte(body)), Size: int64(len(body))}
	cases := map[string]string{body: "", body[:5]: "truncated", body + "x": "longer", "0123456780": "does not match"}
	for in, want := range cases {
		v := newVerifier(strings.NewReader(in), d, func(int64) {})
		err := v.finish()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), d.Digest.String())) {
			t.Errorf("stream %q: %v, want %q", in, err, want)
		}
	}
}

// TestFileKeychain reads Docker config.json-style credentials.
func TestFileKeychain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	auth := `{"auths": {"https://reg.example:5000/v1/": {"auth": "dXNlcjpwYXNz"}, "other.example": {"username": "u2", "password": "p2"}}}`
	if err := os.WriteFile(path, []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"reg.example:5000": "user:pass", "other.example": "u2:p2", "none.example": ":"} {
		reg := fakeResource(host)
		a, err := FileKeychain(path).Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil || cfg.Username+":"+cfg.Password != want {
			t.Errorf("%s: %+v, %v, want %s", host, cfg, err, want)
		}
	}
}

type fakeResource string

func (f fakeResource) String() string      { return string(f) }
func (f fakeResource) RegistryStr() string { return string(f) }
