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
// root and starts the command from that thread, in a new session, with
// only stdin, stdout and stderr: the stage's, with no controlling
// terminal to inject input into, or for c.Console a pty of its own (see
// enterStdio); a SIGTERM, SIGINT or SIGHUP to the stage kills it. The
// command is restricted as the launcher restricts the payload (bounding
// set, no_new_privs, seccomp, c.UID:c.GID, in c.Workdir). In a container
// with a user namespace the command also joins that namespace: a Go
// process cannot, so the stage starts it as launch.NsenterPath, which
// joins it and executes this binary as EnterNSVerb (EnterNS), which
// restricts itself and executes the command: the command runs as the
// container's user, with the capabilities the payload has there. The
// stage itself stays in the host's pid and user namespaces. Without a
// user namespace no privileged process of cove is ever visible inside;
// with one, nsenter is, for its first system calls, a host root process
// in the container's pid namespace, which the container's users can
// neither signal nor trace (they have no capability in the host's user
// namespace). A command that is not there is ErrCommandNotFound.
func Enter(c launch.Config) (int, error) {
	runtime.LockOSThread() // namespaces, root and restrictions are this thread's; it forks
	lastCap, err := lastCapability()
	if err != nil {
		return 0, err
	}
	maps, viaNS, err := enterContainer()
	if err != nil {
		return 0, err
	}
	if viaNS != nil {
		return enterUserNS(c, maps, viaNS)
	}
	argv0, env, err := readyCommand(&c, lastCap)
	if err != nil {
		return 0, err
	}
	attr, master, slave, err := enterStdio(c)
	if err != nil {
		return 0, err
	}
	attr.Env = env
	return runCommand(argv0, c.Argv, attr, master, slave)
}

// EnterNS is the command's side of the enter stage in a container with a
// user namespace: nsenter started it there as the namespace's root, in the
// container's cgroups, other namespaces, root and session (see Enter). It
// restricts itself and executes c.Argv; it returns only on error.
func EnterNS(c launch.Config) error {
	runtime.LockOSThread() // restrictions are per thread; this one execs
	lastCap, err := lastCapability()
	if err != nil {
		return err
	}
	argv0, env, err := readyCommand(&c, lastCap)
	if err != nil {
		return err
	}
	err = unix.Exec(argv0, c.Argv, env)
	return fmt.Errorf("execve %s: %w", argv0, err)
}

// readyCommand resolves the command's user, changes to its working
// directory, finds the command, restricts the calling thread, which then
// starts it with the returned path and environment, and marks every
// descriptor from 3 up close-on-exec (the command gets stdio only). Its
// IDs are those of the calling process's user namespace.
func readyCommand(c *launch.Config, lastCap int) (argv0 string, env []string, err error) {
	if err := resolveUser(c); err != nil {
		return "", nil, err
	}
	c.Ready = spec.ReadyStarted // no NOTIFY_SOCKET: only the payload may notify
	env = payloadEnv(*c)
	if err := unix.Chdir(c.Workdir); err != nil { // first: a relative command is found from there
		return "", nil, fmt.Errorf("change to the working directory: chdir %s: %w", c.Workdir, err)
	}
	argv0, err = lookPath(c.Argv[0], env)
	if errors.Is(err, os.ErrNotExist) { // a path that names nothing: not found, as a shell says
		err = fmt.Errorf("command %q not found in the container: %w", c.Argv[0], ErrCommandNotFound)
	}
	if err != nil {
		return "", nil, err
	}
	if err := restrict(*c, lastCap); err != nil {
		return "", nil, err
	}
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return "", nil, fmt.Errorf("keep descriptors from the command: close_range(CLOSE_RANGE_CLOEXEC) fds 3 and up: %w", err)
	}
	return argv0, env, nil
}

// enterUserNS starts nsenter, in a new session with the command's stdio
// (see enterStdio), to join the container's user and mount namespaces and
// root and run EnterNS there, and waits for it. The stage's thread is in
// the container's other namespaces and cgroups, which nsenter inherits,
// and in its mount namespace, where the stage allocates a pty (as root on
// the host, then given to the host IDs of the command's user); it goes
// back to the host's mount namespace to execute nsenter, a dynamically
// linked program, from the host's file system.
func enterUserNS(c launch.Config, maps IDMaps, via *userNSEntry) (int, error) {
	defer via.close()
	attr, master, slave, err := enterStdio(c)
	if err == nil && slave != nil {
		err = chownToUser(slave, c, maps)
	}
	if err == nil {
		err = unix.Setns(int(via.hostMnt.Fd()), unix.CLONE_NEWNS)
		if err != nil {
			err = fmt.Errorf("return to the host's mount namespace: setns: %w", err)
		}
	}
	if err != nil {
		if master != nil {
			master.Close()
			slave.Close()
		}
		return 0, err
	}
	attr.Files = append(attr.Files, via.ns.Fd(), via.mnt.Fd(), via.root.Fd(), via.self.Fd()) // fds 3-6
	attr.Env = []string{}
	argv := append([]string{"nsenter", "--user=/proc/self/fd/3", "--mount=/proc/self/fd/4", "--root=/proc/self/fd/5",
		"--", "/proc/self/fd/6", launch.EnterNSVerb}, c.Args()...)
	return runCommand(launch.NsenterPath, argv, attr, master, slave)
}

