// Package changes lists what an image container changed in its root
// (docker diff): the entries of its writable layer, the overlay's upper
// directory, against its image's layers. The writable layer is the
// container's: it is read without following a symlink, and a name is
// looked up in a layer one element at a time, never through one.
package changes

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/image/stored"
	"golang.org/x/sys/unix"
)

// Kind is what happened to a path, as Docker's API numbers it.
type Kind int

// The kinds of Docker's GET /containers/ID/changes.
const (
	Modified Kind = 0 // "C": there in the image, changed or with changed contents
	Added    Kind = 1 // "A": not in the image
	Deleted  Kind = 2 // "D": in the image, removed
)

// Change is one path of the container's root that differs from its
// image's, as Docker's API answers it.
type Change struct {
	Path string
	Kind Kind
}

// Of lists the changes the writable layer upper holds against layers
// (directories of the image's unpacked layers), sorted by path, by
// Docker's rules: a whiteout is Deleted, and so is an opaque directory a
// layer has; an entry a layer has Modified, but for a directory whose
// size, mode and modification time are the layer's (copied up only to
// hold a change); any other Added, and everything under an Added
// directory Added; and the directory of an Added or Deleted entry
// Modified (but the root). A tree deeper than maxDepth is refused. A
// writable layer that does not exist (a container never started) holds
// none.
func Of(upper string, layers []string) ([]Change, error) {
	d, err := os.OpenFile(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return []Change{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("changes: open the writable layer: %w", err)
	}
	defer d.Close()
	w := walker{out: []Change{}, listed: map[string]bool{}}
	defer w.close()
	for _, l := range layers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("changes: open the image layer %s: %w", l, err)
		}
		w.layers = append(w.layers, fd)
	}
	if err := w.dir(d, "/", false, 0); err != nil {
		return nil, err
	}
	slices.SortFunc(w.out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return w.out, nil
}

// walker collects the changes of one writable layer.
type walker struct {
	layers []int // the image's layer directories, open
	out    []Change
	listed map[string]bool // the directories out has
}

// add lists change c of an entry, and its directory as Modified when c
// is an Added or Deleted entry's and the directory is not listed yet.
func (w *walker) add(c Change, dir bool) {
	if dir {
		w.listed[c.Path] = true
	}
	if parent := path.Dir(c.Path); (c.Kind == Added || c.Kind == Deleted) && parent != "/" && !w.listed[parent] {
		w.listed[parent] = true
		w.out = append(w.out, Change{Path: parent, Kind: Modified})
	}
	w.out = append(w.out, c)
}

// close closes the layer directories.
func (w *walker) close() {
	for _, fd := range w.layers {
		unix.Close(fd)
	}
}

// maxDepth bounds how deep a writable layer is walked: a container's
// tree deeper than that is refused, not walked with a descriptor per
// level.
const maxDepth = 1024

// dir adds the changes under the directory d of the writable layer, at
// container path p and depth depth; added says d itself is Added (so all
// it holds is).
func (w *walker) dir(d *os.File, p string, added bool, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("changes: %s of the writable layer is more than %d directories deep", p, maxDepth)
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("changes: read %s of the writable layer: %w", p, err)
	}
	for _, n := range names {
		if err := w.entry(int(d.Fd()), n, path.Join(p, n), added, depth); err != nil {
			return err
		}
	}
	return nil
}

// entry adds the change of entry name of directory fd, container path p,
// and what it holds. An opaque directory (it hides what the layers have
// there) that a layer has is Deleted, as Docker says it.
func (w *walker) entry(fd int, name, p string, added bool, depth int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("changes: fstatat %s: %w", p, err)
	}
	kind := Added
	var image unix.Stat_t // the first layer's entry at p
	if !added {
		inImage, err := w.inImage(p, &image)
		if err != nil {
			return err
		}
		if inImage {
			kind = Modified
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if stored.IsWhiteout(st.Mode, st.Rdev) {
			kind = Deleted
		}
		w.add(Change{Path: p, Kind: kind}, false)
		return nil
	}
	cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("changes: open %s of the writable layer: openat: %w", p, err)
	}
	child := os.NewFile(uintptr(cfd), p)
	defer child.Close()
	switch {
	case kind == Modified && opaque(cfd):
		w.add(Change{Path: p, Kind: Deleted}, true)
	case kind == Modified && sameDir(st, image):
		// copied up only to hold a change: not one itself
	default:
		w.add(Change{Path: p, Kind: kind}, true)
	}
	return w.dir(child, p, kind == Added, depth+1)
}

// sameDir reports whether the writable layer's directory st is as the
// image has it (image): a directory of the same size, mode and
// modification time (to the second when either has no nanoseconds), as
// Docker compares them.
func sameDir(st, image unix.Stat_t) bool {
	sameTime := st.Mtim.Sec == image.Mtim.Sec && (st.Mtim.Nsec == image.Mtim.Nsec || st.Mtim.Nsec == 0 || image.Mtim.Nsec == 0)
	return image.Mode&unix.S_IFMT == unix.S_IFDIR && st.Size == image.Size && st.Mode == image.Mode && sameTime
}

// opaque reports whether the directory fd is opaque to overlayfs.
func opaque(fd int) bool {
	buf := make([]byte, 1)
	n, err := unix.Fgetxattr(fd, stored.OpaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// inImage reports whether a layer has the container path p (whiteouts
// of upper layers aside, as Docker's check), and puts the status of the
// first (top) layer's entry there in st.
func (w *walker) inImage(p string, st *unix.Stat_t) (bool, error) {
	for _, l := range w.layers {
		if ok, err := hasPath(l, p, st); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// hasPath reports whether the layer directory layer has the clean
// absolute path p, each element of it but the last a real directory, and
// puts its status (not followed) in st.
func hasPath(layer int, p string, st *unix.Stat_t) (bool, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(layer, strings.TrimPrefix(p, "/"), &how)
	switch {
	case err == nil:
		defer unix.Close(fd)
		if err := unix.Fstat(fd, st); err != nil {
			return false, fmt.Errorf("changes: look %s up in an image layer: fstat: %w", p, err)
		}
		return true, nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return false, nil // not there, or not there through real directories
	}
	return false, fmt.Errorf("changes: look %s up in an image layer: openat2: %w", p, err)
}
