package isolate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/launch"
)

// Target is a running container's payload, pinned by a pidfd, with its
// root directory.
type Target struct {
	pid         int
	pidfd, root *os.File
}

// OpenTarget pins process pid and opens its root. isMain, if not nil,
// reports whether pid is still the workload's main process once pinned (a
// PID read earlier may have been reused); the root is the pinned
// process's because the process still runs after it was opened. A
// process in the caller's mount namespace is no payload (ErrNotPayload).
func OpenTarget(pid int, isMain func() bool) (*Target, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pin pid %d: pidfd_open: %w", pid, err)
	}
	t := &Target{pid: pid, pidfd: os.NewFile(uintptr(fd), "pidfd")}
	if isMain != nil && !isMain() {
		t.Close()
		return nil, fmt.Errorf("pid %d is no longer the workload's main process", pid)
	}
	if err := notInOwnMountNS(pid); err != nil {
		t.Close()
		return nil, err
	}
	if t.root, err = os.OpenFile(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		t.Close()
		return nil, fmt.Errorf("open the root of pid %d: %w", pid, err)
	}
	if err := t.Alive(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Alive checks that the target still runs: what was read of
// /proc/PID before was then the target's (its PID was not reused).
func (t *Target) Alive() error {
	if err := unix.PidfdSendSignal(int(t.pidfd.Fd()), 0, nil, 0); errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pid %d exited: pidfd_send_signal: %w", t.pid, err)
	} else if err != nil {
		return fmt.Errorf("pidfd_send_signal pid %d: %w", t.pid, err)
	}
	return nil
}

// PID is the target's process ID: the target's while it runs (Alive), and
// then another process's once the kernel reuses it.
func (t *Target) PID() int { return t.pid }

// Root is the target's root directory, an O_PATH descriptor that stays
// the target's.
func (t *Target) Root() *os.File { return t.root }

// ErrNotPayload marks a process in the caller's own mount namespace: a
// container's launcher, the unit's main process until it hands over to
// the payload, whose root is the host's.
var ErrNotPayload = errors.New("the container's launcher still runs in the host's namespaces: it is starting")

// notInOwnMountNS refuses process pid if it is in the calling process's
// mount namespace or in PID 1's (ErrNotPayload): a caller in a namespace
// of its own (a sandboxed service) still refuses the host's. What it
// reads of pid's is checked to be pid's by the caller (Alive).
func notInOwnMountNS(pid int) error {
	its, err := mountNS(pid)
	if err != nil {
		return err
	}
	for _, other := range []string{"self", "1"} {
		ns, err := mountNS(other)
		if other == "1" && errors.Is(err, unix.EACCES) {
			continue // a PID 1 of a namespace above (a machine's container runtime)
		}
		if err != nil {
			return err
		}
		if ns == its {
			return fmt.Errorf("pid %d: %w", pid, ErrNotPayload)
		}
	}
	return nil
}

// mountNS identifies the mount namespace of process pid ("self": the
// caller).
func mountNS[P int | string](pid P) ([2]uint64, error) {
	p := fmt.Sprintf("/proc/%v/ns/mnt", pid)
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return [2]uint64{}, fmt.Errorf("stat %s: %w", p, err)
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}

// Close releases the target.
func (t *Target) Close() {
	t.pidfd.Close()
	if t.root != nil {
		t.root.Close()
	}
}

// EnterCommand returns the command that runs c.Argv inside the running
// container t, the way its payload runs (see Enter); c is the container's
// launcher configuration with Argv, and maybe the identity or working
// directory, replaced. Canceling ctx ends the enter stage and the
// command: SIGTERM, then SIGKILL after a grace period. stage is the
// binary that runs the enter stage (launch.InsidePath).
func EnterCommand(ctx context.Context, stage string, c launch.Config, t *Target) *exec.Cmd {
	cmd := exec.CommandContext(ctx, stage, append([]string{launch.EnterVerb}, c.Args()...)...)
	cmd.ExtraFiles = []*os.File{t.pidfd, t.root} // fds 3 and 4
	cmd.Env = []string{}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Probe runs c.Argv inside the container t, as EnterCommand does, with a
// timeout, and returns its combined output. A non-zero exit or a timeout
// is an error.
func Probe(stage string, c launch.Config, t *Target, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.Console = false // the output is captured, not shown on a terminal
	cmd := EnterCommand(ctx, stage, c, t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("probe timed out after %s", timeout)
	}
	if err != nil {
		return out.String(), fmt.Errorf("probe: %w", err)
	}
	return out.String(), nil
}
