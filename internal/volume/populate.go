package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/spec"
)

// Prepare readies volume name for a container's mount and returns its
// data directory: it creates the volume if it does not exist (Docker's
// implicit creation) and, on the volume's first use, if its data
// directory is empty, copies src into it: the directory the container's
// root has at the mount's target (nil: none), as Docker copies an
// image's content into a new volume. Later uses copy nothing. Prepare
// holds the volume's lock, so two containers starting at once copy once.
// A volume with a size must be mounted already (Mount, run by the
// launcher on the host): its content goes to its own file system.
//
// The copy is safe against a kill midway: it goes to a temporary
// directory inside the volume's directory, which replaces the empty data
// directory by one rename; the populated marker is written after. Owners,
// modes, times and extended attributes are kept where the file system
// takes them; symbolic links are copied as links and never followed, in
// src or in the volume; hard links become separate files; sockets are
// left out. In a volume with a size, whose data directory is a mount
// point, the copy goes to a temporary directory inside its file system
// instead, whose entries then move up (see populateMounted).
//
// In a container with a user namespace of IDs from (Count 0: none) src is
// seen through idmapped mounts, which show the owner U of a file on disk
// as from.Base+U: the copy writes U, since the volume is mounted
// idmapped in turn (on disk, a volume has the owners its containers see).
func (s Store) Prepare(name string, src *os.File, from spec.IDRange) (string, error) {
	v, err := s.Create(name, Options{})
	if err != nil {
		return "", err
	}
	dir, err := s.lock("prepare", name)
	if err != nil {
		return "", err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	c := copier{shift: from}
	fill := c.populate
	if v.Size != 0 {
		if err := s.checkMounted(name); err != nil {
			return "", fmt.Errorf("prepare volume %s: %w", name, err)
		}
		fill = c.populateMounted
	}
	var st unix.Stat_t
	if unix.Fstatat(dfd, populatedName, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return s.Mountpoint(name), nil
	}
	if err := fill(dir, src); err != nil {
		return "", fmt.Errorf("prepare volume %s: copy the image's content: %w", name, err)
	}
	fd, err := unix.Openat(dfd, populatedName, unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return "", fmt.Errorf("prepare volume %s: openat(O_CREAT) %s: %w", name, populatedName, err)
	}
	unix.Close(fd)
	return s.Mountpoint(name), nil
}

// copier copies a container's directory into a volume; shift is the
// user namespace IDs its source's owners are seen as (see Prepare).
type copier struct{ shift spec.IDRange }

// owner returns the owner a copy writes for a file of the source seen
// owned by uid:gid: the IDs in c.shift back to the container's, others
// as they are.
func (c copier) owner(uid, gid uint32) (int, int) {
	return int(c.unshift(uid)), int(c.unshift(gid))
}

func (c copier) unshift(id uint32) uint32 {
	if id >= c.shift.Base && id-c.shift.Base < c.shift.Count {
		return id - c.shift.Base
	}
	return id
}

// populate copies src (nil: nothing) into the data directory in the
// volume directory dir if that is empty (see Prepare).
func (c copier) populate(dir, src *os.File) error {
	if src == nil {
		return nil
	}
	dfd := int(dir.Fd())
	empty, err := isEmpty(dfd, dataName)
	if err != nil || !empty {
		return err
	}
	if err := c.copyTree(dir, populateTemp, src); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, populateTemp, dfd, dataName); err != nil { // replaces the empty directory
		return fmt.Errorf("renameat %s to %s: %w", populateTemp, dataName, err)
	}
	return nil
}

// Temporary entries in a mounted data directory (populateMounted): a
// copy under way, and a copy complete whose entries are moving up.
const (
	copyTemp = ".cove-populate"
	moveTemp = ".cove-populated"
)

// lostFound is the directory mkfs.ext4 makes in a file system's root.
const lostFound = "lost+found"

