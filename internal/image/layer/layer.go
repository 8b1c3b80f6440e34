// Package layer unpacks one OCI image layer (an uncompressed tar stream)
// into a directory of its own, ready to serve as an overlayfs lower
// directory.
//
// The input is hostile: names that leave the directory are refused,
// symlinks are never followed while creating anything (a path that crosses
// one is refused), image xattrs may not forge overlayfs metadata, and
// Limits bound what one layer may write. OCI whiteouts are converted to
// overlayfs form: ".wh.NAME" becomes a 0:0 character device NAME, and
// ".wh..wh..opq" becomes the xattr trusted.overlay.opaque="y" on its
// directory.
//
// Needs: root (CAP_CHOWN, CAP_FOWNER, CAP_MKNOD, CAP_SYS_ADMIN for
// trusted.* xattrs, CAP_DAC_OVERRIDE for entries under a directory an
// image made unwritable), Linux 5.6 or later (openat2), and /proc mounted
// (xattrs are set through /proc/self/fd). The layer directory's file
// system must support mknod and trusted.* xattrs (ext4, xfs, btrfs, tmpfs;
// not overlayfs itself).
package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Limits bound what one layer may create. A field of zero or less sets no
// bound.
type Limits struct {
	MaxBytes   int64 // data bytes of all entries (regular files' contents), as declared and as read
	MaxEntries int64 // tar entries, whiteouts and skipped ones included
}

// Stats says what a layer held.
type Stats struct {
	Bytes   int64 // data bytes of all entries: regular files' contents (other entries normally carry none)
	Entries int64 // tar entries read
}

var (
	// ErrRefused marks an entry a layer may not hold: a name or hard link
	// that leaves the layer directory, a path through a symlink, a forbidden
	// xattr (trusted.*, most system.*), an unsupported entry type.
	ErrRefused = errors.New("refused")
	// ErrLimit marks a layer that exceeds its Limits.
	ErrLimit = errors.New("layer limit exceeded")
)

// Unpack writes the uncompressed layer tar stream r into dir, which must be
// an existing empty directory the caller created (and will rename into
// place when Unpack returns nil). The result is an overlayfs lower
// directory: a whiteout entry (.wh.NAME) becomes a character device 0:0
// named NAME; an opaque marker (.wh..wh..opq) in directory D sets the xattr
// trusted.overlay.opaque="y" on D and is not itself created.
//
// Entry names are taken relative to dir ("/etc/x" and "./etc/x" are
// "etc/x"); a name, or a hard link target, whose ".." components climb out
// of dir is refused. Parent directories must be real directories inside
// dir (missing ones are made, mode 0755, owned by root); a path through a
// symlink is refused. A later entry with the name of an earlier one
// replaces it, except that a directory over a directory keeps its contents
// and takes the new metadata. As the OCI spec says, a whiteout hides only
// lower layers: where this layer already made NAME, .wh.NAME leaves it (and
// makes it opaque if it is a directory); an entry after .wh.NAME replaces
// the whiteout (a directory doing so is made opaque). Owners are numeric
// ids; modes keep setuid, setgid and sticky bits; times are set on
// everything but hard links, on directories once the stream has ended.
//
// Unpack reads r up to the end-of-archive block (a stream without one is
// truncated, an error) and no further: a caller that digests the stream
// reads the rest itself. PAX global headers are ignored, and AUFS
// bookkeeping entries (".wh..wh.plnk/...", ".wh..wh.aufs") skipped.
//
// On error, dir holds a partial layer, which the caller must remove; the
// error names the entry and, at the leaf, the failed system call, and
// wraps ErrRefused, ErrLimit or the system error. Stats count what was read
// up to the end or the error.
func Unpack(dir string, r io.Reader, lim Limits) (Stats, error) {
	root, err := openEmptyDir(dir)
	if err != nil {
		return Stats{}, err
	}
	defer root.Close()
	u := &unpacker{root: int(root.Fd()), lim: lim, resolve: resolveFlags | unix.RESOLVE_NO_XDEV}
	err = u.run(r, "layer")
	return u.stats, err
}

