package image

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Tag points the name ref (a tag reference with its registry,
// "REGISTRY/REPO:TAG") at the image with manifest digest d, which must be
// in the store: how cove update rolls a name back to the image it named
// before a pull moved it.
func (s *Store) Tag(ref string, d v1.Hash) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	return s.withLock(func() error {
		if _, err := s.readRecord(d); err != nil {
			return fmt.Errorf("tag %s: %w", ref, err)
		}
		names, err := s.readNames()
		if err != nil {
			return err
		}
		names[canonical(tag)] = d
		return s.writeNames(names)
	})
}