// populateMounted is populate for a data directory that is the mount
// point of the volume's file system, which a rename cannot replace: it
// removes ext4's empty lost+found first (a program may want an empty
// directory, as PostgreSQL's initdb does) and, if the directory is then
// empty, copies src into a temporary directory inside it, renamed once
// complete, whose entries then move up one by one. A copy killed midway
// is deleted and made again; moves killed midway are finished.
func (c copier) populateMounted(dir, src *os.File) error {
	data, err := openDir(int(dir.Fd()), dataName, dataName)
	if err != nil {
		return err
	}
	defer data.Close()
	dfd := int(data.Fd())
	unix.Unlinkat(dfd, lostFound, unix.AT_REMOVEDIR) // fails if gone or not empty: then it stays
	var st unix.Stat_t
	if unix.Fstatat(dfd, moveTemp, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		if err := os.RemoveAll(filepath.Join(fdPath(data), copyTemp)); err != nil { // a killed copy's; RemoveAll follows no link
			return fmt.Errorf("remove %s: %w", copyTemp, err)
		}
		empty, err := isEmpty(dfd, ".")
		if err != nil || !empty || src == nil {
			return err
		}
		if err := c.copyTree(data, copyTemp, src); err != nil {
			return err
		}
		if err := c.copyMeta(src, data); err != nil {
			return err
		}
		if err := unix.Renameat(dfd, copyTemp, dfd, moveTemp); err != nil {
			return fmt.Errorf("renameat %s to %s: %w", copyTemp, moveTemp, err)
		}
	}
	return moveUp(data, moveTemp)
}

// moveUp moves the entries of the directory name in dir into dir, then
// removes it.
func moveUp(dir *os.File, name string) error {
	sub, err := openDir(int(dir.Fd()), name, name)
	if err != nil {
		return err
	}
	defer sub.Close()
	names, err := sub.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", name, err)
	}
	for _, n := range names {
		if err := unix.Renameat(int(sub.Fd()), n, int(dir.Fd()), n); err != nil {
			return fmt.Errorf("renameat %s to %s: %w", filepath.Join(name, n), n, err)
		}
	}
	if err := unix.Unlinkat(int(dir.Fd()), name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("unlinkat %s: %w", name, err)
	}
	return nil
}

