package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Size is the space volume name's content takes: the sizes of its
// regular files, a file with several links counted once (as Docker's
// UsageData.Size); for a volume with a size, the space its image takes
// on the host (its allocated blocks), which removing it frees, mounted
// or not. A volume not created yet takes none.
func (s Store) Size(name string) (int64, error) {
	if err := checkName("measure", name); err != nil {
		return 0, err
	}
	var st unix.Stat_t
	err := unix.Lstat(s.image(name), &st)
	switch {
	case err == nil:
		return st.Blocks * 512, nil // st_blocks counts 512-byte units
	case !errors.Is(err, unix.ENOENT):
		return 0, fmt.Errorf("measure volume %s: lstat %s: %w", name, s.image(name), err)
	}
	return DirSize(s.Mountpoint(name))
}

// DirSize is the size of the regular files under dir (see Size), 0 if
// dir does not exist. Symbolic links are not followed.
func DirSize(dir string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += info.Size()
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return total, nil
	}
	if err != nil {
		return 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return total, nil
}
