package image

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Tag points the name that ref resolves to now (as Lookup finds it: a
// short name through the search registries) at the image with manifest
// digest d, which must be in the store: how cove update rolls a name back
// to the image it named before a pull moved it. ref must name the image
// by a name in the index, not by an ID.
func (s *Store) Tag(ref string, d v1.Hash) error {
	return s.withLock(func() error {
		if _, err := s.ReadRecord(d); err != nil {
			return fmt.Errorf("tag %s: %w", ref, err)
		}
		names, err := s.ReadNames()
		if err != nil {
			return err
		}
		_, key, err := s.Find(names, ref)
		switch {
		case err != nil:
			return fmt.Errorf("tag %s: %w", ref, err)
		case key == "":
			return fmt.Errorf("tag %s: not a name in the store", ref)
		}
		names[key] = d
		return s.writeNames(names)
	})
}

// Name gives the image with manifest digest d the name n, as docker tag
// does: "NAME[:TAG]" is stored as "localhost/NAME:TAG" (see
// LocalRegistry), a name with a registry as it is (the image is then
// that registry's to lookups, and a pull of the name replaces it). A
// name that named another image moves to this one. It returns the
// stored name; a name ValidName refuses is refused.
func (s *Store) Name(d v1.Hash, n string) (string, error) {
	key, err := storeName(n, true)
	if err != nil {
		return "", fmt.Errorf("tag %s: %w", d, err)
	}
	return key, s.withLock(func() error {
		if _, err := s.ReadRecord(d); err != nil {
			return fmt.Errorf("tag %s as %s: %w", d, key, err)
		}
		names, err := s.ReadNames()
		if err != nil {
			return err
		}
		if !pointNames(names, []string{key}, d) {
			return nil
		}
		return s.writeNames(names)
	})
}

// ValidName says whether n can name an image (Name): an image reference
// with a tag or none, that does not read as an image ID.
func ValidName(n string) error {
	_, err := storeName(n, true)
	return err
}
