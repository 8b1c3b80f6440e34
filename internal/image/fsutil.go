package image

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// randomID is 16 hex digits for names of work in progress.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeFileAtomic replaces dst with data: a temporary file in tmpDir (on
// dst's file system) is written, fsynced, renamed over dst, and dst's
// directory fsynced. On error dst is as it was and the temporary is gone.
func writeFileAtomic(tmpDir, dst string, data []byte) error {
	f, err := os.CreateTemp(tmpDir, "write-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// syncDir fsyncs the directory dir, making renames and removals in it
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

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
		return fmt.Errorf("the image store %s is out of space (nothing partial was kept): %w", s.root, err)
	}
	return err
}
