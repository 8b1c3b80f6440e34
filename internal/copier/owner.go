package copier

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cove-project/cove/launch"
	"golang.org/x/sys/unix"
)

// ConfigOwner is Root.Owner of a container whose launcher configuration
// is c (completed from its image): the user it names, a name resolved in
// the root's /etc/passwd and /etc/group as the container's init resolves
// it, on the host; none (set false) when c names no user.
func (r Root) ConfigOwner(c launch.Config) func() (uid, gid int, set bool, err error) {
	return func() (int, int, bool, error) {
		switch name := c.Image.UserName; {
		case name != "":
			passwd, err := r.readSmall("/etc/passwd")
			if err != nil {
				return 0, 0, false, err
			}
			group, err := r.readSmall("/etc/group")
			if err != nil {
				return 0, 0, false, err
			}
			if c.UID, c.GID, err = launch.LookupUser(name, passwd, group); err != nil {
				return 0, 0, false, fmt.Errorf("the container's user: %w", err)
			}
		case !c.Image.UserSet && c.UID == 0 && c.GID == 0:
			return 0, 0, false, nil
		}
		uid, gid, err := r.Maps.ToHost(c.UID, c.GID)
		if err != nil {
			return 0, 0, false, fmt.Errorf("the container's user: %w", err)
		}
		return int(uid), int(gid), true, nil
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
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s in the container: %w", p, err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxSmall {
		return nil, fmt.Errorf("read %s in the container: not a regular file of at most %d bytes", p, maxSmall)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSmall))
	if err != nil {
		return nil, fmt.Errorf("read %s in the container: %w", p, err)
	}
	return b, nil
}
