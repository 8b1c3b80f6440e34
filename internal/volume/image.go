package volume

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/spec"
)

// A volume with a size is an ext4 file system in the sparse file
// disk.img in its directory, made when the volume is created and
// loop-mounted on its data directory at its use (Mount), in the host's
// mount namespace: the launcher mounts it before it makes the
// container's namespace, so every container using the volume shares one
// mount (two file systems on one image would corrupt it), and writes
// beyond the size fail with ENOSPC. The loop device detaches itself when
// the file system is unmounted (Remove); after a reboot the next use
// mounts it again.

// imageName is the file holding a sized volume's file system, of type
// FSType.
const imageName = "disk.img"

// FSType is the type of a sized volume's file system.
const FSType = "ext4"

// MountFunc mounts the file system of type fstype in the regular file
// image on the directory target, through a loop device that detaches
// itself once the file system is unmounted (LO_FLAGS_AUTOCLEAR), reusing
// the loop device image has if it has one. The launcher's (package
// isolate) asks systemd: the launcher's unit may not use loop devices.
type MountFunc func(image, fstype, target string) error

// ErrSize is wrapped by the errors about a volume's size: out of range,
// or not the size the volume has.
var ErrSize = errors.New("bad volume size")

// image is volume name's file system image, if it has a size.
func (s Store) image(name string) string { return filepath.Join(s.dir(name), imageName) }

// mkfsPaths are where mkfs.ext4 is looked for: the PATH, then where
// Debian's e2fsprogs puts it (a PATH without sbin is common).
var mkfsPaths = []string{"mkfs.ext4", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"}

// makeImage creates the sparse file path of size bytes with an empty
// ext4 file system in it, owned by root, all its blocks usable by any
// user (no blocks reserved for root) and 4 KiB blocks even when small.
func makeImage(path string, size uint64) error {
	mkfs, err := lookMkfs()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create the image: %w", err)
	}
	err = f.Truncate(int64(size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("size the image: %w", err)
	}
	out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", "-T", "default", "-E", "root_owner=0:0", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", mkfs, path, err, bytes.TrimSpace(out))
	}
	return nil
}

// lookMkfs finds mkfs.ext4 (see mkfsPaths).
func lookMkfs() (string, error) {
	var err error
	for _, p := range mkfsPaths {
		var path string
		if path, err = exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("a volume with a size needs mkfs.ext4 (Debian's package e2fsprogs): %w", err)
}

// checkSize returns an error wrapping ErrSize if size is not 0 (none)
// and out of spec.CheckVolumeSize's range.
func checkSize(size uint64) error {
	if size == 0 {
		return nil
	}
	if err := spec.CheckVolumeSize(size); err != nil {
		return fmt.Errorf("%w: %w", ErrSize, err)
	}
	return nil
}

// sizeChange is the error about volume v asked to have size bytes, which
// it does not have: a volume keeps the size it was created with. by
// says who asks.
func sizeChange(v Volume, size uint64, by string) error {
	return fmt.Errorf("%w: %s says size %s, but volume %s was created with %s; a volume's size cannot change: keep %s, or copy its content out, remove the volume (and its volume file) and create it anew",
		ErrSize, by, sizeText(size), v.Name, sizeText(v.Size), sizeText(v.Size))
}

// sizeText formats a volume's size; 0 is none.
func sizeText(n uint64) string {
	if n == 0 {
		return "none (a directory)"
	}
	return spec.FormatSize(n)
}

// Mount readies volume name on the host for a container, in the
// launcher before the container's mount namespace is made from the
// host's: it creates the volume if missing (with its volume file's
// labels and size) and, if the volume has a size, mounts its file system
// on its data directory with mount unless it is mounted there already.
// It holds the volume's lock, so containers starting at once mount it
// once. A volume file whose size is not the volume's is refused
// (ErrSize).
func (s Store) Mount(name string, mount MountFunc) error {
	v, err := s.Create(name, Options{})
	if err != nil {
		return err
	}
	if v.File != "" {
		decl, err := s.declared(name)
		if err != nil {
			return fmt.Errorf("mount volume %s: %w", name, err)
		}
		if decl.Size != v.Size {
			return fmt.Errorf("mount volume %s: %w", name, sizeChange(v, decl.Size, "its volume file "+v.File))
		}
	}
	if v.Size == 0 {
		return nil
	}
	dir, err := s.lock("mount", name)
	if err != nil {
		return err
	}
	defer dir.Close()
	ok, err := s.mounted(name)
	if err == nil && !ok {
		err = mount(s.image(name), FSType, s.Mountpoint(name))
	}
	if err != nil {
		return fmt.Errorf("mount volume %s: %w", name, err)
	}
	return nil
}

// mounted reports whether volume name's data directory is a mount of its
// image, and fails if it is a mount of something else. Its errors do not
// name the volume.
func (s Store) mounted(name string) (bool, error) {
	var dir, data unix.Stat_t
	if err := unix.Lstat(s.dir(name), &dir); err != nil {
		return false, fmt.Errorf("lstat %s: %w", s.dir(name), err)
	}
	if err := unix.Lstat(s.Mountpoint(name), &data); err != nil {
		return false, fmt.Errorf("lstat %s: %w", s.Mountpoint(name), err)
	}
	if data.Dev == dir.Dev {
		return false, nil
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(data.Dev), unix.Minor(data.Dev))
	backing, _ := os.ReadFile("/sys/dev/block/" + dev + "/loop/backing_file") // none: not a loop device
	image, err := filepath.EvalSymlinks(s.image(name))
	if err == nil && strings.TrimSuffix(string(backing), "\n") == image {
		return true, nil
	}
	return false, fmt.Errorf("%s is a mount of device %s, not of the volume's image %s", s.Mountpoint(name), dev, s.image(name))
}

// checkMounted fails unless volume name's file system is mounted on its
// data directory: what a container writes would otherwise go to the
// store's file system, unbounded. Its errors do not name the volume.
func (s Store) checkMounted(name string) error {
	ok, err := s.mounted(name)
	if err == nil && !ok {
		err = fmt.Errorf("its file system %s is not mounted on %s (the launcher mounts it on the host)", s.image(name), s.Mountpoint(name))
	}
	return err
}

// unmount unmounts volume name's file system if it is mounted, lazily if
// it is busy: its image is then freed, and its loop device detached,
// when the last process using it lets go. The caller holds the volume's
// lock.
func (s Store) unmount(name string) error {
	ok, err := s.mounted(name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if !ok {
		return nil
	}
	err = unix.Unmount(s.Mountpoint(name), 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(s.Mountpoint(name), unix.MNT_DETACH)
	}
	if err != nil {
		return fmt.Errorf("remove volume %s: umount %s: %w", name, s.Mountpoint(name), err)
	}
	return nil
}

// lock opens volume name's directory and takes its lock (flock), held
// until the directory is closed; op names the operation in errors.
func (s Store) lock(op, name string) (*os.File, error) {
	dir, err := os.OpenFile(s.dir(name), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s volume %s: %w", op, name, err)
	}
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		dir.Close()
		return nil, fmt.Errorf("%s volume %s: flock %s: %w", op, name, s.dir(name), err)
	}
	return dir, nil
}
