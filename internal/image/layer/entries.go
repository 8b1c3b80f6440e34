package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// unpacker holds the state of one Unpack.
type unpacker struct {
	root    int // the layer directory
	lim     Limits
	stats   Stats
	dirs    []dirTimes      // directories whose times are set at the end
	resolve uint64          // openat2's RESOLVE_ flags for each path component
	extract *ExtractOptions // Extract's; nil: an image layer (Unpack)
}

// dirTimes is a directory made or updated by an entry, to get the entry's
// times once the stream has ended (its contents change its mtime before).
type dirTimes struct {
	rel      string
	dev, ino uint64 // to skip it if it has since been replaced
	times    []unix.Timespec
}

// entry unpacks the tar entry hdr, whose data is data.
func (u *unpacker) entry(hdr *tar.Header, data io.Reader) error {
	if err := u.count(hdr); err != nil || hdr.Typeflag == tar.TypeXGlobalHeader {
		return err
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	k, target, err := u.classify(rel)
	switch {
	case err != nil:
		return err
	case k == aufsMeta:
		return nil
	case k == opaque:
		return u.opaque(target)
	case k == whiteout:
		return u.whiteout(target)
	}
	if err := checkType(rel, hdr); err != nil || u.skipped(rel, hdr) {
		return err
	}
	if hdr.Typeflag == tar.TypeLink {
		return u.hardLink(rel, hdr.Linkname)
	}
	return u.create(rel, hdr, data)
}

// count charges hdr to the stats and checks the limits: its data size as
// declared (archive/tar reads no more than that, and reports a short
// entry as an error).
func (u *unpacker) count(hdr *tar.Header) error {
	u.stats.Entries++
	if u.lim.MaxEntries > 0 && u.stats.Entries > u.lim.MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrLimit, u.lim.MaxEntries)
	}
	switch hdr.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return nil // archive/tar reads no data for these, whatever the size says
	}
	if hdr.Size < 0 || u.lim.MaxBytes > 0 && hdr.Size > u.lim.MaxBytes-u.stats.Bytes {
		return fmt.Errorf("%w: %d data bytes after %d would pass %d", ErrLimit, hdr.Size, u.stats.Bytes, u.lim.MaxBytes)
	}
	u.stats.Bytes += hdr.Size
	return nil
}

// create makes the entry hdr at the clean path rel, replacing what an
// earlier entry made there, then sets its attributes.
func (u *unpacker) create(rel string, hdr *tar.Header, data io.Reader) error {
	m, err := u.metaOf(hdr)
	if err != nil {
		return err
	}
	l, err := u.openLeaf(rel, true)
	if err != nil {
		return err
	}
	defer unix.Close(l.parent)
	keep, wasWhiteout, err := u.clear(l, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.dir(l, rel, m, keep, wasWhiteout)
	case tar.TypeSymlink:
		err = symlink(l, hdr.Linkname, m)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = node(l, hdr, m)
	default:
		err = file(l, data, hdr.Size, m)
	}
	if err != nil {
		return err
	}
	return setTimes(l, m.times)
}

// checkType refuses the entry types Unpack does not make, and anything
// but a directory at the layer root. Contiguous files and old GNU sparse
// files are regular files.
func checkType(rel string, hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if rel == "." {
			return fmt.Errorf("%w: only a directory may stand for the layer root", ErrRefused)
		}
		return nil
	case tar.TypeDir:
		return nil
	}
	return fmt.Errorf("%w: unsupported tar entry type %q", ErrRefused, hdr.Typeflag)
}

// file makes the regular file l with size bytes of data, and gives it
// its attributes through the descriptor it wrote with.
func file(l leaf, data io.Reader, size int64, m meta) error {
	fd, err := unix.Openat(l.parent, l.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	f := os.NewFile(uintptr(fd), l.name)
	defer f.Close()
	_, err = io.CopyN(f, data, size)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := setMetaFD(fd, m); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// dir makes the directory l (the clean path rel), or with keep updates
// the one there, and notes its times for the end. A directory that
// replaces a whiteout is opaque: the lower directory is deleted, not
// merged into.
func (u *unpacker) dir(l leaf, rel string, m meta, keep, wasWhiteout bool) error {
	if !keep {
		if err := unix.Mkdirat(l.parent, l.name, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	if err := setMeta(l, m, false); err != nil {
		return err
	}
	if wasWhiteout {
		if err := setOpaque(l); err != nil {
			return err
		}
	}
	st, _, err := lstat(l)
	if err != nil {
		return err
	}
	u.dirs = append(u.dirs, dirTimes{rel: rel, dev: st.Dev, ino: st.Ino, times: m.times})
	return nil
}

// symlink makes the symlink l pointing to target, which is stored as is:
// it is resolved only in the container, against the container's root.
func symlink(l leaf, target string, m meta) error {
	if err := unix.Symlinkat(target, l.parent, l.name); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	return setMeta(l, m, true)
}

// node makes the device or FIFO l.
func node(l leaf, hdr *tar.Header, m meta) error {
	typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
	var dev uint64
	if typ != unix.S_IFIFO {
		if hdr.Devmajor < 0 || hdr.Devmajor > 1<<32-1 || hdr.Devminor < 0 || hdr.Devminor > 1<<32-1 {
			return fmt.Errorf("%w: device %d:%d out of range", ErrRefused, hdr.Devmajor, hdr.Devminor)
		}
		dev = unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	}
	if err := unix.Mknodat(l.parent, l.name, typ|m.mode&0o777, int(dev)); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return setMeta(l, m, false)
}
