package image

import (
	"fmt"
	"os"
	"time"

	"github.com/cove-project/cove/internal/image/stored"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// commit records the pulled or imported image t, under the store lock,
// once every layer is in place: its blobs (index, manifest, config), then
// its record, then its names in names.json, each written atomically and
// durably.
func (s *Store) commit(t *target) (ImageRecord, error) {
	rec := t.record()
	err := s.withLock(func() error {
		for _, l := range rec.Layers {
			if ok, err := stored.Exists(s.LayerDir(l.DiffID)); !ok || err != nil {
				return fmt.Errorf("layer %s (diffID %s) is no longer in the store: %v", l.Digest, l.DiffID, err)
			}
		}
		var err error
		if rec, err = s.commitRecord(t, rec); err != nil {
			return err
		}
		names, err := s.ReadNames()
		if err != nil {
			return err
		}
		if moved := pointNames(names, t.names, rec.Digest); moved {
			if err := s.writeNames(names); err != nil {
				return err
			}
		}
		rec.Names = stored.NamesOf(names, rec.Digest)
		return nil
	})
	return rec, err
}

// commitRecord writes t's blobs and record rec, unless the image is
// already recorded (a pull of an image the store has): then that record
// stays as it is and is returned.
func (s *Store) commitRecord(t *target, rec ImageRecord) (ImageRecord, error) {
	if old, err := s.ReadRecord(rec.Digest); err == nil {
		return old, nil
	}
	blobs := []fetched{t.manifest, t.config}
	if t.index != nil {
		blobs = append(blobs, *t.index)
	}
	for _, b := range blobs {
		if err := s.writeBlob(b); err != nil {
			return rec, err
		}
	}
	return rec, s.writeRecord(rec)
}

// writeBlob stores a verified manifest, index or config unless present.
func (s *Store) writeBlob(b fetched) error {
	p := s.BlobPath(b.digest)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := stored.WriteFileAtomic(s.TmpDir(), p, b.data); err != nil {
		return fmt.Errorf("write blob %s: %w", b.digest, err)
	}
	return nil
}

// record is the image record of t.
func (t *target) record() ImageRecord {
	rec := ImageRecord{
		Digest:       t.manifest.digest,
		MediaType:    t.manifest.mediaType,
		Repository:   t.repo,
		Platform:     t.platform,
		ConfigDigest: t.config.digest,
		Config:       *t.cfg,
		Created:      time.Now().UTC(),
	}
	if t.index != nil {
		d := t.index.digest
		rec.IndexDigest = &d
	}
	for _, j := range t.layers {
		rec.Layers = append(rec.Layers, LayerRecord{Digest: j.desc.Digest, DiffID: j.diffID, MediaType: j.desc.MediaType, Size: j.desc.Size, From: j.from})
		rec.Size += j.desc.Size
	}
	return rec
}

// pointNames points each of ns at d in names, and tells whether any
// moved.
func pointNames(names map[string]v1.Hash, ns []string, d v1.Hash) (moved bool) {
	for _, n := range ns {
		if names[n] != d {
			names[n], moved = d, true
		}
	}
	return moved
}

// blobDigests are the blobs rec needs kept: manifest, config, index.
func blobDigests(rec ImageRecord) []v1.Hash {
	ds := []v1.Hash{rec.Digest, rec.ConfigDigest}
	if rec.IndexDigest != nil {
		ds = append(ds, *rec.IndexDigest)
	}
	return ds
}
