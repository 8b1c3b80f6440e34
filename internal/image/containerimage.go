package image

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// CommitOptions describe the image docker commit makes of a container:
// the image it runs with one layer more, its writable layer, and a
// configuration of its own.
type CommitOptions struct {
	// Base is the image the container runs (a manifest digest, or a name
	// as Lookup finds it); the new image has its layers, its platform and
	// its history.
	Base string
	// Upper is the container's writable layer, an overlayfs upper
	// directory; one that does not exist is an empty layer. Nothing may
	// change it while the commit reads it (see writeLayerTar).
	Upper string
	// IDs maps the IDs of Upper's files (host IDs) to the container's
	// (with a user namespace); nil keeps them.
	IDs IDMap
	// Config is the new image's configuration.
	Config v1.Config
	// Author and Comment are the image's; CreatedBy is its history
	// entry's command.
	Author, Comment, CreatedBy string
	// Name names the new image as Name does (docker tag's rules); ""
	// leaves it unnamed.
	Name string
}

// CommitContainer stores the image opt describes and returns its record:
// the writable layer is written as an uncompressed OCI layer (whiteouts
// as ".wh." entries, see writeLayerTar) and then goes the way of an
// imported image's (verified, unpacked into its own directory), so that
// what the container wrote is hostile input to the store as any layer
// is. Its configuration is the base's with opt's, created now, with one
// history entry and one diff ID more (none, as in Docker, when the
// writable layer holds nothing: the entry is then an empty layer's). The
// base's layers keep the repository they came from (LayerRecord.From),
// so that a push mounts them from there.
func (s *Store) CommitContainer(ctx context.Context, opt CommitOptions) (ImageRecord, error) {
	rec, err := s.commitContainer(ctx, opt)
	if err != nil {
		return ImageRecord{}, fmt.Errorf("commit a container of %s: %w", opt.Base, s.fullDisk(err))
	}
	return rec, nil
}

func (s *Store) commitContainer(ctx context.Context, opt CommitOptions) (ImageRecord, error) {
	var names []string
	if opt.Name != "" {
		key, err := storeName(opt.Name, true)
		if err != nil {
			return ImageRecord{}, err
		}
		names = []string{key}
	}
	base, err := s.Lookup(opt.Base)
	if err != nil {
		return ImageRecord{}, err
	}
	w, err := s.beginPull()
	if err != nil {
		return ImageRecord{}, err
	}
	defer w.end()
	if err := s.leaseSaved(w, []*savedImage{{rec: base}}); err != nil {
		return ImageRecord{}, err
	}
	path := filepath.Join(w.dir(), "layer.tar")
	top, _, err := writeLayerFile(ctx, path, opt.Upper, opt.IDs, uncompressed, base.MediaType != types.DockerManifestSchema2)
	if err != nil {
		return ImageRecord{}, fmt.Errorf("the writable layer %s: %w", opt.Upper, err)
	}
	var layers []v1.Descriptor // the new layer, unless it is empty (Docker's rule: then the history says so)
	if top.Digest != emptyTarDigest {
		layers = []v1.Descriptor{top}
	}
	cfg, err := json.Marshal(committedConfig(base, opt, layers, time.Now().UTC()))
	if err != nil {
		return ImageRecord{}, err
	}
	m := committedManifest(base, cfg, layers)
	src := memSource{docs: map[v1.Hash][]byte{m.Config.Digest: cfg}, next: fileSource{path: path, digest: top.Digest}}
	t, err := madeTarget(ctx, src, m, base.Platform)
	if err != nil {
		return ImageRecord{}, err
	}
	for i, l := range base.Layers { // a push can mount them from the registry they came from
		if src := base.Source(l); !strings.HasPrefix(src, LocalRegistry+"/") {
			t.layers[i].from = src
		}
	}
	t.nameAs(names)
	recs, err := s.place(ctx, w, []*target{t}, PullOptions{Platform: &base.Platform})
	if err != nil {
		return ImageRecord{}, err
	}
	return recs[0], nil
}

// emptyTarDigest is the digest of a tar without entries (its end
// marker: 1024 zero bytes), as a literal: nothing to compute when the
// package loads.
var emptyTarDigest = v1.Hash{Algorithm: "sha256", Hex: "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}

// committedConfig is the configuration file of the image opt makes of
// base with the uncompressed layers top (none or one), created at now.
func committedConfig(base ImageRecord, opt CommitOptions, top []v1.Descriptor, now time.Time) v1.ConfigFile {
	cf := base.Config
	cf.Created, cf.Author, cf.Config = v1.Time{Time: now}, opt.Author, opt.Config
	h := v1.History{Created: cf.Created, Author: opt.Author, CreatedBy: opt.CreatedBy, Comment: opt.Comment, EmptyLayer: len(top) == 0}
	cf.History = append(slices.Clone(cf.History), h)
	cf.RootFS.Type = "layers"
	cf.RootFS.DiffIDs = slices.Clone(cf.RootFS.DiffIDs)
	for _, l := range top {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, l.Digest)
	}
	return cf
}

// committedManifest is the manifest of base's layers and top, with the
// configuration cfg, of base's kind (Docker's or OCI's).
func committedManifest(base ImageRecord, cfg []byte, top []v1.Descriptor) v1.Manifest {
	var layers []v1.Descriptor
	for _, l := range base.Layers {
		layers = append(layers, v1.Descriptor{MediaType: l.MediaType, Size: l.Size, Digest: l.Digest})
	}
	return manifestOf(base.MediaType, cfg, append(layers, top...))
}
