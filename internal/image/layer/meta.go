package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/image/stored"
	"golang.org/x/sys/unix"
)

// xattr is one extended attribute an entry carries.
type xattr struct{ key, value string }

// meta is what a tar header says of an entry's attributes, checked.
type meta struct {
	uid, gid int
	mode     uint32 // permission bits with setuid, setgid and sticky
	xattrs   []xattr
	times    []unix.Timespec // atime, mtime
}

// paxXattr prefixes the PAX records that carry xattrs.
const paxXattr = "SCHILY.xattr."

// metaOf checks and collects hdr's attributes: numeric ids in range
// (names are ignored), and xattrs an image may set.
func metaOf(hdr *tar.Header) (meta, error) {
	m := meta{uid: hdr.Uid, gid: hdr.Gid, mode: uint32(hdr.Mode & 0o7777)}
	for _, id := range []int64{int64(hdr.Uid), int64(hdr.Gid)} {
		if id < 0 || id >= 1<<32-1 { // -1 (0xffffffff) would mean "unchanged"
			return m, fmt.Errorf("%w: owner id %d out of range", ErrRefused, id)
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	m.times = []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	for k, v := range hdr.PAXRecords {
		if key, ok := strings.CutPrefix(k, paxXattr); ok {
			if _, err := xattrPolicy(key); err != nil {
				return m, err
			}
			m.xattrs = append(m.xattrs, xattr{key, v})
		}
	}
	sort.Slice(m.xattrs, func(i, j int) bool { return m.xattrs[i].key < m.xattrs[j].key })
	return m, nil
}

// timespec converts t without going through UnixNano, which overflows for
// times far from 1970.
func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// xattrPolicy says whether an image may set the xattr key, and if so
// whether failing with ENOTSUP (a file system or kernel without support)
// is ignored. Allowed: user.*, security.* (ENOTSUP ignored for
// security.selinux only), and the POSIX ACLs system.posix_acl_access and
// system.posix_acl_default (ENOTSUP ignored). Refused: trusted.* (an image
// must not forge overlayfs metadata such as trusted.overlay.opaque or
// trusted.overlay.redirect), other system.*, and any other namespace.
func xattrPolicy(key string) (ignoreENOTSUP bool, err error) {
	switch {
	case strings.HasPrefix(key, "user."):
		return false, nil
	case key == "security.selinux", key == "system.posix_acl_access", key == "system.posix_acl_default":
		return true, nil
	case strings.HasPrefix(key, "security."):
		return false, nil
	}
	return false, fmt.Errorf("%w: xattr %q", ErrRefused, key)
}

// setMeta gives l the owner, xattrs and (but for a symlink) mode of m, in
// that order: chown clears setuid/setgid bits and security.capability, so
// both are set after it. Times are set apart, last.
func setMeta(l leaf, m meta, symlink bool) error {
	if err := unix.Fchownat(l.parent, l.name, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("lchown %d:%d: %w", m.uid, m.gid, err)
	}
	if err := setXattrs(m, func(key, value string) error { return setxattr(l, key, value) }); err != nil || symlink {
		return err
	}
	return chmod(l, m.mode)
}

// setMetaFD is setMeta through fd, open on the regular file it sets: a
// file replaced meanwhile (a hard link to another, made by a running
// container in the directory of an Extract) is not what it changes.
func setMetaFD(fd int, m meta) error {
	if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
		return fmt.Errorf("fchown %d:%d: %w", m.uid, m.gid, err)
	}
	err := setXattrs(m, func(key, value string) error {
		if err := unix.Fsetxattr(fd, key, []byte(value), 0); err != nil {
			return fmt.Errorf("fsetxattr %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return fmt.Errorf("fchmod %#o: %w", m.mode, err)
	}
	return nil
}

// setXattrs sets m's xattrs with set, ignoring ENOTSUP where the policy
// says.
func setXattrs(m meta, set func(key, value string) error) error {
	for _, x := range m.xattrs {
		ignoreENOTSUP, _ := xattrPolicy(x.key)
		if err := set(x.key, x.value); err != nil && !(ignoreENOTSUP && errors.Is(err, unix.ENOTSUP)) {
			return err
		}
	}
	return nil
}

// setxattr sets the xattr key of l itself (not of a symlink's target),
// through the parent's /proc/self/fd link: the last component, a plain
// name, is not followed by lsetxattr.
func setxattr(l leaf, key, value string) error {
	p := "/proc/self/fd/" + strconv.Itoa(l.parent) + "/" + l.name
	if err := unix.Lsetxattr(p, key, []byte(value), 0); err != nil {
		return fmt.Errorf("lsetxattr %s: %w", key, err)
	}
	return nil
}

// setOpaque makes the directory l opaque to overlayfs.
func setOpaque(l leaf) error { return setxattr(l, stored.OpaqueXattr, "y") }

// chmod sets the mode of l, which must not be a symlink, never through
// one: with fchmodat2(AT_SYMLINK_NOFOLLOW) (Linux 6.6), which refuses a
// symlink; where that fails (a symlink, an older kernel, a seccomp filter
// that refuses it), through a
// descriptor of l opened without following (O_PATH|O_NOFOLLOW) and
// checked: an entry replaced by a symlink meanwhile (a running container
// writes the directory of an Extract) is refused, never followed.
func chmod(l leaf, mode uint32) error {
	err := unix.Fchmodat(l.parent, l.name, mode, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM): // a symlink, an old kernel, a seccomp filter that knows no fchmodat2
		err = chmodPinned(l, mode)
	case err != nil:
		err = fmt.Errorf("fchmodat2: %w", err)
	}
	if err != nil {
		return fmt.Errorf("chmod %#o: %w", mode, err)
	}
	return nil
}

// chmodPinned is chmod through a checked O_PATH descriptor of l.
func chmodPinned(l leaf, mode uint32) error {
	fd, err := unix.Openat(l.parent, l.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("openat: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("%w: it was replaced by a symlink", ErrRefused)
	}
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode); err != nil { // the inode fd holds
		return fmt.Errorf("chmod /proc/self/fd/%d: %w", fd, err)
	}
	return nil
}

// setTimes sets the access and modification times of l itself.
func setTimes(l leaf, ts []unix.Timespec) error {
	if err := unix.UtimesNanoAt(l.parent, l.name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimensat: %w", err)
	}
	return nil
}
