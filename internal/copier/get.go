package copier

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Stat is the status of path p in the container (Docker's HEAD
// /containers/ID/archive): of a symlink at its end itself, unless p ends
// in "/" or "/.". A path that is not there wraps ErrNotFound.
func (r Root) Stat(p string) (PathStat, error) {
	abs := absPath(p)
	l, err := r.locate(abs)
	if err != nil {
		return PathStat{}, err
	}
	defer unix.Close(l.fd)
	st, err := lstat(l)
	if err != nil {
		return PathStat{}, err
	}
	return r.pathStat(abs, &st)
}

// pathStat is the PathStat of abs, whose status is st.
func (r Root) pathStat(abs string, st *unix.Stat_t) (PathStat, error) {
	ps := PathStat{Name: path.Base(abs), Size: st.Size, Mode: fileMode(st.Mode), Mtime: time.Unix(st.Mtim.Unix())}
	if st.Mode&sIFMT == unix.S_IFLNK {
		target, err := r.evalSymlinks(abs)
		if err != nil {
			return ps, err
		}
		ps.LinkTarget = target
	}
	return ps, nil
}

// Source is a path of the container to send as a tar stream.
type Source struct {
	Stat PathStat
	root Root
	l    leaf
	st   unix.Stat_t
}

// Open opens path p of the container (see Stat) to send. The caller
// closes the Source.
func (r Root) Open(p string) (*Source, error) {
	abs := absPath(p)
	l, err := r.locate(abs)
	if err != nil {
		return nil, err
	}
	s := &Source{root: r, l: l}
	if s.st, err = lstat(l); err == nil {
		s.Stat, err = r.pathStat(abs, &s.st)
	}
	if err != nil {
		unix.Close(l.fd)
		return nil, err
	}
	return s, nil
}

// Close releases the source.
func (s *Source) Close() { unix.Close(s.l.fd) }

// Send writes the source to w as Docker's GET /containers/ID/archive
// does: a PAX tar stream whose first entry is named Stat.Name (a
// directory's entries are under it: "etc/", "etc/hosts"; "./", "./x"
// for "/etc/."; "/", "/etc" for the root). Symlinks are not followed;
// directories have entries of their own (a proc or sysfs directory's
// alone), a file seen again through a hard link is a link entry, sockets
// are left out; times are whole seconds, owners the container's IDs (not
// names), and a regular file's security.capability is kept. A file that shrinks while it is read is
// padded with zeros to the size its entry declared.
func (s *Source) Send(w io.Writer) error { return s.SendAs(w, s.Stat.Name) }

// SendAs is Send with the first entry named name (docker cp's copy to a
// new name).
func (s *Source) SendAs(w io.Writer, name string) error {
	a := archiver{tw: tar.NewWriter(w), root: s.root, links: map[[2]uint64]string{}}
	if err := a.entry(s.l, name, &s.st); err != nil {
		return err
	}
	if err := a.tw.Close(); err != nil {
		return fmt.Errorf("write the tar stream: %w", err)
	}
	return nil
}

// archiver writes one source's tar stream.
type archiver struct {
	tw    *tar.Writer
	root  Root
	links map[[2]uint64]string // device and inode of a file written, and its name
	mount uint64               // not 0: the mount (statx's mount ID) the stream stays on
}

// entry writes l, whose status is st, as name and, for a directory,
// everything under it.
func (a *archiver) entry(l leaf, name string, st *unix.Stat_t) error {
	hdr := a.header(name, st)
	var err error
	switch st.Mode & sIFMT {
	case unix.S_IFSOCK:
		return nil
	case unix.S_IFDIR:
	default:
		if off, err := a.offMount(l); off || err != nil {
			return err
		}
	}
	switch st.Mode & sIFMT {
	case unix.S_IFDIR:
		return a.dir(l, hdr, st)
	case unix.S_IFREG:
		return a.file(l, hdr, st)
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname, err = readlinkat(l)
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = map[uint32]byte{unix.S_IFCHR: tar.TypeChar, unix.S_IFBLK: tar.TypeBlock}[st.Mode&sIFMT]
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	}
	if err != nil {
		return err
	}
	return a.write(hdr)
}

// header is the header of every entry of status st, named name.
func (a *archiver) header(name string, st *unix.Stat_t) *tar.Header {
	uid, gid := a.root.Maps.ToContainer(st.Uid, st.Gid)
	return &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(uid), Gid: int(gid),
		ModTime: time.Unix(st.Mtim.Sec, 0), Format: tar.FormatPAX}
}

