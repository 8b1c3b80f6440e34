package inside

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// stateLockName is the lock file of an image container's writable layer
// in its state directory (launch.Config's Image.StateDir).
const stateLockName = "lock"

// LockState takes the lock of the writable layer in image container
// state directory dir, waiting for it, and returns what releases it. A
// launcher holds it while it mounts the container's root, docker cp
// while it has the files of a container (the root of one that does not
// run, which it mounts; or a running one's, whose overlay its descriptor
// keeps alive should the container end), so that no two overlays are
// made on one writable layer.
func LockState(dir string) (func(), error) {
	p := filepath.Join(dir, stateLockName)
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the writable layer: open %s: %w", p, err)
	}
	for err = unix.Flock(fd, unix.LOCK_EX); errors.Is(err, unix.EINTR); err = unix.Flock(fd, unix.LOCK_EX) {
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock the writable layer: flock %s: %w", p, err)
	}
	return func() { unix.Close(fd) }, nil
}
