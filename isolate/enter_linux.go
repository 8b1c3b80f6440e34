package isolate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/cgroup"
	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// ErrCommandNotFound is the error for a command that is not in the
// container's PATH.
var ErrCommandNotFound = errors.New("no such command")

// Descriptors EnterCommand passes to the enter stage.
const (
	enterPidFd  = 3 // a pidfd of the container's payload
	enterRootFd = 4 // the payload's root directory
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
// process's because the process still runs after it was opened.
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
	if t.root, err = os.OpenFile(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		t.Close()
		return nil, fmt.Errorf("open the root of pid %d: %w", pid, err)
	}
	if err := unix.PidfdSendSignal(fd, 0, nil, 0); errors.Is(err, unix.ESRCH) {
		t.Close()
		return nil, fmt.Errorf("pid %d exited: pidfd_send_signal: %w", pid, err)
	} else if err != nil {
		t.Close()
		return nil, fmt.Errorf("pidfd_send_signal pid %d: %w", pid, err)
	}
	return t, nil
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
// binary that runs the enter stage (launch.StagePath).
func EnterCommand(ctx context.Context, stage string, c launch.Config, t *Target) *exec.Cmd {
	cmd := exec.CommandContext(ctx, stage, append([]string{launch.EnterVerb}, c.Args()...)...)
	cmd.ExtraFiles = []*os.File{t.pidfd, t.root} // fds 3 and 4
	cmd.Env = []string{}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Enter is the enter stage: it runs c.Argv inside the container pinned by
// fd 3 (a pidfd) with root fd 4 and returns its exit status (128+N for a
// signal N). On its own locked thread it joins the payload's cgroups,
// then enters its mount, uts, ipc, network and pid namespaces and its
// root, changes to c.Workdir, restricts itself as the launcher restricts
// the payload (bounding set, no_new_privs, seccomp, c.UID:c.GID, which in
// a container with a user namespace are the host IDs they map to: a Go
// process cannot join a user namespace, so the command runs in the
// host's, as that unprivileged host user, without capabilities) and
// starts the command from that thread, in a new session, with only stdin,
// stdout and stderr: the stage's, with no controlling terminal to inject
// input into, or for c.Console a pty of its own (see enterStdio); a
// SIGTERM, SIGINT or SIGHUP to the stage kills it. The stage itself stays in the host's pid
// namespace: no privileged process of cove is ever visible inside. A
// command that is not there is ErrCommandNotFound.
func Enter(c launch.Config) (int, error) {
	runtime.LockOSThread() // namespaces, root and restrictions are this thread's; it forks
	lastCap, err := lastCapability()
	if err != nil {
		return 0, err
	}
	maps, err := enterContainer()
	if err != nil {
		return 0, err
	}
	if err := resolveUser(&c); err != nil {
		return 0, err
	}
	if c.UID, c.GID, err = maps.toHost(c.UID, c.GID); err != nil {
		return 0, err
	}
	c.Ready = spec.ReadyStarted // no NOTIFY_SOCKET: only the payload may notify
	env := payloadEnv(c)
	if err := unix.Chdir(c.Workdir); err != nil { // first: a relative command is found from there
		return 0, fmt.Errorf("change to the working directory: chdir %s: %w", c.Workdir, err)
	}
	argv0, err := lookPath(c.Argv[0], env)
	if errors.Is(err, os.ErrNotExist) { // a path that names nothing: not found, as a shell says
		err = fmt.Errorf("command %q not found in the container: %w", c.Argv[0], ErrCommandNotFound)
	}
	if err != nil {
		return 0, err
	}
	if err := restrict(c, lastCap); err != nil {
		return 0, err
	}
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return 0, fmt.Errorf("keep descriptors from the command: close_range(CLOSE_RANGE_CLOEXEC) fds 3 and up: %w", err)
	}
	attr, master, slave, err := enterStdio(c)
	if err != nil {
		return 0, err
	}
	if master != nil {
		defer master.Close() // held until the command ends: cove may detach
	}
	// The command must not outlive the stage: a parent-death signal cannot
	// be set across pid namespaces (the child sees no parent), so the
	// stage kills it when it is told to end.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	attr.Env = env
	pid, err := syscall.ForkExec(argv0, c.Argv, attr)
	if slave != nil {
		slave.Close() // the command's now
	}
	if err != nil {
		return 0, fmt.Errorf("clone/execve %s: %w", argv0, err)
	}
	go func() {
		for range sigs {
			unix.Kill(pid, unix.SIGKILL)
		}
	}()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return 0, fmt.Errorf("wait for the command: wait4 pid %d: %w", pid, err)
		}
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// enterStdio returns how the command starts: in a new session with the
// stage's stdin, stdout and stderr; or, for c.Console, with a pty from the
// container's devpts, allocated over the console socket on the stage's
// stdin (see package tty), as the session's controlling terminal and the
// command's stdio. Then it also returns the pty's master, which the stage
// keeps open while the command runs so that its terminal is not hung up
// when cove detaches, and the slave, which the stage closes once the
// command has started. It runs as the command's user, so the terminal
// belongs to that user.
func enterStdio(c launch.Config) (attr *syscall.ProcAttr, master, slave *os.File, err error) {
	attr = &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Setsid: true}}
	if !c.Console {
		return attr, nil, nil, nil
	}
	if master, slave, err = tty.Serve(os.Stdin, ptmx); err != nil {
		return nil, nil, nil, err
	}
	fd := slave.Fd()
	attr.Files = []uintptr{fd, fd, fd}
	attr.Sys.Setctty = true // Ctty 0: the command's stdin
	return attr, master, slave, nil
}

// enterContainer moves the calling (locked) thread into the cgroups,
// namespaces and root of the payload pinned by enterPidFd, and returns
// the payload's ID maps (see idMaps: its user namespace is not joined).
func enterContainer() (idMaps, error) {
	pid, err := pidfdPid(enterPidFd)
	if err != nil {
		return idMaps{}, err
	}
	maps, err := readIDMaps(pid)
	if err != nil {
		return idMaps{}, err
	}
	if err := cgroup.Join(pid); err != nil {
		return idMaps{}, err
	}
	// setns into a mount namespace needs a thread that shares its file
	// system attributes with no other.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return idMaps{}, fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	flags := unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWPID
	if err := unix.Setns(enterPidFd, flags); err != nil {
		return idMaps{}, fmt.Errorf("enter the namespaces of pid %d: setns pidfd %d: %w", pid, enterPidFd, err)
	}
	if err := unix.Fchdir(enterRootFd); err != nil {
		return idMaps{}, fmt.Errorf("enter the root of pid %d: fchdir fd %d: %w", pid, enterRootFd, err)
	}
	if err := unix.Chroot("."); err != nil {
		return idMaps{}, fmt.Errorf("enter the root of pid %d: chroot .: %w", pid, err)
	}
	unix.Close(enterPidFd)
	unix.Close(enterRootFd)
	return maps, nil
}

// pidfdPid reads the PID of the process pidfd fd refers to.
func pidfdPid(fd int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return 0, fmt.Errorf("read the target's pid: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("the target exited")
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("fd %d is not a pidfd", fd)
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