// write writes hdr.
func (a *archiver) write(hdr *tar.Header) error {
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write the tar entry %s: %w", hdr.Name, err)
	}
	return nil
}

// dir writes the directory l and what it holds, in name order.
func (a *archiver) dir(l leaf, hdr *tar.Header, st *unix.Stat_t) error {
	hdr.Typeflag = tar.TypeDir
	if hdr.Name[len(hdr.Name)-1] != '/' {
		hdr.Name += "/"
	}
	f, err := openLeaf(l, unix.O_RDONLY|unix.O_DIRECTORY, st)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := a.write(hdr); err != nil || pseudo(f) {
		return err
	}
	if off, err := a.offMount(leaf{int(f.Fd()), ""}); off || err != nil {
		return err
	}
	return a.children(f, hdr.Name)
}

// children writes what the directory d holds, in name order, each named
// prefix + its name.
func (a *archiver) children(d *os.File, prefix string) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read the directory %s: %w", prefix, err)
	}
	slices.Sort(names)
	for _, n := range names {
		child := leaf{int(d.Fd()), n}
		cst, err := lstat(child)
		if errors.Is(err, ErrNotFound) {
			continue // removed since it was listed
		}
		if err != nil {
			return err
		}
		if err := a.entry(child, prefix+n, &cst); err != nil {
			return err
		}
	}
	return nil
}

// offMount reports whether l is on another mount than the one the stream
// stays on, if it stays on one.
func (a *archiver) offMount(l leaf) (bool, error) {
	if a.mount == 0 {
		return false, nil
	}
	id, err := mountID(l)
	return id != a.mount, err
}

// mountID is the ID of the mount l is on (statx's STATX_MNT_ID).
func mountID(l leaf) (uint64, error) {
	flags := unix.AT_SYMLINK_NOFOLLOW
	if l.name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	var stx unix.Statx_t
	if err := unix.Statx(l.fd, l.name, flags, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, fmt.Errorf("statx %s: %w", l.name, err)
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, fmt.Errorf("statx %s: no mount ID (Linux 5.8 or later gives it)", l.name)
	}
	return stx.Mnt_id, nil
}

// file writes the regular file l, or a link entry to its first name when
// it was written before.
func (a *archiver) file(l leaf, hdr *tar.Header, st *unix.Stat_t) error {
	id := [2]uint64{st.Dev, st.Ino}
	if first, ok := a.links[id]; ok && st.Nlink > 1 {
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
		return a.write(hdr)
	}
	f, err := openLeaf(l, unix.O_RDONLY, st)
	if err != nil {
		return err
	}
	defer f.Close()
	a.links[id] = hdr.Name
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	if size, err := unix.Fgetxattr(int(f.Fd()), capXattr, nil); err == nil && size > 0 {
		buf := make([]byte, size)
		if n, err := unix.Fgetxattr(int(f.Fd()), capXattr, buf); err == nil {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr." + capXattr: string(buf[:n])}
		}
	}
	if err := a.write(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(a.tw, io.MultiReader(io.LimitReader(f, st.Size), zeros{})); err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
		return fmt.Errorf("write %s: %w", hdr.Name, err)
	}
	return nil
}

// pseudo reports whether the directory d is on a proc or sysfs file
// system (the container's /proc and /sys): its entry is sent, not what it
// holds, which is the kernel's and not files (Docker's copy reads the
// container's root without them).
func pseudo(d *os.File) bool {
	var fs unix.Statfs_t
	return unix.Fstatfs(int(d.Fd()), &fs) == nil && (fs.Type == unix.PROC_SUPER_MAGIC || fs.Type == unix.SYSFS_MAGIC)
}

// capXattr is the xattr of a file's capabilities.
const capXattr = "security.capability"

// zeros reads as endless zero bytes.
type zeros struct{}

// Read fills p with zeros.
func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// openLeaf opens l, which must still be the file of status st (a
// container may replace it between the two), with flags, never through a
// symlink at l.
func openLeaf(l leaf, flags int, st *unix.Stat_t) (*os.File, error) {
	var fd int
	var err error
	if l.name == "" { // reopen the O_PATH descriptor, which is what abs resolved to
		fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(l.fd), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	} else {
		fd, err = unix.Openat(l.fd, l.name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: openat: %w", l.name, err)
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: fstat: %w", l.name, err)
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: it was replaced while it was read", l.name)
	}
	return os.NewFile(uintptr(fd), l.name), nil
}
