package image

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/internal/image/layer"
	"github.com/cove-project/cove/internal/image/stored"
)

// Default bounds of a pull.
const (
	DefaultMaxLayerBytes   = 64 << 30
	DefaultMaxLayerEntries = 10_000_000
	DefaultParallel        = 3
)

// PullOptions tune a pull; the zero value is the defaults.
type PullOptions struct {
	// Keychain finds credentials; nil means DefaultKeychain().
	Keychain authn.Keychain
	// Platform is the image to pick from a multi-arch index; nil means
	// this host's (linux/runtime.GOARCH).
	Platform *v1.Platform
	// Limits bound each layer; a zero field means its default
	// (DefaultMaxLayerBytes, DefaultMaxLayerEntries).
	Limits layer.Limits
	// Parallel is how many layers download at once; 0 means
	// DefaultParallel.
	Parallel int
	// Progress, when set, gets per-layer events; calls are serialized.
	Progress func(Progress)
}

func (o PullOptions) keychain() authn.Keychain {
	if o.Keychain == nil {
		return DefaultKeychain()
	}
	return o.Keychain
}

func (o PullOptions) platform() v1.Platform {
	if o.Platform == nil {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	return *o.Platform
}

func (o PullOptions) limits() layer.Limits {
	lim := o.Limits
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxLayerBytes
	}
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = DefaultMaxLayerEntries
	}
	return lim
}

// Pull fetches ref ("REGISTRY/REPO[:TAG]", "REGISTRY/REPO@sha256:…", or
// a short name when search registries are configured: each is tried in
// order) into the store and records it under its canonical name. Layers
// already in the store are not downloaded. On success every layer, the
// manifest, the config, the record and the name are durable; on error
// (including a killed process) nothing of this pull is visible except
// complete, verified layers. The error names the reference and, for a
// bad blob, its digest.
func (s *Store) Pull(ctx context.Context, ref string, opt PullOptions) (ImageRecord, error) {
	refs, err := s.Candidates(ref)
	if err != nil {
		return ImageRecord{}, err
	}
	var errs []error
	for _, r := range refs {
		rec, err := s.pullRef(ctx, r, opt)
		if err == nil {
			return rec, nil
		}
		errs = append(errs, fmt.Errorf("pull %s: %w", stored.Canonical(r), s.fullDisk(err)))
	}
	return ImageRecord{}, errors.Join(errs...)
}

// pullRef pulls one fully qualified reference.
func (s *Store) pullRef(ctx context.Context, ref name.Reference, opt PullOptions) (ImageRecord, error) {
	if ref.Context().RegistryStr() == LocalRegistry {
		return ImageRecord{}, fmt.Errorf("%s/ names images brought in with cove import, docker load or docker tag, which no registry is asked for (a registry on this host is reached as localhost:PORT)", LocalRegistry)
	}
	w, err := s.beginPull()
	if err != nil {
		return ImageRecord{}, err
	}
	defer w.end()
	t, err := s.resolve(ctx, ref, opt)
	if err != nil {
		return ImageRecord{}, err
	}
	recs, err := s.place(ctx, w, []*target{t}, opt)
	if err != nil {
		return ImageRecord{}, err
	}
	return recs[0], nil
}

// place is the end of every pull and import, in the work w: it leases
// the layers of ts, puts each into layers/ (fetched from its target's
// source and verified unless the store has it), and commits each image.
func (s *Store) place(ctx context.Context, w *pullWork, ts []*target, opt PullOptions) ([]ImageRecord, error) {
	var ids []v1.Hash
	for _, t := range ts {
		for _, j := range t.layers {
			ids = append(ids, j.diffID)
		}
	}
	if err := w.lease(ids); err != nil {
		return nil, err
	}
	for _, t := range ts {
		if err := s.fetchLayers(ctx, w, t, opt); err != nil {
			return nil, err
		}
	}
	recs := make([]ImageRecord, len(ts))
	for i, t := range ts {
		var err error
		if recs[i], err = s.commit(t); err != nil {
			return nil, err
		}
	}
	return recs, nil
}
