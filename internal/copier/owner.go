package copier

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cove-project/cove/launch"
	"golang.org/x/sys/unix"
)

// ProcessOwner is Root.Owner of a running container: the effective user
// and group of its payload, process pid (pinned by the caller).
func ProcessOwner(pid int) func() (uid, gid int, err error) {
	return func() (int, int, error) { return processIDs(pid) }
}

// processIDs are the effective user and group IDs (host IDs) of process
// pid.
func processIDs(pid int) (uid, gid int, err error) {
	p := "/proc/" + strconv.Itoa(pid) + "/status"
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, fmt.Errorf("the payload's user: %w", err)
	}
	ids := map[string]*int{"Uid:": &uid, "Gid:": &gid}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 5 { // NAME: real, effective, saved, file system
			continue
		}
		if to, ok := ids[f[0]]; ok {
			if *to, err = strconv.Atoi(f[2]); err != nil {
				return 0, 0, fmt.Errorf("the payload's user: %s: %q: %w", p, line, err)
			}
			delete(ids, f[0])
		}
	}
	if len(ids) > 0 {
		return 0, 0, fmt.Errorf("the payload's user: %s has no Uid: and Gid: lines", p)
	}
	return uid, gid, nil
}

// ConfigOwner is Root.Owner of a container that does not run: the user
// its launcher configuration c (completed from the image) names, a name
// resolved in the root's /etc/passwd and /etc/group as its init resolves
// it, on the host.
func (r Root) ConfigOwner(c launch.Config) func() (uid, gid int, err error) {
	return func() (int, int, error) {
		if name := c.Image.UserName; name != "" {
			passwd, err := r.readSmall("/etc/passwd")
			if err != nil {
				return 0, 0, err
			}
			group, err := r.readSmall("/etc/group")
			if err != nil {
				return 0, 0, err
			}
			if c.UID, c.GID, err = launch.LookupUser(name, passwd, group); err != nil {
				return 0, 0, fmt.Errorf("the container's user: %w", err)
			}
		}
		uid, gid, err := r.Maps.ToHost(c.UID, c.GID)
		return int(uid), int(gid), err
	}
}

// maxSmall bounds a file readSmall reads.
const maxSmall = 1 << 20

// readSmall reads the small regular file at container path p; nil when
// there is none.
func (r Root) readSmall(p string) ([]byte, error) {
	fd, err := r.openIn(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() > maxSmall {
		return nil, fmt.Errorf("read %s in the container: not a regular file of at most %d bytes (%v)", p, maxSmall, err)
	}
	return io.ReadAll(io.LimitReader(f, maxSmall))
}
