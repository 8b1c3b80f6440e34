package image

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the whole file system holding path (syncfs(2)): one call
// instead of an fsync per file of an unpacked layer.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: path, Err: err}
	}
	return nil
}

// errExist is returned by renameNoReplace when dst is already there.
var errExist = errors.New("destination exists")

// renameNoReplace renames src to dst unless dst exists (errExist then).
// File systems without RENAME_NOREPLACE fall back to rename(2), which
// still refuses a non-empty directory as the destination.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = unix.Rename(src, dst)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST), errors.Is(err, unix.ENOTEMPTY):
		return errExist
	default:
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
}

// fullDisk adds a plain statement to err when the store ran out of space
// (or inodes), keeping err in the chain.
func (s *Store) fullDisk(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("the image store %s is out of space (nothing partial was kept): %w", s.Root(), err)
	}
	return err
}
