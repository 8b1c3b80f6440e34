package image

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestPushPullRoundTrip pulls an image and pushes it, by its digest, to
// another repository of the registry (over TLS with its CA), with
// progress, then pulls that into a fresh store: the same files, modes,
// owners, links, whiteouts and opaque directories, the same
// configuration, the digest the push reported. Named for that
// repository, a second push gives the same digest. tmp/ is left empty.
func TestPushPullRoundTrip(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, true)
	s := newStore(t, r.registries())
	var layers []v1.Layer
	for _, tb := range richLayers(t) {
		layers = append(layers, mkLayer(t, tb, dockerGzip))
	}
	orig := mustPull(t, s, r.push(t, "test/src:1", mkImage(t, false, hostPlatform().Architecture, layers...)), nil)
	dst := r.host + "/test/pushed:2"
	var states []LayerState
	p, err := s.Push(context.Background(), orig.Digest.String(), PushOptions{Dest: dst, Keychain: testKeychain, Progress: func(ev Progress) { states = append(states, ev.State) }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(states, Uploading) || states[len(states)-1] != Done {
		t.Errorf("progress states %v", states)
	}
	s2 := newStore(t, r.registries())
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
