package image

import (
	"encoding/json"
	"fmt"

	"github.com/cove-project/cove/internal/image/stored"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// writeRecord stores rec atomically and durably.
func (s *Store) writeRecord(rec ImageRecord) error {
	data, err := json.MarshalIndent(rec, "", "\t")
	if err != nil {
		return fmt.Errorf("image record %s: %w", rec.Digest, err)
	}
	if err := stored.WriteFileAtomic(s.TmpDir(), s.RecordPath(rec.Digest), data); err != nil {
		return fmt.Errorf("write image record %s: %w", rec.Digest, err)
	}
	return nil
}

// writeNames replaces the names index atomically and durably.
func (s *Store) writeNames(names map[string]v1.Hash) error {
	data, err := json.MarshalIndent(names, "", "\t")
	if err == nil {
		err = stored.WriteFileAtomic(s.TmpDir(), s.NamesPath(), data)
	}
	if err != nil {
		return fmt.Errorf("write image names: %w", err)
	}
	return nil
}
