// Package volume is cove's store of named volumes: volume NAME is the
// directory launch.VolumeDir(NAME), its content in launch.VolumeData(NAME)
// (Docker's NAME/_data), its record (volume.json: creation time, labels,
// size) and its populated marker beside the data; a volume with a size
// also has its file system image there (see Mount). A volume file in
// spec.VolumesDir declares a volume: its labels and size apply when the
// volume is created, and it is kept from removal and pruning while the
// file exists.
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
	Size       uint64            // bytes of its own file system; 0: none, a directory on the store's
	File       string            // its volume file, if declared
}

// Options are what Create gives a new volume; a zero field takes the
// value of the volume's file, if it has one.
type Options struct {
	Labels map[string]string // nil: the volume file's
	Size   uint64            // bytes, spec.CheckVolumeSize's range; 0: the volume file's, or none
}

// record is what volume.json holds.
type record struct {
	CreatedAt time.Time         `json:"created_at"`
	Labels    map[string]string `json:"labels,omitempty"`
	Size      uint64            `json:"size,omitempty"`
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

// Mountpoint is volume name's data directory, which containers mount;
// name must be valid.
func (s Store) Mountpoint(name string) string { return filepath.Join(s.dir(name), dataName) }

// file is volume name's volume file.
func (s Store) file(name string) string { return filepath.Join(s.Declared, name+".toml") }

// checkName returns ValidVolumeName's error, naming the operation.
func checkName(op, name string) error {
	if err := spec.ValidVolumeName(name); err != nil {
		return fmt.Errorf("%s volume: %w", op, err)
	}
	return nil
}

// Create creates volume name with o and returns it, or returns the
// volume as it is if it exists (as Docker's create does), refusing
// another size than it has (ErrSize). A volume with a size gets its file
// system image, mounted at its first use (Mount). Create is atomic: the
// volume appears complete, data directory, image and record, or not at
// all.
func (s Store) Create(name string, o Options) (Volume, error) {
	if err := checkName("create", name); err != nil {
		return Volume{}, err
	}
	if err := checkSize(o.Size); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if v, err := s.Get(name); err == nil && !v.CreatedAt.IsZero() {
		if o.Size != 0 && o.Size != v.Size {
			return Volume{}, fmt.Errorf("create volume %s: %w", name, sizeChange(v, o.Size, "the request"))
		}
		return v, nil
	}
	decl, err := s.declared(name)
	if err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if o.Labels == nil {
		o.Labels = decl.Labels
	}
	if o.Size == 0 {
		o.Size = decl.Size
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
	if o.Size != 0 {
		if err := makeImage(filepath.Join(tmp, imageName), o.Size); err != nil {
			return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
		}
	}
	b, _ := json.Marshal(record{CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: o.Labels, Size: o.Size}) // cannot fail: a time, strings and a number
	if err := os.WriteFile(filepath.Join(tmp, recordName), b, 0o644); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	err = os.Rename(tmp, s.dir(name))
	if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	return s.Get(name) // created now, or by a concurrent Create
}

// declared is the [volume] table of volume name's volume file, empty if
// there is no file.
func (s Store) declared(name string) (spec.Volume, error) {
	v, err := spec.LoadVolumeFile(s.file(name))
	if errors.Is(err, fs.ErrNotExist) {
		return spec.Volume{}, nil
	}
	return v, err
}

// Get returns volume name: created, or declared by a volume file only.
func (s Store) Get(name string) (Volume, error) {
	if err := checkName("inspect", name); err != nil {
		return Volume{}, err
	}
	v := Volume{Name: name, Mountpoint: s.Mountpoint(name)}
	if _, err := os.Lstat(s.file(name)); err == nil {
		v.File = s.file(name)
	}
	b, err := os.ReadFile(filepath.Join(s.dir(name), recordName))
	switch {
	case errors.Is(err, fs.ErrNotExist) && v.File != "":
		decl, err := s.declared(name)
		if err != nil {
			return Volume{}, fmt.Errorf("volume %s: %w", name, err)
		}
		v.Labels, v.Size = decl.Labels, decl.Size
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
	v.CreatedAt, v.Labels, v.Size = r.CreatedAt, r.Labels, r.Size
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
// bring it back on the next use): remove the file first. Remove holds
// the volume's lock; a volume's file system is unmounted first (see
// unmount). The volume vanishes at once (a rename), then its content is
// deleted.
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
	dir, err := s.lock("remove", name) // held until the volume is gone: a use starting now cannot mount it again
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := s.unmount(name); err != nil {
		return err
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
