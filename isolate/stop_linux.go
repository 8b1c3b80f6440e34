package isolate

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// killWait is how long StopProcess waits for a death after SIGKILL.
const killWait = 5 * time.Second

// StopProcess ends process pid: sig, then SIGKILL if it has not exited
// after timeout. killed reports whether it needed SIGKILL. A process that
// is gone already is no error.
func StopProcess(pid int, sig unix.Signal, timeout time.Duration) (killed bool, err error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stop process %d: pidfd_open: %w", pid, err)
	}
	defer unix.Close(fd)
	for _, step := range []struct {
		sig  unix.Signal
		wait time.Duration
	}{{sig, timeout}, {unix.SIGKILL, killWait}} {
		if err := unix.PidfdSendSignal(fd, step.sig, nil, 0); errors.Is(err, unix.ESRCH) {
			return killed, nil
		} else if err != nil {
			return killed, fmt.Errorf("stop process %d: pidfd_send_signal %v: %w", pid, step.sig, err)
		}
		killed = step.sig == unix.SIGKILL
		if exited, err := waitPidfd(fd, step.wait); err != nil || exited {
			return killed, err
		}
	}
	return killed, fmt.Errorf("stop process %d: still running %v after SIGKILL", pid, killWait)
}
