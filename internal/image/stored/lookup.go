package stored

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNotFound is wrapped by lookups that match no image.
var ErrNotFound = errors.New("no such image")

// IsIDPrefix says whether ref is an image ID or a prefix of one: 1 to 64
// lowercase hex digits, optionally led by "sha256:". (No regexp: its
// counted repetition compiled at every cove start cost about 1 ms.)
func IsIDPrefix(ref string) bool {
	hex := strings.TrimPrefix(ref, "sha256:")
	return len(hex) >= 1 && len(hex) <= 64 && strings.Trim(hex, "0123456789abcdef") == ""
}

// Lookup finds the image ref names: "REGISTRY/REPO:TAG" (no tag means
// latest), a short name under each search registry in order,
// "REGISTRY/REPO@sha256:…" (a name pulled by digest, else an image whose
// manifest or index has that digest and that came from REPO), or an ID
// ("sha256:HEX", HEX, or a unique prefix of HEX). Names are tried before
// IDs. The error wraps ErrNotFound when nothing matches.
func (s *Store) Lookup(ref string) (ImageRecord, error) {
	names, err := s.ReadNames()
	if err != nil {
		return ImageRecord{}, err
	}
	rec, _, err := s.Find(names, ref)
	return rec, err
}

// Find is Lookup on a names index; it also returns the name that matched
// ("" when ref matched by digest or ID).
func (s *Store) Find(names map[string]v1.Hash, ref string) (ImageRecord, string, error) {
	refs, perr := s.Candidates(ref)
	for _, r := range refs {
		if rec, key, err := s.findRef(names, r); err == nil || !errors.Is(err, ErrNotFound) {
			return rec, key, err
		}
	}
	if IsIDPrefix(ref) {
		rec, err := s.findID(names, strings.TrimPrefix(ref, "sha256:"))
		return rec, "", err
	}
	if perr != nil {
		return ImageRecord{}, "", fmt.Errorf("image %q: %w: %w", ref, ErrNotFound, perr)
	}
	return ImageRecord{}, "", fmt.Errorf("image %q: %w", ref, ErrNotFound)
}

// findRef looks r up in the names index, then (for a digest) by digest.
func (s *Store) findRef(names map[string]v1.Hash, r name.Reference) (ImageRecord, string, error) {
	key := Canonical(r)
	if d, ok := names[key]; ok {
		rec, err := s.ReadRecord(d)
		rec.Names = NamesOf(names, d)
		return rec, key, err
	}
	dg, ok := r.(name.Digest)
	if !ok {
		return ImageRecord{}, "", fmt.Errorf("image %s: %w", key, ErrNotFound)
	}
	recs, err := s.Records(names)
	if err != nil {
		return ImageRecord{}, "", err
	}
	repo := RepoName(r.Context())
	for _, rec := range recs {
		byDigest := rec.Digest.String() == dg.DigestStr() || rec.IndexDigest != nil && rec.IndexDigest.String() == dg.DigestStr()
		if byDigest && rec.fromRepo(repo) {
			return rec, "", nil
		}
	}
	return ImageRecord{}, "", fmt.Errorf("image %s: %w", key, ErrNotFound)
}

// fromRepo tells whether the image came from, or is named in, repo.
func (r ImageRecord) fromRepo(repo string) bool {
	return r.Repository == repo || slices.ContainsFunc(r.Names, func(n string) bool {
		return strings.HasPrefix(n, repo+":") || strings.HasPrefix(n, repo+"@")
	})
}

// findID finds the one image whose ID starts with prefix.
func (s *Store) findID(names map[string]v1.Hash, prefix string) (ImageRecord, error) {
	ents, err := s.readImagesDir()
	if err != nil {
		return ImageRecord{}, err
	}
	var match []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && strings.HasPrefix(id, prefix) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return ImageRecord{}, fmt.Errorf("image ID %s: %w", prefix, ErrNotFound)
	case 1:
		d := v1.Hash{Algorithm: "sha256", Hex: match[0]}
		rec, err := s.ReadRecord(d)
		rec.Names = NamesOf(names, d)
		return rec, err
	}
	return ImageRecord{}, fmt.Errorf("image ID %s is ambiguous: %d images start with it", prefix, len(match))
}

// List returns every image in the store, newest first, with its names
// (an image whose names all went elsewhere has none).
func (s *Store) List() ([]ImageRecord, error) {
	names, err := s.ReadNames()
	if err != nil {
		return nil, err
	}
	return s.Records(names)
}

// LayerDirs are rec's layer directories in the order overlayfs's
// lowerdir= wants them: the top layer first. It fails if one is missing.
func (s *Store) LayerDirs(rec ImageRecord) ([]string, error) {
	dirs := make([]string, 0, len(rec.Layers))
	for i := len(rec.Layers) - 1; i >= 0; i-- {
		d := s.LayerDir(rec.Layers[i].DiffID)
		if _, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w", rec.Digest, rec.Layers[i].DiffID, err)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// Inspection is everything the store holds about one image.
type Inspection struct {
	ImageRecord
	Manifest  []byte   // the manifest as pulled (verified)
	LayerDirs []string // top layer first
}

// Inspect looks ref up (as Lookup) and returns its record, manifest and
// layer directories.
func (s *Store) Inspect(ref string) (Inspection, error) {
	rec, err := s.Lookup(ref)
	if err != nil {
		return Inspection{}, err
	}
	in := Inspection{ImageRecord: rec}
	if in.Manifest, err = os.ReadFile(s.BlobPath(rec.Digest)); err != nil {
		return Inspection{}, fmt.Errorf("inspect %s: manifest: %w", rec.Digest, err)
	}
	if in.LayerDirs, err = s.LayerDirs(rec); err != nil {
		return Inspection{}, fmt.Errorf("inspect %s: %w", rec.Digest, err)
	}
	return in, nil
}
