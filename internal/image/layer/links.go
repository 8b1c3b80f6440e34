package layer

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// opaque marks the directory at the clean path rel opaque, making it
// first (mode 0755) if the marker comes before the directory's entry.
func (u *unpacker) opaque(rel string) error {
	fd, err := u.openDir(rel, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return setOpaque(leaf{fd, "."})
}

// whiteout hides the clean path rel of the lower layers with a 0:0
// character device. If this layer already made something at rel, that
// stays (a whiteout applies to lower layers only, and the entry hides the
// lower one anyway), but a directory there is made opaque, since the
// lower directory is deleted rather than merged into.
func (u *unpacker) whiteout(rel string) error {
	l, err := u.openLeaf(rel, true)
	if err != nil {
		return err
	}
	defer unix.Close(l.parent)
	st, exists, err := lstat(l)
	switch {
	case err != nil:
		return err
	case exists && isDir(&st):
		return setOpaque(l)
	case exists:
		return nil
	}
	if err := unix.Mknodat(l.parent, l.name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return nil
}

// hardLink makes rel a hard link to target, the name of an entry this
// layer has already made, taken like an entry name (inside the layer
// directory, never through a symlink). The target must not be a
// directory. A hard link entry has no attributes of its own: it shares
// the target's inode.
func (u *unpacker) hardLink(rel, target string) error {
	t, err := cleanName(target)
	if err == nil {
		err = u.check(t)
	}
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if t == rel {
		return fmt.Errorf("%w: hard link to itself", ErrRefused)
	}
	tl, err := u.openLeaf(t, false)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", target, err)
	}
	defer unix.Close(tl.parent)
	st, exists, err := lstat(tl)
	switch {
	case err != nil:
		return fmt.Errorf("hard link target %q: %w", target, err)
	case !exists:
		return fmt.Errorf("hard link target %q: not in this layer: %w", target, unix.ENOENT)
	case isDir(&st):
		return fmt.Errorf("%w: hard link target %q is a directory", ErrRefused, target)
	}
	return u.link(rel, tl)
}

// link makes the clean path rel a hard link to t, replacing what an
// earlier entry made there. linkat without AT_SYMLINK_FOLLOW links a
// symlink at t itself.
func (u *unpacker) link(rel string, t leaf) error {
	l, err := u.openLeaf(rel, true)
	if err != nil {
		return err
	}
	defer unix.Close(l.parent)
	if _, _, err := u.clear(l, false); err != nil {
		return err
	}
	if err := unix.Linkat(t.parent, t.name, l.parent, l.name, 0); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	return nil
}

// setDirTimes gives each directory an entry made or updated its times,
// the last entry's where there were several, once nothing more is made in
// it. A directory replaced since (its path now holds another inode, or
// nothing) is skipped.
func (u *unpacker) setDirTimes() error {
	for _, d := range u.dirs {
		if err := u.setDirTime(d); err != nil {
			return fmt.Errorf("%q: %w", d.rel, err)
		}
	}
	return nil
}

// setDirTime sets the times of one directory noted by dir.
func (u *unpacker) setDirTime(d dirTimes) error {
	l, err := u.openLeaf(d.rel, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil // a directory on the path was replaced
	}
	if err != nil {
		return err
	}
	defer unix.Close(l.parent)
	st, exists, err := lstat(l)
	if err != nil || !exists || st.Dev != d.dev || st.Ino != d.ino {
		return err
	}
	return setTimes(l, d.times)
}
