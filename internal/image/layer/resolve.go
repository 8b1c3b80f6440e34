package layer

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/cove-project/cove/internal/image/stored"
	"golang.org/x/sys/unix"
)

// leaf names one entry: name inside the directory open as parent (an
// O_PATH descriptor); name "." is that directory itself. Every operation
// on a leaf is a *at call relative to parent that does not follow a
// symlink at name, so nothing a layer made can redirect it.
type leaf struct {
	parent int
	name   string
}

// resolveFlags confine a one-component lookup: no symlink, no magic link,
// no ".." out of the directory. Unpack adds RESOLVE_NO_XDEV: no crossing
// onto another mount.
const resolveFlags = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_BENEATH

// openDir returns an O_PATH descriptor of the directory at the clean path
// rel inside the root, looked up one component at a time with
// openat2(RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH): every component must be a
// real directory, and one that is a symlink is refused. With create, a
// missing component is made, mode 0755. The caller closes the descriptor.
func (u *unpacker) openDir(rel string, create bool) (int, error) {
	fd, err := openBeneath(u.root, ".", u.resolve)
	if err != nil || rel == "." {
		return fd, err
	}
	for i, c := range strings.Split(rel, "/") {
		next, err := openBeneath(fd, c, u.resolve)
		if create && errors.Is(err, unix.ENOENT) {
			next, err = mkdirBeneath(fd, c, u.resolve)
		}
		unix.Close(fd)
		if err != nil {
			at := path.Join(strings.Split(rel, "/")[:i+1]...)
			return -1, fmt.Errorf("directory %q: %w", at, err)
		}
		fd = next
	}
	return fd, nil
}

// openLeaf opens the parent directory of the clean path rel, as openDir
// does, and returns rel's leaf in it. The caller closes l.parent.
func (u *unpacker) openLeaf(rel string, create bool) (leaf, error) {
	parentRel, name := split(rel)
	fd, err := u.openDir(parentRel, create)
	return leaf{fd, name}, err
}

// openBeneath opens the directory name, one component, inside dirfd,
// with openat2's RESOLVE_ flags resolve.
func openBeneath(dirfd int, name string, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolve}
	fd, err := unix.Openat2(dirfd, name, &how)
	switch {
	case errors.Is(err, unix.ELOOP):
		return -1, fmt.Errorf("%w: a symlink, not followed: openat2: %w", ErrRefused, err)
	case errors.Is(err, unix.EXDEV):
		return -1, fmt.Errorf("%w: outside the layer directory: openat2: %w", ErrRefused, err)
	case err != nil:
		return -1, fmt.Errorf("openat2: %w", err)
	}
	return fd, nil
}

// mkdirBeneath makes the directory name (mode 0755 whatever the umask)
// inside dirfd and opens it as openBeneath does.
func mkdirBeneath(dirfd int, name string, resolve uint64) (int, error) {
	if err := unix.Mkdirat(dirfd, name, 0o755); err != nil {
		return -1, fmt.Errorf("mkdir: %w", err)
	}
	if err := chmod(leaf{dirfd, name}, 0o755); err != nil {
		return -1, err
	}
	return openBeneath(dirfd, name, resolve)
}

// lstat returns the status of l itself, not of what a symlink there
// points to; exists is false when there is nothing at l.
func lstat(l leaf) (st unix.Stat_t, exists bool, err error) {
	err = unix.Fstatat(l.parent, l.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("fstatat: %w", err)
	}
	return st, true, nil
}

// isDir reports whether st is a directory.
func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// clear makes room at l for a new entry, a directory if dir. An existing
// directory stays when the new entry is a directory too (keep true), as
// tar does; anything else there is removed, a directory with all it holds.
// wasWhiteout reports that what was there is a whiteout (made by this
// layer: the directory started empty).
func clear(l leaf, dir bool) (keep, wasWhiteout bool, err error) {
	st, exists, err := lstat(l)
	if err != nil || !exists {
		return false, false, err
	}
	if dir && isDir(&st) {
		return true, false, nil
	}
	return false, stored.IsWhiteout(st.Mode, st.Rdev), removeAll(l)
}

// removeAll removes l and, if it is a directory, everything under it,
// without following symlinks.
func removeAll(l leaf) error {
	err := unix.Unlinkat(l.parent, l.name, 0)
	if !errors.Is(err, unix.EISDIR) {
		if err != nil {
			return fmt.Errorf("unlink: %w", err)
		}
		return nil
	}
	fd, err := unix.Openat(l.parent, l.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	d := os.NewFile(uintptr(fd), l.name)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("readdir: %w", err)
	}
	for _, n := range names {
		if err := removeAll(leaf{fd, n}); err != nil {
			return err
		}
	}
	if err := unix.Unlinkat(l.parent, l.name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("rmdir: %w", err)
	}
	return nil
}
