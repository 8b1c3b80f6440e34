// Package copier is docker cp's work in a running container's file
// system, done from the host: the status of a path, a path as a tar
// stream, and a tar stream extracted into a directory.
//
// It works through a descriptor of the container's root directory
// (isolate.Target's /proc/PID/root), which reaches the container's own
// mounts (its volumes) as the container sees them. Every path is looked up
// with openat2(RESOLVE_IN_ROOT): a symlink resolves as it would in the
// container, and none, nor "..", leads out of it. A container is hostile:
// what it holds is read without following a symlink below the path asked
// for, and written by package layer's Extract, which never crosses one.
// Owners are the container's IDs on the wire and host IDs on disk,
// translated with the container's ID maps.
package copier

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/cove-project/cove/isolate/inside"
)

// Root is a container's file system: its root directory (a descriptor
// the caller owns: a running payload's /proc/PID/root, or the detached
// root of a container that does not run), its ID maps, and its user.
type Root struct {
	Dir  *os.File
	Maps inside.IDMaps
	// Owner is the host user and group the container's configuration
	// names for its payload (ConfigOwner), for PutOptions.CopyUIDGID; set
	// is false when it names none.
	Owner func() (uid, gid int, set bool, err error)
	// Unmounted are the container paths where a container that does not
	// run has mounts its root lacks (volumes, bind mounts): a path at or
	// under one, symlinks followed, is refused with ErrMounted.
	Unmounted []string
}

// PathStat is what Docker's archive endpoints say of a path in their
// X-Docker-Container-Path-Stat header (base64 of its JSON): Mode has Go's
// os.FileMode bits, and LinkTarget is, for a symlink, the container path
// it resolves to (as far as it exists), "" otherwise.
type PathStat struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       os.FileMode `json:"mode"`
	Mtime      time.Time   `json:"mtime"`
	LinkTarget string      `json:"linkTarget"`
}

var (
	// ErrNotFound marks a path that is not in the container.
	ErrNotFound = errors.New("no such file in the container")
	// ErrNotDir marks a path to extract into that is not a directory.
	ErrNotDir = errors.New("extraction point is not a directory")
	// ErrReadOnly marks a directory to extract into on a read-only mount.
	ErrReadOnly = errors.New("read-only file system")
	// ErrMounted marks a path of a container that does not run under one
	// of its mounts (Root.Unmounted).
	ErrMounted = errors.New("mounted only while the container runs")
)

// absPath is path p made absolute in the container, keeping a trailing
// "/" or "." (which makes a symlink at its end count as its target), as
// Docker's archive endpoints take it: "etc/" is "/etc/", "." and "./" are
// "/.". Its path.Base is the name Docker gives the path ("/" for the
// root, "." for "/etc/.").
func absPath(p string) string {
	abs := path.Join("/", p)
	switch {
	case path.Base(p) == ".":
		return strings.TrimSuffix(abs, "/") + "/."
	case strings.HasSuffix(p, "/") && abs != "/":
		return abs + "/"
	}
	return abs
}

// followsLast reports whether the absolute path abs (absPath's) names
// what a symlink at its end points to rather than the symlink.
func followsLast(abs string) bool { return strings.HasSuffix(abs, "/") || strings.HasSuffix(abs, "/.") }

// fileMode is Go's os.FileMode of the st_mode bits m.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	for _, b := range []struct {
		unix uint32
		mode fs.FileMode
	}{{0o4000, fs.ModeSetuid}, {0o2000, fs.ModeSetgid}, {0o1000, fs.ModeSticky}} {
		if m&b.unix != 0 {
			mode |= b.mode
		}
	}
	return mode | typeModes[m&sIFMT]
}

// sIFMT is st_mode's type bits.
const sIFMT = 0o170000

// typeModes are Go's type bits for each st_mode type (a regular file has
// none).
var typeModes = map[uint32]fs.FileMode{
	0o040000: fs.ModeDir,
	0o120000: fs.ModeSymlink,
	0o020000: fs.ModeDevice | fs.ModeCharDevice,
	0o060000: fs.ModeDevice,
	0o010000: fs.ModeNamedPipe,
	0o140000: fs.ModeSocket,
}
