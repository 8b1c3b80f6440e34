package isolate

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// waitPidfd waits up to d for the process behind fd to exit.
func waitPidfd(fd int, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left < 0 {
			return false, nil
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("wait for exit: poll pidfd %d: %w", fd, err)
		}
		if n > 0 {
			return true, nil
		}
	}
}
