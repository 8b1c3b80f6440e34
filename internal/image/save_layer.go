package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/image/stored"
	"golang.org/x/sys/unix"
)

// Whiteout names of the OCI layer format (package layer turns them into
// overlayfs form when it unpacks; writeLayerTar turns them back).
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	paxXattrPrefix = "SCHILY.xattr."

	overlayRedirect = "trusted.overlay.redirect"
	overlayMetacopy = "trusted.overlay.metacopy"
)

// fileID is an inode, to find hard links.
type fileID struct{ dev, ino uint64 }

// layerTar renders one unpacked layer directory.
type layerTar struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[fileID]string // first path of each inode with more than one link
	ids   IDMap             // nil: the owners as they are
}

// writeLayerTar writes the unpacked layer dir (an overlayfs lower
// directory, as package layer makes it, or a container's upper one) to w
// as an OCI layer tar: a 0:0 character device becomes the whiteout
// ".wh.NAME", a directory with trusted.overlay.opaque="y" is followed by
// its ".wh..wh..opq" marker. Entries come in name order, directories
// first of what they hold; a second link to an inode is a hard link to
// the first; owners are numeric (no names), modes keep setuid, setgid
// and sticky, times are the modification times (to the nanosecond, in
// PAX records), and the xattrs an image may carry are kept (user.*,
// security.capability, POSIX ACLs; not trusted.*). Whiteouts and markers
// are dated at the epoch, and the layer root is an entry ("./") only when
// its mode or owner is not 0755 root's, so the tar depends on nothing but
// the layer's files. With ids, owners, the IDs of POSIX ACLs and a file
// capability's root ID are mapped by it, and an ID it does not map is
// refused. A tree deeper than maxLayerDepth is refused.
//
// The tree may be hostile and change while it is read (a running
// container's): every entry is looked up in its directory, held open,
// without following a symlink, and pinned (O_PATH) before anything else;
// its status and xattrs are the pinned inode's, a directory or regular
// file is opened through the pin (so no path leads out of dir), and no
// other file (a device, a FIFO) is ever opened. What changes meanwhile
// may still be caught half-way, as Docker's commit without a pause would.
func writeLayerTar(ctx context.Context, dir string, w io.Writer, ids IDMap) error {
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	lt := &layerTar{ctx: ctx, tw: tar.NewWriter(w), links: map[fileID]string{}, ids: ids}
	if err := lt.dir(d, ".", 0); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return lt.tw.Close()
}

// maxLayerDepth bounds how deep a layer's tree may be: each level holds a
// descriptor while it is written.
const maxLayerDepth = 1024

// entryError names the entry (its path in the layer) whose writing
// failed; it is made once, where the failure is.
type entryError struct {
	rel string
	err error
}

func (e *entryError) Error() string { return e.rel + ": " + e.err.Error() }
func (e *entryError) Unwrap() error { return e.err }

// atEntry names err's entry rel, unless an entry below already is.
func atEntry(rel string, err error) error {
	var ee *entryError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &entryError{rel: rel, err: err}
}

