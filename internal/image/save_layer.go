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
// security.*, POSIX ACLs; not trusted.*). Whiteouts and markers are
// dated at the epoch, and the layer root is an entry ("./") only when
// its mode or owner is not 0755 root's, so the tar depends on nothing but
// the layer's files. With ids, owners, the IDs of POSIX ACLs and a file
// capability's root ID are mapped by it, and an ID it does not map is
// refused.
//
// The tree may be hostile and change while it is read (a running
// container's): every entry is looked up in its directory, held open,
// without following a symlink; a directory or file is opened without
// following one and must be the inode its status named (so no path leads
// out of dir, and no device or FIFO is ever opened). What changes
// meanwhile may still be caught half-way, as Docker's commit without a
// pause would.
func writeLayerTar(ctx context.Context, dir string, w io.Writer, ids IDMap) error {
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	lt := &layerTar{ctx: ctx, tw: tar.NewWriter(w), links: map[fileID]string{}, ids: ids}
	if err := lt.dir(d, "."); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return lt.tw.Close()
}

// dir writes the directory rel, open as d (its entry, its opaque marker),
// and what it holds.
func (lt *layerTar) dir(d *os.File, rel string) error {
	if err := lt.ctx.Err(); err != nil {
		return err
	}
	st, hdr, opaque, err := lt.header(fdPath(d)+"/.", rel)
	if err != nil {
		return err
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
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		p := path.Join(rel, name)
		if err := lt.entry(d, name, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// entry writes the entry name of the directory parent, rel in the layer,
// recursing into a directory; a second link to an inode is a hard link to
// the first.
func (lt *layerTar) entry(parent *os.File, name, rel string) error {
	at := fdPath(parent) + "/" + name // the last element is never followed
	st, hdr, _, err := lt.header(at, rel)
	if err != nil {
		return err
	}
	typ := st.Mode & unix.S_IFMT
	switch {
	case typ == unix.S_IFDIR:
		d, err := openSame(at, st, unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer d.Close()
		return lt.dir(d, rel)
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
		return lt.file(at, st, hdr)
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname, err = os.Readlink(at)
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

// file writes the regular file at with its contents.
func (lt *layerTar) file(at string, st unix.Stat_t, hdr *tar.Header) error {
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	f, err := openSame(at, st, 0)
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

// openSame opens at (read-only, with flags; its last element not
// followed, not blocking on it) and checks it is the inode st describes.
func openSame(at string, st unix.Stat_t, flags int) (*os.File, error) {
	f, err := os.OpenFile(at, os.O_RDONLY|flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &now); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: at, Err: err}
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
		f.Close()
		return nil, errors.New("it was replaced while it was read")
	}
	return f, nil
}

// fdPath names the directory open as f (its last element followed: a
// process's descriptor, never a container's symlink).
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// header is the tar header of the entry at (not followed), rel in the
// layer, with its attributes (type left to the caller), its status, and
// whether it is an opaque directory.
func (lt *layerTar) header(at, rel string) (unix.Stat_t, *tar.Header, bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(at, &st); err != nil {
		return st, nil, false, &os.PathError{Op: "lstat", Path: rel, Err: err}
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
	xattrs, opaque, err := imageXattrs(at)
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

// imageXattrs are the xattrs of p (not followed) that a layer may carry,
// as package layer accepts them: user.*, security.*, and the POSIX ACLs;
// and whether p is marked opaque for overlayfs. An overlayfs redirect or
// metacopy (an upper directory's, with those features on) is refused: the
// entry does not hold what it shows.
func imageXattrs(p string) (map[string]string, bool, error) {
	keys, err := listXattrs(p)
	if err != nil {
		return nil, false, err
	}
	out := map[string]string{}
	opaque := false
	for _, k := range keys {
		if k == overlayRedirect || k == overlayMetacopy {
			return nil, false, fmt.Errorf("%s has the overlayfs attribute %s (redirect_dir or metacopy on): it cannot be a layer's entry", p, k)
		}
		keep := strings.HasPrefix(k, "user.") || strings.HasPrefix(k, "security.") ||
			k == "system.posix_acl_access" || k == "system.posix_acl_default"
		if !keep && k != stored.OpaqueXattr {
			continue
		}
		v, err := getXattr(p, k)
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

// maxXattrBuf bounds the buffers for xattr names and values (Linux
// allows 64 KiB of each).
const maxXattrBuf = 1 << 20

// listXattrs are the names of p's xattrs (p not followed).
func listXattrs(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < maxXattrBuf {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
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

// getXattr is the value of p's xattr key (p not followed).
func getXattr(p, key string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, key, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < maxXattrBuf {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "lgetxattr " + key, Path: p, Err: err}
		}
		return string(buf[:n]), nil
	}
}
