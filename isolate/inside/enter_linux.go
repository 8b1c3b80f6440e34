package inside

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/cove-project/cove/internal/cgroup"
	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"golang.org/x/sys/unix"
)

// ErrCommandNotFound is the error for a command that is not in the
// container's PATH.
var ErrCommandNotFound = errors.New("no such command")

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
// namespaces and root of the payload pinned by EnterPidFd, and returns
// the payload's ID maps (see idMaps: its user namespace is not joined).
func enterContainer() (idMaps, error) {
	pid, err := pidfdPid(EnterPidFd)
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
	if err := unix.Setns(EnterPidFd, flags); err != nil {
		return idMaps{}, fmt.Errorf("enter the namespaces of pid %d: setns pidfd %d: %w", pid, EnterPidFd, err)
	}
	if err := unix.Fchdir(EnterRootFd); err != nil {
		return idMaps{}, fmt.Errorf("enter the root of pid %d: fchdir fd %d: %w", pid, EnterRootFd, err)
	}
	if err := unix.Chroot("."); err != nil {
		return idMaps{}, fmt.Errorf("enter the root of pid %d: chroot .: %w", pid, err)
	}
	unix.Close(EnterPidFd)
	unix.Close(EnterRootFd)
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

// Descriptors isolate.EnterCommand passes to the enter stage.
const (
	EnterPidFd  = 3 // a pidfd of the container's payload
	EnterRootFd = 4 // the payload's root directory
)
