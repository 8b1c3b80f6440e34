package image

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cove-project/cove/internal/image/stored"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Removed says what Remove did.
type Removed struct {
	Untagged []string // names removed from the index
	Deleted  *v1.Hash // the image's digest when its record went too
}

// Remove untags ref: a name (as Lookup) loses that one name; an ID or a
// digest that matched no name loses all its names. The record goes when
// the image has no name left. Layers and blobs stay until Prune.
func (s *Store) Remove(ref string) (Removed, error) {
	var out Removed
	err := s.withLock(func() error {
		names, err := s.ReadNames()
		if err != nil {
			return err
		}
		rec, key, err := s.Find(names, ref)
		if err != nil {
			return err
		}
		out.Untagged = rec.Names
		if key != "" {
			out.Untagged = []string{key}
		}
		for _, n := range out.Untagged {
			delete(names, n)
		}
		if err := s.writeNames(names); err != nil {
			return err
		}
		if len(stored.NamesOf(names, rec.Digest)) == 0 {
			out.Deleted = &rec.Digest
			return s.removeRecords([]v1.Hash{rec.Digest})
		}
		return nil
	})
	if err != nil {
		return Removed{}, fmt.Errorf("remove image %s: %w", ref, err)
	}
	return out, nil
}

// removeRecords deletes the records of the given images, durably.
func (s *Store) removeRecords(ds []v1.Hash) error {
	for _, d := range ds {
		if err := os.Remove(s.RecordPath(d)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return stored.SyncDir(s.ImagesDir())
}

// Pruned says what Prune removed.
type Pruned struct {
	Images []v1.Hash // records removed
	Layers []v1.Hash // diffIDs of layer directories removed
}

// Prune removes the images keep rejects (nil keeps all), with their
// names, then every layer and blob no remaining image references. A layer
// that a running pull has leased is kept even if no record names it yet.
// The decisions are made under the store lock; the layers are renamed
// into tmp/ there and deleted after it is released.
func (s *Store) Prune(keep func(ImageRecord) bool) (Pruned, error) {
	var out Pruned
	var trash []string
	err := s.withLock(func() error {
		var err error
		if trash, err = s.sweep(); err != nil {
			return err
		}
		kept, err := s.pruneImages(keep, &out)
		if err != nil {
			return err
		}
		gone, err := s.pruneLayers(kept, &out)
		trash = append(trash, gone...)
		if err != nil {
			return err
		}
		return s.pruneBlobs(kept)
	})
	removeAll(trash)
	if err != nil {
		return out, fmt.Errorf("prune images in %s: %w", s.Root(), err)
	}
	return out, nil
}

// pruneImages removes the records keep rejects and their names, and
// returns the records kept.
func (s *Store) pruneImages(keep func(ImageRecord) bool, out *Pruned) ([]ImageRecord, error) {
	names, err := s.ReadNames()
	if err != nil {
		return nil, err
	}
	recs, err := s.Records(names)
	if err != nil {
		return nil, err
	}
	var kept []ImageRecord
	for _, rec := range recs {
		if keep == nil || keep(rec) {
			kept = append(kept, rec)
			continue
		}
		out.Images = append(out.Images, rec.Digest)
		for _, n := range rec.Names {
			delete(names, n)
		}
	}
	if len(out.Images) == 0 {
		return kept, nil
	}
	if err := s.writeNames(names); err != nil {
		return nil, err
	}
	return kept, s.removeRecords(out.Images)
}

// pruneLayers renames every layer that neither a kept record nor a live
// pull's lease references into tmp/, returning the renamed paths.
func (s *Store) pruneLayers(kept []ImageRecord, out *Pruned) ([]string, error) {
	used, err := s.leases()
	if err != nil {
		return nil, err
	}
	for _, rec := range kept {
		for _, l := range rec.Layers {
			used[l.DiffID] = true
		}
	}
	ents, err := os.ReadDir(s.LayersDir())
	if err != nil {
		return nil, err
	}
	var trash []string
	for _, e := range ents {
		id := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if used[id] || checkDigest(id) != nil {
			continue
		}
		t := filepath.Join(s.TmpDir(), "trash-"+stored.RandomID())
		if err := os.Rename(s.LayerDir(id), t); err != nil {
			return trash, err
		}
		trash = append(trash, t)
		out.Layers = append(out.Layers, id)
	}
	return trash, stored.SyncDir(s.LayersDir())
}

// pruneBlobs removes the manifests, indexes and configs no kept record
// references. (Blobs are written only by a commit, under the store lock.)
func (s *Store) pruneBlobs(kept []ImageRecord) error {
	used := map[v1.Hash]bool{}
	for _, rec := range kept {
		for _, d := range blobDigests(rec) {
			used[d] = true
		}
	}
	ents, err := os.ReadDir(s.BlobsDir())
	if err != nil {
		return err
	}
	for _, e := range ents {
		id := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if used[id] {
			continue
		}
		if err := os.Remove(s.BlobPath(id)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return stored.SyncDir(s.BlobsDir())
}