// ExtractOptions are what an Extract may do that Unpack does not.
type ExtractOptions struct {
	Limits
	// NoOverwriteDirNonDir refuses an entry that would replace a
	// directory with anything but a directory, or anything but a
	// directory with a directory (Docker's noOverwriteDirNonDir).
	NoOverwriteDirNonDir bool
	// SkipDevices leaves character and block devices out (Docker's, in
	// a container with a user namespace).
	SkipDevices bool
	// NoSetID clears the setuid and setgid bits of what is not a
	// directory and leaves security.capability out: files copied out of
	// a container give no privilege on the host.
	NoSetID bool
	// Owner gives the owner an entry gets from the one its header
	// names; nil keeps the header's. An error refuses the entry.
	Owner func(uid, gid int) (int, int, error)
	// Check, if not nil, may refuse an entry by its clean name relative
	// to the directory (and a hard link by its target's).
	Check func(rel string) error
}

// Extract writes the uncompressed tar stream r into the open directory
// dir (docker cp's copy into a container): with Unpack's rules for
// hostile input (names and hard links confined to dir, no path through a
// symlink, the xattr policy, Limits, times), except that dir need not be
// empty, a path may cross onto another mount under dir (a volume), no
// name is a whiteout (".wh.NAME" is an ordinary entry), and o says whose
// the entries are and what they may replace. A "." directory entry (dir
// itself) is skipped, and an empty stream is an empty archive. Errors are
// Unpack's, named "archive entry" rather than "layer entry", and a
// stream that is no tar is ErrRefused too; what was extracted before an
// error stays. dir stays open.
func Extract(dir *os.File, r io.Reader, o ExtractOptions) (Stats, error) {
	u := &unpacker{root: int(dir.Fd()), lim: o.Limits, resolve: resolveFlags, extract: &o}
	err := u.run(r, "archive")
	return u.stats, err
}

// run unpacks the tar stream r (see Unpack); errors start with what.
func (u *unpacker) run(r io.Reader, what string) error {
	tail := &tailReader{r: r}
	tr := tar.NewReader(tail)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: reading tar after %d entries: %w", what, u.stats.Entries, u.badStream(err))
		}
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("%s entry %q: %w", what, hdr.Name, err)
		}
	}
	if !tail.endMarker() && !(u.extract != nil && tail.empty()) {
		return fmt.Errorf("%s: tar stream ends after %d entries without an end-of-archive block: %w",
			what, u.stats.Entries, u.badStream(io.ErrUnexpectedEOF))
	}
	if err := u.setDirTimes(); err != nil {
		return fmt.Errorf("%s entry %w", what, err)
	}
	return nil
}

// openEmptyDir opens dir, which must be an empty directory.
func openEmptyDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	names, err := f.Readdirnames(1)
	if err == nil && len(names) > 0 {
		err = fmt.Errorf("layer: %s is not empty", dir)
	} else if errors.Is(err, io.EOF) {
		err = nil
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// blockSize is the tar block size.
const blockSize = 512

// tailReader passes reads through and counts the zero bytes that end what
// was read so far (up to one block), so that Unpack can tell a stream that
// ended with an end-of-archive block (which archive/tar consumes before it
// reports io.EOF) from one cut off between two entries.
type tailReader struct {
	r     io.Reader
	zeros int
	read  bool // a byte was read
}

// Read reads from the underlying reader and updates the count.
func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.read = t.read || n > 0
	i := n - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i >= 0 {
		t.zeros = 0
	}
	t.zeros = min(t.zeros+n-1-i, blockSize)
	return n, err
}

// empty reports whether the stream had no byte at all.
func (t *tailReader) empty() bool { return !t.read }

// endMarker reports whether the stream read so far ends with a zero block.
func (t *tailReader) endMarker() bool { return t.zeros >= blockSize }
