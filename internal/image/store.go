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

// Open returns the store at root (stored.Open), its directories created
// where missing (stored.Store.Create): this package writes to it.
func Open(root string, reg *Registries) (*Store, error) {
	return created(stored.Open(root, reg))
}

// OpenDefault opens the default store (stored.OpenDefault), as Open.
func OpenDefault() (*Store, error) {
	return created(stored.OpenDefault())
}

// created is st, opened with err, once its directories exist.
func created(st *stored.Store, err error) (*Store, error) {
	if err == nil {
		err = st.Create()
	}
	if err != nil {
		return nil, err
	}
	return &Store{st}, nil
}
