package inside

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/volume"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// mountAll mounts c.Mounts over c.Rootfs, in order. Mount points are
// created and resolved inside the rootfs: a symlink in it cannot send a
// mount, or a new directory, outside it. Mounts are attached through file
// descriptors (open_tree, move_mount), so a rootfs changed meanwhile, say
// by another container sharing it, cannot redirect them either. In a user
// namespace (t not nil) the bind mounts' trees come from the first stage.
func mountAll(c launch.Config, t *trees) error {
	if len(c.Mounts) == 0 {
		return nil
	}
	root, err := os.OpenFile(c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, m := range c.Mounts {
		src := -1
		if t != nil && HostTree(m) {
			src = t.next()
		}
		if err := mountOne(root, m, src); err != nil {
			return err
		}
	}
	return nil
}

// mountOne mounts m under root: a bind mount or volume from the detached
// tree src (which it closes) if src ≥ 0, else cloned (a volume prepared)
// here. Its errors name the
// mount: the syscall with the source and target, or the mount point.
func mountOne(root *os.File, m spec.Mount, src int) error {
	if m.Type == spec.MountVolume && src < 0 {
		data, err := prepareVolume(root, m, spec.IDRange{})
		if err != nil {
			return err
		}
		m.Source = data // bound like a host directory
	}
	if m.Type == spec.MountTmpfs {
		target, err := mountPoint(root, m.Target, true)
		if err != nil {
			return err
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
		if err := unix.Mount("tmpfs", FDPath(target), "tmpfs", flags, opts); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", m.Target, err)
		}
		return nil
	}
	if src < 0 {
		var err error
		if src, err = CloneBind(m, -1); err != nil {
			return err
		}
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return fmt.Errorf("fstat %s: %w", m.Source, err)
	}
	target, err := mountPoint(root, m.Target, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.MoveMount(src, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount %s on %s: %w", m.Source, m.Target, err)
	}
	return nil
}

// CloneBind clones the tree of bind mount m (recursively) as a detached
// mount, read-only if m says so and, with m.Idmap, idmapped into user
// namespace ns (ns ≥ 0; without a user namespace cove refuses idmap).
func CloneBind(m spec.Mount, ns int) (int, error) {
	src, err := unix.OpenTree(unix.AT_FDCWD, m.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", m.Source, err)
	}
	if m.Idmap {
		if err := Idmap(src, ns); err != nil {
			unix.Close(src)
			return -1, fmt.Errorf("idmapped mount of %s on %s: %w", m.Source, m.Target, err)
		}
	}
	if m.ReadOnly {
		if err := ReadOnlyTree(src, m.Source); err != nil {
			unix.Close(src)
			return -1, err
		}
	}
	return src, nil
}

// ReadOnlyTree makes the detached mount tree fd, of what, read-only,
// recursively.
func ReadOnlyTree(fd int, what string) error {
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("mount_setattr(MOUNT_ATTR_RDONLY) %s: %w", what, err)
	}
	return nil
}

// HostTree reports whether mount m of a container with a user namespace
// is a tree the first stage, host root, makes (a bind mount or a named
// volume) and passes to the init in order.
func HostTree(m spec.Mount) bool { return m.Type == spec.MountBind || m.Type == spec.MountVolume }

// prepareVolume readies the named volume of m for its mount and returns
// its data directory on the host: the volume is created if missing and,
// on its first use, gets what the container's root has at the target
// (volume.Store.Prepare; from: the IDs of the user namespace root is seen
// from, if any). The target is resolved inside root, so a symlink in the
// image cannot make the copy read the host's files.
func prepareVolume(root *os.File, m spec.Mount, from spec.IDRange) (string, error) {
	src, err := imageDir(root, m.Target)
	if err != nil {
		return "", fmt.Errorf("volume %s at %s: %w", m.Source, m.Target, err)
	}
	if src != nil {
		defer src.Close()
	}
	return volume.Default().Prepare(m.Source, src, from)
}

// VolumeTree readies the named volume of m for a container with a user
// namespace ns of IDs ids, whose root tree (its idmapped mounts) is root
// (see prepareVolume), and returns its data directory as a detached mount
// idmapped into ns: on disk a volume has the owners its containers see,
// with or without a user namespace.
func VolumeTree(root *os.File, m spec.Mount, ns int, ids spec.IDRange) (int, error) {
	data, err := prepareVolume(root, m, ids)
	if err != nil {
		return -1, err
	}
	m.Source, m.Idmap = data, true
	return CloneBind(m, ns)
}

// imageDir opens the directory target inside root for reading, or
// returns nil if there is none there (nothing to copy into a volume).
func imageDir(root *os.File, target string) (*os.File, error) {
	h, err := pathrs.OpenatInRoot(root, target)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in the root: %w", target, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, fmt.Errorf("fstat %s: %w", target, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, nil
	}
	d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open %s in the root: %w", target, err)
	}
	return d, nil
}

