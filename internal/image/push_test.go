package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestPushPullRoundTrip pulls an image from one registry (over TLS with
// its CA) and pushes it, by its digest, to another (plain HTTP), with
// progress: every layer is written anew and uploaded. Pulled from there
// into a fresh store, it has the same files, modes, owners, links,
// whiteouts and opaque directories, the same configuration, and the
// digest the push reported; named for that repository, a second push
// gives the same digest. tmp/ is left empty.
func TestPushPullRoundTrip(t *testing.T) {
	needRoot(t)
	src, r := startRegistry(t, true), startRegistry(t, false)
	reg := &Registries{Registry: append(src.registries().Registry, r.registries().Registry...)}
	s := newStore(t, reg)
	orig := mustPull(t, s, src.push(t, "test/src:1", richImage(t)), nil)
	dst := r.host + "/test/pushed:2"
	var states []LayerState
	p, err := s.Push(context.Background(), orig.Digest.String(), PushOptions{Dest: dst, Keychain: testKeychain, Progress: func(ev Progress) { states = append(states, ev.State) }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(states, Uploading) || states[len(states)-1] != Done || slices.Contains(states, AlreadyExists) {
		t.Errorf("progress states %v", states)
	}
	s2 := newStore(t, reg)
	got := mustPull(t, s2, dst, nil)
	if got.Digest != p.Digest || !slices.Equal(got.Config.Config.Cmd, orig.Config.Config.Cmd) {
		t.Errorf("pulled %s with Cmd %v; pushed %s with Cmd %v", got.Digest, got.Config.Config.Cmd, p.Digest, orig.Config.Config.Cmd)
	}
	sameLayers(t, s, orig, s2, got)
	if _, err := s.Name(orig.Digest, dst); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Push(context.Background(), dst, PushOptions{Keychain: testKeychain}); err != nil || again.Digest != p.Digest {
		t.Errorf("second push: %v %v, want %s", again.Digest, err, p.Digest)
	}
	if left := entries(t, s.TmpDir()); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

// TestPushMountsFromTheSource pushes a pulled image to another
// repository of the registry it came from: every layer is mounted from
// the repository it was pulled from (no byte of it sent, none written
// anew), so the image keeps its digest, and a fresh store pulls it. Once
// the source has lost the blobs, a push writes every layer anew.
func TestPushMountsFromTheSource(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, false)
	s := newStore(t, r.registries())
	orig := mustPull(t, s, r.push(t, "test/src:1", richImage(t)), nil)
	var states []LayerState
	p, err := s.Push(context.Background(), orig.Digest.String(), PushOptions{Dest: r.host + "/other/copy:1", Keychain: testKeychain,
		Progress: func(ev Progress) { states = append(states, ev.State) }})
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest != orig.Digest || slices.Contains(states, Uploading) || !slices.Contains(states, AlreadyExists) {
		t.Errorf("pushed %s (pulled %s), progress states %v; want the digest kept and every layer mounted", p.Digest, orig.Digest, states)
	}
	got := mustPull(t, newStore(t, r.registries()), r.host+"/other/copy:1", nil)
	if got.Digest != orig.Digest {
		t.Errorf("pulled back %s, want %s", got.Digest, orig.Digest)
	}
	// The source repository loses its blobs: the first mount is refused,
	// no other is tried, and every layer is written anew and uploaded.
	repos := filepath.Join(r.storage, "docker", "registry", "v2", "repositories")
	if err := os.RemoveAll(filepath.Join(repos, "test", "src", "_layers")); err != nil {
		t.Fatal(err)
	}
	states = nil
	p, err = s.Push(context.Background(), orig.Digest.String(), PushOptions{Dest: r.host + "/other/fresh:1", Keychain: testKeychain,
		Progress: func(ev Progress) { states = append(states, ev.State) }})
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest == orig.Digest || slices.Contains(states, AlreadyExists) || !slices.Contains(states, Uploading) {
		t.Errorf("pushed %s (pulled %s), progress states %v; want every layer written anew", p.Digest, orig.Digest, states)
	}
	if open := entries(t, filepath.Join(repos, "other", "fresh", "_uploads")); len(open) > 1 {
		t.Errorf("the refused mounts left %d uploads open, want at most 1", len(open))
	}
	s2 := newStore(t, r.registries())
	sameLayers(t, s, orig, s2, mustPull(t, s2, r.host+"/other/fresh:1", nil))
}

// richImage is richLayers as a Docker image of gzip layers.
func richImage(t *testing.T) v1.Image {
	var layers []v1.Layer
	for _, tb := range richLayers(t) {
		layers = append(layers, mkLayer(t, tb, dockerGzip))
	}
	return mkImage(t, false, hostPlatform().Architecture, layers...)
}

// TestPushRefuses refuses a store name and a name with no registry as
// where to push, before it reaches any registry.
func TestPushRefuses(t *testing.T) {
	s := newStore(t, nil)
	for ref, want := range map[string]string{"localhost/app:1": "this host's store", "app:1": "names no registry"} {
		if _, err := s.Push(context.Background(), ref, PushOptions{Keychain: testKeychain}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("push %s: %v, want %q", ref, err, want)
		}
		if _, err := s.Push(context.Background(), "registry.example/app:1", PushOptions{Dest: ref, Keychain: testKeychain}); !errors.Is(err, ErrNotPushable) {
			t.Errorf("push to %s: %v, want ErrNotPushable", ref, err)
		}
	}
}

// TestPushCommittedMountsItsBase commits a writable layer onto a pulled
// image and pushes that to another repository of the registry: the base
// layers are mounted from the repository they were pulled from, only the
// new one is written and uploaded, and a fresh store pulls the image
// with the new layer's files.
func TestPushCommittedMountsItsBase(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, false)
	s := newStore(t, r.registries())
	base := mustPull(t, s, r.push(t, "test/src:1", richImage(t)), nil)
	rec, err := s.CommitContainer(context.Background(), CommitOptions{Base: base.Digest.String(), Upper: writableLayer(t), IDs: shifted})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Source(rec.Layers[0]); got != base.Repository {
		t.Fatalf("the committed image's base layer comes from %q, want %q", got, base.Repository)
	}
	var states []LayerState
	dst := r.host + "/other/committed:1"
	if _, err := s.Push(context.Background(), rec.Digest.String(), PushOptions{Dest: dst, Keychain: testKeychain,
		Progress: func(ev Progress) { states = append(states, ev.State) }}); err != nil {
		t.Fatal(err)
	}
	mounted, uploaded := 0, 0
	for _, st := range states {
		switch st {
		case AlreadyExists:
			mounted++
		case Done:
			uploaded++
		}
	}
	if mounted != len(base.Layers) || uploaded != 1 {
		t.Errorf("%d layers mounted and %d uploaded (states %v), want %d and 1", mounted, uploaded, states, len(base.Layers))
	}
	s2 := newStore(t, r.registries())
	got := mustPull(t, s2, dst, nil)
	if b, err := os.ReadFile(s2.LayerDir(got.Layers[len(got.Layers)-1].DiffID) + "/etc/made"); string(b) != "made\n" {
		t.Errorf("the pushed top layer's etc/made: %q %v", b, err)
	}
}