// chownToUser gives the pty slave to the host IDs of the command's user.
func chownToUser(slave *os.File, c launch.Config, maps IDMaps) error {
	if err := resolveUser(&c); err != nil {
		return err
	}
	uid, gid, err := maps.ToHost(c.UID, c.GID)
	if err != nil {
		return err
	}
	if err := slave.Chown(int(uid), int(gid)); err != nil {
		return fmt.Errorf("give the terminal to the command's user: %w", err)
	}
	return nil
}

// runCommand starts argv0 with attr from the calling (locked) thread,
// closes the pty slave once the command has it, holds the master until
// it ends (cove may detach), and returns its exit status; a SIGTERM,
// SIGINT or SIGHUP to the stage kills it.
func runCommand(argv0 string, argv []string, attr *syscall.ProcAttr, master, slave *os.File) (int, error) {
	if master != nil {
		defer master.Close()
	}
	// The command must not outlive the stage: a parent-death signal cannot
	// be set across pid namespaces (the child sees no parent), so the
	// stage kills it when it is told to end.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	pid, err := syscall.ForkExec(argv0, argv, attr)
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
// namespaces (but the user namespace) and root of the payload pinned by
// EnterPidFd, and returns the payload's ID maps. For a payload in a user
// namespace of its own it also returns what joining it takes, opened on
// the host first (see openUserNSEntry).
func enterContainer() (IDMaps, *userNSEntry, error) {
	pid, err := pidfdPid(EnterPidFd)
	if err != nil {
		return IDMaps{}, nil, err
	}
	maps, err := ReadIDMaps(pid)
	if err != nil {
		return IDMaps{}, nil, err
	}
	var via *userNSEntry
	if !maps.Host() {
		if via, err = openUserNSEntry(pid); err != nil {
			return IDMaps{}, nil, err
		}
	}
	if err := joinContainer(pid); err != nil {
		via.close()
		return IDMaps{}, nil, err
	}
	return maps, via, nil
}

// joinContainer is enterContainer's move into pid's cgroups, namespaces
// and root.
func joinContainer(pid int) error {
	if err := cgroup.Join(pid); err != nil {
		return err
	}
	// setns into a mount namespace needs a thread that shares its file
	// system attributes with no other.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	flags := unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWPID
	if err := unix.Setns(EnterPidFd, flags); err != nil {
		return fmt.Errorf("enter the namespaces of pid %d: setns pidfd %d: %w", pid, EnterPidFd, err)
	}
	if err := unix.Fchdir(EnterRootFd); err != nil {
		return fmt.Errorf("enter the root of pid %d: fchdir fd %d: %w", pid, EnterRootFd, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("enter the root of pid %d: chroot .: %w", pid, err)
	}
	unix.Close(EnterPidFd)
	unix.Close(EnterRootFd)
	return nil
}

// userNSEntry is what joining a container's user namespace takes, opened
// on the host before the stage enters the container (close-on-exec, all):
// the container's user and mount namespaces and root, the host's mount
// namespace and this binary.
type userNSEntry struct{ ns, mnt, root, hostMnt, self *os.File }

// openUserNSEntry opens what joining pid's user namespace takes. pid is
// pinned by EnterPidFd (its root by EnterRootFd), so it is checked to
// still be that process after its namespaces were opened.
func openUserNSEntry(pid int) (*userNSEntry, error) {
	var e userNSEntry
	opens := []struct {
		to   **os.File
		path string
		what string
	}{
		{&e.ns, fmt.Sprintf("/proc/%d/ns/user", pid), "the container's user namespace"},
		{&e.mnt, fmt.Sprintf("/proc/%d/ns/mnt", pid), "the container's mount namespace"},
		{&e.root, fmt.Sprintf("/proc/self/fd/%d", EnterRootFd), "the container's root"},
		{&e.hostMnt, "/proc/thread-self/ns/mnt", "the host's mount namespace"},
		{&e.self, "/proc/self/exe", "the cove-init binary"},
	}
	for _, o := range opens {
		f, err := os.Open(o.path)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("open %s: %w", o.what, err)
		}
		*o.to = f
	}
	if err := unix.PidfdSendSignal(EnterPidFd, 0, nil, 0); err != nil {
		e.close()
		return nil, fmt.Errorf("pid %d exited: pidfd_send_signal: %w", pid, err)
	}
	return &e, nil
}

// close closes what e holds; a nil e holds nothing.
func (e *userNSEntry) close() {
	if e == nil {
		return
	}
	for _, f := range []*os.File{e.ns, e.mnt, e.root, e.hostMnt, e.self} {
		if f != nil {
			f.Close()
		}
	}
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
