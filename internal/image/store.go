package image

import (
	"github.com/cove-project/cove/internal/image/stored"
)

// Store is an image store with its registry client: the reads of
// package stored (Lookup, List, Inspect, Complete, …), which the
// container launcher uses without linking this package, and the pulls,
// imports, saves, tags and pruning here. Its methods are safe for
// concurrent use, by goroutines and by processes sharing the root.
type Store struct{ *stored.Store }

// The store's record types and settings, declared in package stored.
type (
	ImageRecord = stored.ImageRecord
	LayerRecord = stored.LayerRecord
	Inspection  = stored.Inspection
	Registries  = stored.Registries
	Registry    = stored.Registry
)

// Errors and defaults of package stored.
var (
	ErrNotFound   = stored.ErrNotFound
	ErrNoRegistry = stored.ErrNoRegistry
)

// DefaultRegistriesFile is package stored's.
const DefaultRegistriesFile = stored.DefaultRegistriesFile

// Open returns the store at root (stored.Open).
func Open(root string, reg *Registries) (*Store, error) {
	st, err := stored.Open(root, reg)
	if err != nil {
		return nil, err
	}
	return &Store{st}, nil
}

// OpenDefault opens the default store (stored.OpenDefault).
func OpenDefault() (*Store, error) {
	st, err := stored.OpenDefault()
	if err != nil {
		return nil, err
	}
	return &Store{st}, nil
}
