package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/image/stored"
)

// withLock runs fn holding the store-wide lock (an exclusive flock on
// .lock), which every critical section of every process takes.
func (s *Store) withLock(fn func() error) error {
	f, err := openLockFile(s.LockPath())
	if err != nil {
		return fmt.Errorf("image store lock: %w", err)
	}
	defer f.Close() // releases the flock
	if err := flock(f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("image store lock: %w", err)
	}
	return fn()
}

// openLockFile opens (creating) the lock file at path.
func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
}

// flock applies how (LOCK_EX, LOCK_NB…) to f, retrying on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		return nil
	}
}

// tryLock opens path and takes an exclusive flock without waiting. It
// returns nil, nil when someone else holds it, and nil, nil when path is
// gone.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, nil
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// lockWait takes an exclusive flock on path (creating it), polling so
// that ctx can end the wait. Lock files may be unlinked by a sweep (which
// holds the flock while it does), so a lock won on a file that is no
// longer at path is dropped and taken again on the new one. The caller
// closes the file to release it.
func lockWait(ctx context.Context, path string) (*os.File, error) {
	delay := 5 * time.Millisecond
	for {
		f, err := openLockFile(path)
		if err != nil {
			return nil, err
		}
		err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil && stored.StillAt(f, path) {
			return f, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, err
		}
		if err == nil {
			continue // unlinked under us: lock the new file
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}
