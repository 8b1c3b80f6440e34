package isolate

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// StopVerb is the hidden command-line verb of a container unit's ExecStop=.
const StopVerb = "launch-stop"

// Stop ends a container's payload gracefully: SIGTERM, then SIGKILL if it
// has not exited after timeout. It returns when the process is gone.
//
// systemd cannot do this itself for cove's units: the payload was handed
// over with MAINPID= from the launcher, so systemd treats it as a process
// it did not fork and does not wait for it after SIGTERM. pid is the
// unit's main PID ($MAINPID); 0 means it already exited.
func Stop(pid int, timeout time.Duration) error {
	if pid <= 0 {
		return nil
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop payload %d: %w", pid, err)
	}
	defer unix.Close(fd)
	for _, step := range []struct {
		sig  unix.Signal
		wait time.Duration
	}{{unix.SIGTERM, timeout}, {unix.SIGKILL, 5 * time.Second}} {
		if err := unix.PidfdSendSignal(fd, step.sig, nil, 0); errors.Is(err, unix.ESRCH) {
			return nil
		} else if err != nil {
			return fmt.Errorf("stop payload %d: send %v: %w", pid, step.sig, err)
		}
		if exited, err := waitPidfd(fd, step.wait); err != nil || exited {
			return err
		}
	}
	return fmt.Errorf("stop payload %d: still running after SIGKILL", pid)
}

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
			return false, fmt.Errorf("wait for payload: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
}
