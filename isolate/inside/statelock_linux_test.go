package inside

import (
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLockState: the lock is one holder's at a time, and free again once
// released.
func TestLockState(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockState(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := unix.Open(filepath.Join(dir, stateLockName), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	if err := unix.Flock(other, unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Errorf("flock of a held lock: %v, want EWOULDBLOCK", err)
	}
	unlock()
	if err := unix.Flock(other, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("flock of a released lock: %v", err)
	}
}