// dir writes the directory rel, open as d at depth (its entry, its
// opaque marker), and what it holds.
func (lt *layerTar) dir(d *os.File, rel string, depth int) error {
	if err := lt.ctx.Err(); err != nil {
		return err
	}
	if depth > maxLayerDepth {
		return atEntry(rel, fmt.Errorf("the tree is more than %d directories deep", maxLayerDepth))
	}
	st, hdr, opaque, err := lt.header(d, "", rel)
	if err != nil {
		return atEntry(rel, err)
	}
	hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
	if rel != "." || st.Mode&0o7777 != 0o755 || hdr.Uid != 0 || hdr.Gid != 0 || len(hdr.PAXRecords) > 0 {
		if err := lt.tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	if opaque {
		if err := lt.tw.WriteHeader(markerHeader(path.Join(rel, opaqueMarker))); err != nil {
			return err
		}
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return atEntry(rel, err)
	}
	slices.Sort(names)
	for _, name := range names {
		p := path.Join(rel, name)
		if err := lt.entry(d, name, p, depth); err != nil {
			return atEntry(p, err)
		}
	}
	return nil
}

// entry writes the entry name of the directory parent (at depth), rel in
// the layer, recursing into a directory; a second link to an inode is a
// hard link to the first.
func (lt *layerTar) entry(parent *os.File, name, rel string, depth int) error {
	at := fdPath(parent) + "/" + name // name is no path: Readdirnames gives no "/", "." or ".."
	pin, err := os.OpenFile(at, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", errors.Unwrap(err))
	}
	defer pin.Close()
	st, hdr, _, err := lt.header(pin, at, rel)
	if err != nil {
		return err
	}
	typ := st.Mode & unix.S_IFMT
	switch {
	case typ == unix.S_IFDIR:
		d, err := reopen(pin, unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer d.Close()
		return lt.dir(d, rel, depth+1)
	case stored.IsWhiteout(st.Mode, st.Rdev):
		dir, name := path.Split(rel)
		return lt.tw.WriteHeader(markerHeader(dir + whiteoutPrefix + name))
	case st.Nlink > 1:
		id := fileID{st.Dev, st.Ino}
		if first, ok := lt.links[id]; ok {
			return lt.tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeLink, Linkname: first, ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
		}
		lt.links[id] = rel
	}
	switch typ {
	case unix.S_IFREG:
		return lt.file(pin, st, hdr)
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname, err = readlinkPinned(pin)
	case unix.S_IFCHR:
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("file type %#o cannot be in a layer", st.Mode&unix.S_IFMT)
	}
	if err != nil {
		return err
	}
	hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	return lt.tw.WriteHeader(hdr)
}

// file writes the regular file pinned by pin, of status st, with its
// contents.
func (lt *layerTar) file(pin *os.File, st unix.Stat_t, hdr *tar.Header) error {
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	f, err := reopen(pin, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lt.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(lt.tw, f, st.Size); err != nil {
		return fmt.Errorf("read %d bytes: %w", st.Size, err)
	}
	return nil
}

// reopen opens, read-only with flags, the directory or regular file pin
// holds: that very inode, whatever its name is now.
func reopen(pin *os.File, flags int) (*os.File, error) {
	f, err := os.OpenFile(fdPath(pin), os.O_RDONLY|flags|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open: %w", errors.Unwrap(err))
	}
	return f, nil
}

// readlinkPinned is the target of the symlink pin holds.
func readlinkPinned(pin *os.File) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(pin.Fd()), "", buf)
	if err != nil {
		return "", fmt.Errorf("readlinkat: %w", err)
	}
	return string(buf[:n]), nil
}

// fdPath names what f holds open (the magic link of a process's
// descriptor, never a container's symlink).
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// header is the tar header of the entry f holds (a pin or an open
// directory), rel in the layer, with its attributes (type left to the
// caller), its status, and whether it is an opaque directory. A symlink's
// xattrs are read by its name at (in its pinned directory, not followed):
// its pin cannot reach them.
func (lt *layerTar) header(f *os.File, at, rel string) (unix.Stat_t, *tar.Header, bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return st, nil, false, fmt.Errorf("fstat: %w", err)
	}
	uid, gid, err := st.Uid, st.Gid, error(nil)
	if !stored.IsWhiteout(st.Mode, st.Rdev) { // a marker has no owner (overlayfs makes them as the mounter)
		uid, gid, err = lt.owner(st.Uid, st.Gid)
	}
	if err != nil {
		return st, nil, false, err
	}
	hdr := &tar.Header{Name: rel, Mode: int64(st.Mode & 0o7777), Uid: int(uid), Gid: int(gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), Format: tar.FormatPAX}
	x := xattrSource{path: fdPath(f), follow: true}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		x = xattrSource{path: at}
	}
	xattrs, opaque, err := imageXattrs(x)
	if err == nil && lt.ids != nil {
		err = lt.ids.xattrs(xattrs)
	}
	if err != nil {
		return st, nil, false, err
	}
	for k, v := range xattrs {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattrPrefix+k] = v
	}
	return st, hdr, opaque, nil
}

// owner maps an owner by lt.ids.
func (lt *layerTar) owner(uid, gid uint32) (uint32, uint32, error) {
	if lt.ids == nil {
		return uid, gid, nil
	}
	u, err := lt.ids.id(uid)
	if err != nil {
		return 0, 0, err
	}
	g, err := lt.ids.id(gid)
	return u, g, err
}

// markerHeader is a whiteout or opaque marker entry: an empty file.
func markerHeader(name string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}

// imageXattrs are the xattrs of x that a layer may carry, as Docker's
// layers carry them: user.*, security.capability and the POSIX ACLs (not
// the host's security labels); and whether x is marked opaque for
// overlayfs. An overlayfs redirect or metacopy (an upper directory's,
// with those features on) is refused: the entry does not hold what it
// shows.
func imageXattrs(x xattrSource) (map[string]string, bool, error) {
	keys, err := listXattrs(x)
	if err != nil {
		return nil, false, err
	}
	out := map[string]string{}
	opaque := false
	for _, k := range keys {
		if k == overlayRedirect || k == overlayMetacopy {
			return nil, false, fmt.Errorf("it has the overlayfs attribute %s (redirect_dir or metacopy on): it cannot be a layer's entry", k)
		}
		keep := strings.HasPrefix(k, "user.") || k == capabilityKey || k == aclAccess || k == aclDefault
		if !keep && k != stored.OpaqueXattr {
			continue
		}
		v, err := getXattr(x, k)
		if err != nil {
			return nil, false, err
		}
		if k == stored.OpaqueXattr {
			opaque = v == "y"
			continue
		}
		out[k] = v
	}
	return out, opaque, nil
}

// xattrSource names the entry whose xattrs are read: path, followed (a
// descriptor's magic link) or not (a symlink by its name).
type xattrSource struct {
	path   string
	follow bool
}

// maxXattrBuf bounds the buffers for xattr names and values (Linux
// allows 64 KiB of each).
const maxXattrBuf = 1 << 20

// listXattrs are the names of x's xattrs.
func listXattrs(x xattrSource) ([]string, error) {
	list, op := unix.Llistxattr, "llistxattr"
	if x.follow {
		list, op = unix.Listxattr, "listxattr"
	}
	buf := make([]byte, 1024)
	for {
		n, err := list(x.path, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < maxXattrBuf {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		var keys []string
		for _, k := range bytes.Split(buf[:n], []byte{0}) {
			if len(k) > 0 {
				keys = append(keys, string(k))
			}
		}
		return keys, nil
	}
}

// getXattr is the value of x's xattr key.
func getXattr(x xattrSource, key string) (string, error) {
	get, op := unix.Lgetxattr, "lgetxattr"
	if x.follow {
		get, op = unix.Getxattr, "getxattr"
	}
	buf := make([]byte, 256)
	for {
		n, err := get(x.path, key, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < maxXattrBuf {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", op, key, err)
		}
		return string(buf[:n]), nil
	}
}
