package copier

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot is how every lookup from the container's root resolves: a
// symlink (absolute or with "..") as in the container, never out of it;
// no magic link (/proc/PID/fd/N of a container process).
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// leaf is an entry of the container: name in the directory open as fd,
// or, with name "", what fd itself is open as (an O_PATH descriptor).
type leaf struct {
	fd   int
	name string
}

// openIn opens the container path p (resolved in the root) with flags.
// A lookup the kernel asks to retry (EAGAIN: a rename raced with a ".."
// of it) is tried again, a few times.
func (r Root) openIn(p string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRoot}
	fd, err := unix.Openat2(int(r.Dir.Fd()), p, &how)
	for try := 0; errors.Is(err, unix.EAGAIN) && try < maxRetries; try++ {
		fd, err = unix.Openat2(int(r.Dir.Fd()), p, &how)
	}
	if errors.Is(err, unix.ENOENT) {
		return -1, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	if err != nil {
		return -1, fmt.Errorf("open %s in the container: openat2: %w", p, err)
	}
	return fd, nil
}

// maxRetries bounds the retries of one lookup.
const maxRetries = 16

// locate returns the leaf of the absolute path abs (absPath's): its
// parent directory and last element, or with followsLast what the whole
// path resolves to. The caller closes l.fd. A path under Unmounted is
// refused.
func (r Root) locate(abs string) (leaf, error) {
	if _, _, err := r.resolveMounted(abs); err != nil {
		return leaf{}, err
	}
	if followsLast(abs) {
		fd, err := r.openIn(abs, unix.O_PATH)
		return leaf{fd, ""}, err
	}
	fd, err := r.openIn(path.Dir(abs), unix.O_PATH|unix.O_DIRECTORY)
	return leaf{fd, path.Base(abs)}, err
}

// lstat is the status of l itself (not of what a symlink there points
// to).
func lstat(l leaf) (unix.Stat_t, error) {
	var st unix.Stat_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if l.name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	err := unix.Fstatat(l.fd, l.name, &st, flags)
	if errors.Is(err, unix.ENOENT) {
		return st, fmt.Errorf("%s: %w", l.name, ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("fstatat %s: %w", l.name, err)
	}
	return st, nil
}

// resolveMounted is abs with its symlinks followed (evalSymlinks), which
// must not be at or under a mount of r.Unmounted (see mounts); with it,
// the mounts, for checkMounted. A root without Unmounted resolves
// nothing.
func (r Root) resolveMounted(abs string) (string, []string, error) {
	if len(r.Unmounted) == 0 {
		return abs, nil, nil
	}
	mounts, err := r.mounts()
	if err != nil {
		return "", nil, err
	}
	resolved, err := r.evalSymlinks(abs)
	if err != nil {
		return "", nil, err
	}
	for _, p := range []string{path.Clean(abs), resolved} {
		if err := checkMounted(mounts, p); err != nil {
			return "", nil, err
		}
	}
	return resolved, mounts, nil
}

// mounts are the paths of r.Unmounted, each as given and with its
// symlinks followed in the root (a mount at /var/run, a symlink to /run
// in the image, is at /run).
func (r Root) mounts() ([]string, error) {
	var out []string
	for _, m := range r.Unmounted {
		resolved, err := r.evalSymlinks(m)
		if err != nil {
			return nil, err
		}
		out = append(out, path.Clean(m), resolved)
	}
	return out, nil
}

// checkMounted refuses the clean container path p at or under a path of
// mounts.
func checkMounted(mounts []string, p string) error {
	for _, m := range mounts {
		if p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/") {
			return fmt.Errorf("%s is under the mount at %s: %w", p, m, ErrMounted)
		}
	}
	return nil
}

// maxLinks bounds the symlinks one path may go through (Docker's
// FollowSymlinkInScope's bound).
const maxLinks = 255

// evalSymlinks is the container path that the absolute path abs resolves
// to, every symlink on it followed in the root, as far as it exists: from
// a missing element on, the path is resolved lexically, as Docker's
// FollowSymlinkInScope does.
func (r Root) evalSymlinks(abs string) (string, error) {
	resolved, rest, links := "/", split(abs), 0
	for len(rest) > 0 {
		next := path.Join(resolved, rest[0])
		if rest = rest[1:]; next == "/" || len(next) <= len(resolved) {
			resolved = next // "." or "..": resolved holds no symlink
			continue
		}
		target, err := r.readlink(next)
		switch {
		case errors.Is(err, unix.EINVAL) || errors.Is(err, ErrNotFound) || errors.Is(err, unix.ENOTDIR):
			resolved = next // not a symlink, or not there
			continue
		case err != nil:
			return "", err
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("resolve %s: more than %d symlinks: %w", abs, maxLinks, unix.ELOOP)
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(split(target), rest...)
	}
	return resolved, nil
}

// split is the elements of the path p.
func split(p string) []string {
	return strings.FieldsFunc(p, func(c rune) bool { return c == '/' })
}

// readlink is the target of the symlink at the container path p, whose
// directory holds no symlink; EINVAL when p is no symlink.
func (r Root) readlink(p string) (string, error) {
	fd, err := r.openIn(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	return readlinkat(leaf{fd, path.Base(p)})
}

// readlinkat is the target of the symlink l.
func readlinkat(l leaf) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(l.fd, l.name, buf)
	if errors.Is(err, unix.ENOENT) {
		return "", fmt.Errorf("%s: %w", l.name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("readlinkat %s: %w", l.name, err)
	}
	return string(buf[:n]), nil
}