// mountPoint returns an O_PATH handle on target inside root, resolving
// symlinks inside root and creating what is missing: a directory, or for
// a file mount (dir false) an empty file. The target must be of that
// type (pathrs refuses a non-directory) and must not be root itself (a symlink such as "x -> /" would
// otherwise put the mount over the container's root).
func mountPoint(root *os.File, target string, dir bool) (*os.File, error) {
	var f *os.File
	var err error
	if dir {
		f, err = pathrs.MkdirAllHandle(root, target, 0o755)
	} else {
		f, err = fileMountPoint(root, target)
	}
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", target, err)
	}
	var st, rootSt unix.Stat_t
	if err = unix.Fstat(int(f.Fd()), &st); err != nil {
		err = fmt.Errorf("mount point %s: fstat: %w", target, err)
	} else if err = unix.Fstat(int(root.Fd()), &rootSt); err != nil {
		err = fmt.Errorf("fstat %s: %w", root.Name(), err)
	}
	switch {
	case err != nil:
	case st.Dev == rootSt.Dev && st.Ino == rootSt.Ino:
		err = fmt.Errorf("mount point %s is the container's root (through a symlink in the rootfs)", target)
	case !dir && st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("mount point %s is not a regular file, but the source is a file", target)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// fileMountPoint opens file target inside root, or creates it empty.
func fileMountPoint(root *os.File, target string) (*os.File, error) {
	f, err := pathrs.OpenatInRoot(root, target)
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	parent, err := pathrs.MkdirAllHandle(root, path.Dir(target), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), path.Base(target), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EEXIST) {
		// Created meanwhile (another container sharing the rootfs), or a
		// dangling symlink.
		if f, err := pathrs.OpenatInRoot(root, target); err == nil {
			return f, nil
		}
		return nil, errors.New("a dangling symlink in the rootfs; point it at an existing file or remove it")
	}
	if err != nil {
		return nil, fmt.Errorf("openat(O_CREAT) %s: %w", path.Base(target), err)
	}
	return os.NewFile(uintptr(fd), target), nil
}

