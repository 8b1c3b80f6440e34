package isolate

import (
	"fmt"
	"os"
	"path"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/spec"
)

// mountAll mounts c.Mounts over c.Rootfs, in order. Mount points are
// created and resolved inside the rootfs: a symlink in it cannot send a
// mount, or a new directory, outside it. Mounts are attached through file
// descriptors (open_tree, move_mount), so a rootfs changed meanwhile, say
// by another container sharing it, cannot redirect them either.
func mountAll(c Config) error {
	if len(c.Mounts) == 0 {
		return nil
	}
	root, err := os.OpenFile(c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, m := range c.Mounts {
		what := m.Source
		if m.Type == spec.MountTmpfs {
			what = "a tmpfs"
		}
		if err := mountOne(root, m); err != nil {
			return fmt.Errorf("mount %s on %s: %w", what, m.Target, err)
		}
	}
	return nil
}

// mountOne mounts m under root.
func mountOne(root *os.File, m spec.Mount) error {
	if m.Type == spec.MountTmpfs {
		target, err := pathrs.MkdirAllHandle(root, m.Target, 0o755)
		if err != nil {
			return fmt.Errorf("create the mount point: %w", err)
		}
		defer target.Close()
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		opts := "mode=1777"
		if m.Size > 0 {
			opts += ",size=" + strconv.FormatUint(m.Size, 10)
		}
		return unix.Mount("tmpfs", fdPath(target), "tmpfs", flags, opts)
	}
	src, err := unix.OpenTree(unix.AT_FDCWD, m.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open %s: %w", m.Source, err)
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return err
	}
	target, err := mountPoint(root, m.Target, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return fmt.Errorf("create the mount point: %w", err)
	}
	defer target.Close()
	if m.ReadOnly {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(src, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			return fmt.Errorf("make it read-only: %w", err)
		}
	}
	return unix.MoveMount(src, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// mountPoint returns a handle on target inside root, created if missing:
// a directory, or for a file mount (dir false) an empty file.
func mountPoint(root *os.File, target string, dir bool) (*os.File, error) {
	if dir {
		return pathrs.MkdirAllHandle(root, target, 0o755)
	}
	parent, err := pathrs.MkdirAllHandle(root, path.Dir(target), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), path.Base(target), unix.O_CREAT|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create file %s: %w", target, err)
	}
	return os.NewFile(uintptr(fd), target), nil
}

// fdPath names an open file for syscalls that take a path.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// readOnlyRoot makes the container's root mount read-only; the mounts
// under it keep their own modes.
func readOnlyRoot(c Config) error {
	if !c.ReadOnly {
		return nil
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	return unix.MountSetattr(unix.AT_FDCWD, c.Rootfs, 0, &attr)
}
