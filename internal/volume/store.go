// Package volume is cove's store of named volumes: volume NAME is the
// directory launch.VolumeDir(NAME), its content in launch.VolumeData(NAME)
// (Docker's NAME/_data), its record (volume.json: creation time, labels)
// and its populated marker beside the data. A volume file in
// spec.VolumesDir declares a volume: its labels apply when the volume is
// created, and it is kept from removal and pruning while the file exists.
// Volumes are created on first use (Prepare, run by the launcher) or
// explicitly (Create). Every name is checked (spec.ValidVolumeName), so
// no name leads out of the store.
package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// ErrNotFound is wrapped by the errors about a volume that does not
// exist.
var ErrNotFound = errors.New("no such volume")

// ErrDeclared is wrapped by Remove's refusal of a declared volume.
var ErrDeclared = errors.New("the volume is declared")

// Store is a volume store and the directory of its volume files.
type Store struct {
	Dir      string // the volumes: launch.VolumesDir
	Declared string // the volume files: spec.VolumesDir
}

// Default is cove's store.
func Default() Store { return Store{Dir: launch.VolumesDir, Declared: spec.VolumesDir} }

// Volume is a volume as cove volume ls and inspect show it.
type Volume struct {
	Name       string
	Mountpoint string            // its data directory, which containers mount
	CreatedAt  time.Time         // zero: declared but not created yet
	Labels     map[string]string // from its creation, or its volume file until then
	File       string            // its volume file, if declared
}

// record is what volume.json holds.
type record struct {
	CreatedAt time.Time         `json:"created_at"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Names of the files in a volume's directory, and prefixes of the store's
// own temporary entries (no volume name starts with a dot).
const (
	dataName      = "_data"
	recordName    = "volume.json"
	populatedName = "populated"
	populateTemp  = ".populate"
	newPrefix     = ".new-"
	removePrefix  = ".rm-"
)

// dir is volume name's directory; name must be valid.
func (s Store) dir(name string) string { return filepath.Join(s.Dir, name) }

// data is volume name's data directory.
func (s Store) data(name string) string { return filepath.Join(s.dir(name), dataName) }

// file is volume name's volume file.
func (s Store) file(name string) string { return filepath.Join(s.Declared, name+".toml") }

// checkName returns ValidVolumeName's error, naming the operation.
func checkName(op, name string) error {
	if err := spec.ValidVolumeName(name); err != nil {
		return fmt.Errorf("%s volume: %w", op, err)
	}
	return nil
}

// Create creates volume name with labels (nil: those of its volume file)
// and returns it, or returns the volume as it is if it exists (as
// Docker's create does). It is atomic: the volume appears complete,
// data directory and record, or not at all.
func (s Store) Create(name string, labels map[string]string) (Volume, error) {
	if err := checkName("create", name); err != nil {
		return Volume{}, err
	}
	if v, err := s.Get(name); err == nil && !v.CreatedAt.IsZero() {
		return v, nil
	}
	if labels == nil {
		decl, err := s.declaredLabels(name)
		if err != nil {
			return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
		}
		labels = decl
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(s.Dir, newPrefix)
	if err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer os.RemoveAll(tmp) // gone after the rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Mkdir(filepath.Join(tmp, dataName), 0o755); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	b, _ := json.Marshal(record{CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: labels}) // cannot fail: a time and strings
	if err := os.WriteFile(filepath.Join(tmp, recordName), b, 0o644); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	err = os.Rename(tmp, s.dir(name))
	if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	return s.Get(name) // created now, or by a concurrent Create
}

// declaredLabels are the labels of volume name's volume file, nil if it
// has none or there is no file.
func (s Store) declaredLabels(name string) (map[string]string, error) {
	v, err := spec.LoadVolumeFile(s.file(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return v.Labels, err
}

// Get returns volume name: created, or declared by a volume file only.
func (s Store) Get(name string) (Volume, error) {
	if err := checkName("inspect", name); err != nil {
		return Volume{}, err
	}
	v := Volume{Name: name, Mountpoint: s.data(name)}
	if _, err := os.Lstat(s.file(name)); err == nil {
		v.File = s.file(name)
	}
	b, err := os.ReadFile(filepath.Join(s.dir(name), recordName))
	switch {
	case errors.Is(err, fs.ErrNotExist) && v.File != "":
		v.Labels, err = s.declaredLabels(name)
		if err != nil {
			return Volume{}, fmt.Errorf("volume %s: %w", name, err)
		}
		return v, nil
	case errors.Is(err, fs.ErrNotExist):
		return Volume{}, fmt.Errorf("volume %s: %w", name, ErrNotFound)
	case err != nil:
		return Volume{}, fmt.Errorf("volume %s: read its record: %w", name, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Volume{}, fmt.Errorf("volume %s: read its record %s: %w", name, filepath.Join(s.dir(name), recordName), err)
	}
	v.CreatedAt, v.Labels = r.CreatedAt, r.Labels
	return v, nil
}

// List returns every volume, created or declared, by name. Entries of
// the store that are no volume's (a crashed creation's leftovers, stray
// files) are skipped.
func (s Store) List() ([]Volume, error) {
	names := map[string]bool{}
	for _, d := range []struct{ dir, suffix string }{{s.Dir, ""}, {s.Declared, ".toml"}} {
		entries, err := os.ReadDir(d.dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list volumes: %w", err)
		}
		for _, e := range entries {
			n, ok := strings.CutSuffix(e.Name(), d.suffix)
			if ok && spec.ValidVolumeName(n) == nil && (d.suffix != "" || e.IsDir()) {
				names[n] = true
			}
		}
	}
	var out []Volume
	for _, n := range slices.Sorted(maps.Keys(names)) {
		v, err := s.Get(n)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile, or no record
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Remove removes volume name and its content. The caller checks that no
// workload uses it. A declared volume is refused (its volume file would
// bring it back on the next use): remove the file first. The volume
// vanishes at once (a rename), then its content is deleted.
func (s Store) Remove(name string) error {
	if err := checkName("remove", name); err != nil {
		return err
	}
	if _, err := os.Lstat(s.file(name)); err == nil {
		return fmt.Errorf("remove volume %s: %w in %s; remove that file first", name, ErrDeclared, s.file(name))
	}
	if _, err := os.Lstat(filepath.Join(s.dir(name), recordName)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, ErrNotFound)
	}
	gone, err := os.MkdirTemp(s.Dir, removePrefix)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.Rename(s.dir(name), filepath.Join(gone, name)); err != nil {
		os.Remove(gone)
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove volume %s: delete its content: %w", name, err)
	}
	return nil
}

// Prune removes every created volume that is neither declared nor in
// used, and what removals that were killed midway left, and returns the
// names removed and the bytes they held.
func (s Store) Prune(used map[string]bool) (removed []string, reclaimed int64, err error) {
	vs, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir, removePrefix+"*"))
	for _, l := range left {
		os.RemoveAll(l) // best effort: a leftover again next time
	}
	for _, v := range vs {
		if used[v.Name] || v.File != "" || v.CreatedAt.IsZero() {
			continue
		}
		size, _ := s.Size(v.Name) // best effort: the removal is what counts
		if err := s.Remove(v.Name); err != nil {
			return removed, reclaimed, err
		}
		removed, reclaimed = append(removed, v.Name), reclaimed+size
	}
	return removed, reclaimed, nil
}