// FDPath names an open file for syscalls that take a path.
func FDPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// readOnlyRoot makes the container's root mount read-only; the mounts
// under it keep their own modes.
func readOnlyRoot(c launch.Config) error {
	if !c.ReadOnly {
		return nil
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(unix.AT_FDCWD, c.Rootfs, 0, &attr); err != nil {
		return fmt.Errorf("mount_setattr(MOUNT_ATTR_RDONLY) %s: %w", c.Rootfs, err)
	}
	return nil
}

// volatileRoot covers rootfs (in this mount namespace) with a tmpfs that
// holds an overlay: rootfs below, read-only, and the tmpfs's upper
// directory above, where every write goes. It returns the overlay's path.
// The overlay's options name directories by file descriptor, so no path
// needs escaping.
func volatileRoot(rootfs string) (string, error) {
	lower, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer lower.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(lower.Fd()), &st); err != nil {
		return "", fmt.Errorf("fstat %s: %w", rootfs, err)
	}
	if err := unix.Mount("tmpfs", rootfs, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return "", fmt.Errorf("mount tmpfs on %s: %w", rootfs, err)
	}
	dirs := map[string]*os.File{}
	for _, d := range []string{"upper", "work", "root"} {
		p := filepath.Join(rootfs, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			return "", err
		}
		f, err := os.OpenFile(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		defer f.Close()
		dirs[d] = f
	}
	// The overlay's root has the upper directory's owner and mode: the
	// rootfs's.
	upper := filepath.Join(rootfs, "upper")
	if err := unix.Chown(upper, int(st.Uid), int(st.Gid)); err != nil {
		return "", fmt.Errorf("chown %s: %w", upper, err)
	}
	if err := unix.Chmod(upper, st.Mode&0o7777); err != nil {
		return "", fmt.Errorf("chmod %s: %w", upper, err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", FDPath(lower), FDPath(dirs["upper"]), FDPath(dirs["work"]))
	merged := filepath.Join(rootfs, "root")
	if err := unix.Mount("overlay", FDPath(dirs["root"]), "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount overlay on %s: %w", merged, err)
	}
	return merged, nil
}

// imageRoot mounts an image container's root at StateDir/root (in the
// container's own mount namespace): an overlay of the image's layers, top
// first, with the container's writable layer in StateDir/upper, kept
// across restarts (mounted under its lock: LockState), or, when volatile,
// on a tmpfs mounted over StateDir that vanishes with the container. A
// throwaway layer (c.Image.Throwaway) starts empty and is mounted volatile
// (ReadyLayer). The layers are never written.
func imageRoot(c launch.Config) (string, error) {
	dir := c.Image.StateDir
	if c.Volatile {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
			return "", fmt.Errorf("mount tmpfs on %s: %w", dir, err)
		}
	} else {
		unlock, err := LockState(dir)
		if err != nil {
			return "", err
		}
		defer unlock()
	}
	var fds []*os.File
	defer func() {
		for _, f := range fds {
			f.Close()
		}
	}()
	open := func(p string) (string, error) {
		f, err := os.OpenFile(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		fds = append(fds, f)
		return FDPath(f), nil
	}
	lowers := make([]string, len(c.Image.Layers))
	for i, l := range c.Image.Layers {
		p, err := open(l)
		if err != nil {
			return "", fmt.Errorf("image layer: %w", err)
		}
		lowers[i] = p
	}
	if err := ReadyLayer(dir, c.Image.Throwaway); err != nil {
		return "", err
	}
	own := map[string]string{}
	for _, d := range []string{launch.UpperDir, launch.WorkDir, "root"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
		fp, err := open(p)
		if err != nil {
			return "", err
		}
		own[d] = fp
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"), own[launch.UpperDir], own[launch.WorkDir])
	if c.Image.Throwaway {
		opts += "," + OverlayVolatile
	}
	root := filepath.Join(dir, "root")
	if err := unix.Mount("overlay", own["root"], "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount overlay of %d layers on %s: %w", len(lowers), root, err)
	}
	return root, nil
}

// OverlayVolatile is the overlay option of a throwaway writable layer
// (launch.Image.Throwaway): the overlay never syncs its upper file system,
// not even at its unmount. It leaves work/incompat/volatile in its work
// directory, which refuses any later mount with that directory.
const OverlayVolatile = "volatile"

// ReadyLayer readies the writable layer in state directory dir for its
// overlay. A throwaway layer starts empty: what an earlier mount left
// (a stop whose removal failed, before a restart) is removed, upper and
// work directories both, as the kernel's volatile marker asks. Any other
// layer must not carry that marker: it would refuse the mount with a bare
// EINVAL.
func ReadyLayer(dir string, throwaway bool) error {
	work := filepath.Join(dir, launch.WorkDir)
	if throwaway {
		for _, d := range []string{launch.UpperDir, launch.WorkDir} {
			if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
				return fmt.Errorf("empty the throwaway writable layer: %w", err)
			}
		}
		return nil
	}
	if _, err := os.Lstat(filepath.Join(work, "work", "incompat", "volatile")); err == nil {
		return fmt.Errorf("the writable layer in %s was a removed run's, mounted volatile, which nothing may mount again; cove rm the container to start afresh", dir)
	}
	return nil
}