// copyTree copies the directory src, with its metadata, to the new
// directory name in dir, removing what a killed copy left there first.
func (c copier) copyTree(dir *os.File, name string, src *os.File) error {
	if err := os.RemoveAll(filepath.Join(fdPath(dir), name)); err != nil { // RemoveAll follows no link
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := unix.Mkdirat(int(dir.Fd()), name, 0o700); err != nil {
		return fmt.Errorf("mkdirat %s: %w", name, err)
	}
	tmp, err := openDir(int(dir.Fd()), name, name)
	if err != nil {
		return err
	}
	defer tmp.Close()
	if err := c.copyDir(src, tmp, 0); err != nil {
		return err
	}
	return c.copyMeta(src, tmp)
}

// isEmpty reports whether the directory name in dfd has no entries.
func isEmpty(dfd int, name string) (bool, error) {
	d, err := openDir(dfd, name, name)
	if err != nil {
		return false, err
	}
	defer d.Close()
	_, err = d.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// openDir opens the directory name in dfd for reading, refusing a
// symbolic link; path names it in messages.
func openDir(dfd int, name, path string) (*os.File, error) {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("openat %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// maxDepth bounds the nesting copyDir follows: each level holds two open
// directories, and an image may nest directories without end.
const maxDepth = 256

// copyDir copies the entries of directory src into the empty directory
// dst, depth levels down from the top.
func (c copier) copyDir(src, dst *os.File, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: directories nested more than %d deep", src.Name(), maxDepth)
	}
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", src.Name(), err)
	}
	for _, n := range names {
		if err := c.copyEntry(src, dst, n, depth); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies the entry name of src into dst by its type, without
// following it if it is a symbolic link.
func (c copier) copyEntry(src, dst *os.File, name string, depth int) error {
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	path := filepath.Join(src.Name(), name)
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("fstatat %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return c.copySubdir(src, dst, name, depth)
	case unix.S_IFREG:
		return c.copyFile(src, dst, name)
	case unix.S_IFLNK:
		target, err := readlinkat(sfd, name)
		if err != nil {
			return fmt.Errorf("readlinkat %s: %w", path, err)
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return fmt.Errorf("symlinkat %s: %w", path, err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknodat %s: %w", path, err)
		}
	default: // a socket: nothing to copy
		return nil
	}
	return c.copyNodeMeta(dfd, name, &st)
}

// copySubdir copies the directory name of src into dst.
func (c copier) copySubdir(src, dst *os.File, name string, depth int) error {
	if err := unix.Mkdirat(int(dst.Fd()), name, 0o700); err != nil {
		return fmt.Errorf("mkdirat %s: %w", filepath.Join(dst.Name(), name), err)
	}
	s, err := openDir(int(src.Fd()), name, filepath.Join(src.Name(), name))
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := openDir(int(dst.Fd()), name, filepath.Join(dst.Name(), name))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := c.copyDir(s, d, depth+1); err != nil {
		return err
	}
	return c.copyMeta(s, d)
}

// copyFile copies the regular file name of src into dst.
func (c copier) copyFile(src, dst *os.File, name string) error {
	path := filepath.Join(src.Name(), name)
	sfd, err := unix.Openat(int(src.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("openat %s: %w", path, err)
	}
	s := os.NewFile(uintptr(sfd), path)
	defer s.Close()
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("copy %s: not a regular file any more (%v)", path, err)
	}
	dfd, err := unix.Openat(int(dst.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("openat(O_CREAT) %s: %w", path, err)
	}
	d := os.NewFile(uintptr(dfd), path)
	defer d.Close()
	if _, err := io.Copy(d, s); err != nil {
		return fmt.Errorf("copy %s: %w", path, err)
	}
	return c.copyMeta(s, d)
}

// copyMeta gives the open file dst src's extended attributes, owner,
// mode and times.
func (c copier) copyMeta(src, dst *os.File) error {
	copyXattrs(int(src.Fd()), int(dst.Fd()))
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("fstat %s: %w", src.Name(), err)
	}
	uid, gid := c.owner(st.Uid, st.Gid)
	if err := unix.Fchown(int(dst.Fd()), uid, gid); err != nil {
		return fmt.Errorf("fchown %s: %w", src.Name(), err)
	}
	if err := unix.Fchmod(int(dst.Fd()), st.Mode&0o7777); err != nil { // after chown, which clears set-id bits
		return fmt.Errorf("fchmod %s: %w", src.Name(), err)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNano(fdPath(dst), ts); err != nil {
		return fmt.Errorf("utimensat %s: %w", src.Name(), err)
	}
	return nil
}

// copyNodeMeta gives the entry name of dfd, a symbolic link or a device
// or FIFO just created, the owner, mode and times of st, never following
// it (a link's mode does not exist).
func (c copier) copyNodeMeta(dfd int, name string, st *unix.Stat_t) error {
	uid, gid := c.owner(st.Uid, st.Gid)
	if err := unix.Fchownat(dfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("fchownat %s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(dfd, name, st.Mode&0o7777, 0); err != nil { // not a link: created by mknodat
			return fmt.Errorf("fchmodat %s: %w", name, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimensat %s: %w", name, err)
	}
	return nil
}

// copyXattrs copies the extended attributes of the open file src to dst
// where dst's file system takes them; one it refuses is left out (as
// Docker's copy does), so errors are not reported.
func copyXattrs(src, dst int) {
	size, err := unix.Flistxattr(src, nil)
	if err != nil || size <= 0 {
		return
	}
	list := make([]byte, size)
	if size, err = unix.Flistxattr(src, list); err != nil {
		return
	}
	for _, attr := range splitNul(list[:size]) {
		n, err := unix.Fgetxattr(src, attr, nil)
		if err != nil {
			continue
		}
		v := make([]byte, n)
		if n, err = unix.Fgetxattr(src, attr, v); err == nil {
			unix.Fsetxattr(dst, attr, v[:n], 0)
		}
	}
}

// splitNul splits a NUL-terminated list of names.
func splitNul(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if i > 0 {
			out = append(out, string(b[:i]))
		}
		b = b[min(i+1, len(b)):]
	}
	return out
}

// readlinkat reads the symbolic link name in dfd.
func readlinkat(dfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// fdPath names an open file for calls that take a path.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }
