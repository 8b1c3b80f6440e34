package stored

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImageRecord is what the store knows of one image (one platform's
// manifest). Its file is images/sha256/MANIFEST_HEX.json.
type ImageRecord struct {
	Digest       v1.Hash         `json:"digest"`                 // the manifest's; the image's ID is its hex
	IndexDigest  *v1.Hash        `json:"index_digest,omitempty"` // the index it was picked from, if any
	MediaType    types.MediaType `json:"media_type"`             // the manifest's
	Repository   string          `json:"repository"`             // "REGISTRY/REPO" it was pulled from
	Names        []string        `json:"-"`                      // from names.json, sorted
	Platform     v1.Platform     `json:"platform"`
	ConfigDigest v1.Hash         `json:"config_digest"`
	Config       v1.ConfigFile   `json:"config"`
	Layers       []LayerRecord   `json:"layers"`  // bottom first, as in the manifest
	Size         int64           `json:"size"`    // compressed bytes of all layers
	Created      time.Time       `json:"created"` // when the pull stored it
}

// LayerRecord is one layer of an image.
type LayerRecord struct {
	Digest    v1.Hash         `json:"digest"`  // the compressed blob's
	DiffID    v1.Hash         `json:"diff_id"` // the uncompressed tar's; names its directory
	MediaType types.MediaType `json:"media_type"`
	Size      int64           `json:"size"` // compressed bytes
	// From is the repository ("REGISTRY/REPO") that has the blob, when it
	// is not the image's Repository (a committed image's base layers).
	From string `json:"from,omitempty"`
}

// Source is the repository ("REGISTRY/REPO") that has layer l's blob, of
// image r: l's From, else r's Repository ("" for neither: imported).
func (r ImageRecord) Source(l LayerRecord) string {
	if l.From != "" {
		return l.From
	}
	return r.Repository
}

// ID is the image's ID: the hex of its manifest digest.
func (r ImageRecord) ID() string { return r.Digest.Hex }

// ReadRecord reads the record of manifest digest h (Names not filled).
func (s *Store) ReadRecord(h v1.Hash) (ImageRecord, error) {
	var rec ImageRecord
	data, err := os.ReadFile(s.RecordPath(h))
	if err != nil {
		return rec, fmt.Errorf("image record %s: %w", h, err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("image record %s: %w", h, err)
	}
	return rec, nil
}

// Records reads every record, with Names filled from names, newest
// first.
func (s *Store) Records(names map[string]v1.Hash) ([]ImageRecord, error) {
	ents, err := s.readImagesDir()
	if err != nil {
		return nil, err
	}
	var recs []ImageRecord
	for _, e := range ents {
		hexs, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		rec, err := s.ReadRecord(v1.Hash{Algorithm: "sha256", Hex: hexs})
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		rec.Names = NamesOf(names, rec.Digest)
		recs = append(recs, rec)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Created.After(recs[j].Created) })
	return recs, nil
}

// readImagesDir lists the records' directory; a store not created yet
// has none.
func (s *Store) readImagesDir() ([]os.DirEntry, error) {
	ents, err := os.ReadDir(s.ImagesDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return ents, nil
}

// NamesOf are the names that point at h, sorted.
func NamesOf(names map[string]v1.Hash, h v1.Hash) []string {
	var out []string
	for n, d := range names {
		if d == h {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// ReadNames reads the names index (empty when there is none yet).
func (s *Store) ReadNames() (map[string]v1.Hash, error) {
	names := map[string]v1.Hash{}
	data, err := os.ReadFile(s.NamesPath())
	if os.IsNotExist(err) {
		return names, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &names)
	}
	if err != nil {
		return nil, fmt.Errorf("image names: %w", err)
	}
	return names, nil
}
