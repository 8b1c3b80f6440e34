package isolate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrCommandNotFound is the error for a command that is not in the
// container's PATH.
var ErrCommandNotFound = errors.New("no such command")

// EnterVerb is the hidden cove verb that runs a command inside a running
// container (see EnterCommand).
const EnterVerb = "enter-init"

// Descriptors EnterCommand passes to the enter stage.
const (
	enterMountNSFd = 3 // the container's mount namespace
	enterRootFd    = 4 // the container's root directory
)

// EnterCommand returns the command that runs c.Argv inside the running
// container whose payload is pid, the way its payload runs: in its pid,
// uts, ipc, network and mount namespaces and root, in c.Workdir, as
// c.UID:c.GID, with the capability bounding set, no_new_privs and seccomp
// filter c says (c is the container's launcher configuration, with Argv
// and possibly the identity replaced). nsenter enters all but the mount
// namespace and runs self (the cove binary, still on the host's file
// system) as the enter stage, which enters the mount namespace and root
// on its own locked thread, restricts itself like the launcher and execs
// the command. The caller sets stdio, runs it, and then calls release.
func EnterCommand(ctx context.Context, self string, c Config, pid int) (cmd *exec.Cmd, release func(), err error) {
	mnt, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if err != nil {
		return nil, nil, fmt.Errorf("enter the container of pid %d: %w", pid, err)
	}
	root, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		mnt.Close()
		return nil, nil, fmt.Errorf("enter the container of pid %d: %w", pid, err)
	}
	args := append([]string{"--target", strconv.Itoa(pid), "--uts", "--ipc", "--net", "--pid", "--",
		self, EnterVerb}, c.Args()...)
	cmd = exec.CommandContext(ctx, "nsenter", args...)
	cmd.ExtraFiles = []*os.File{mnt, root} // fds 3 and 4
	cmd.Env = []string{}
	return cmd, func() { mnt.Close(); root.Close() }, nil
}

// Enter is the enter stage (see EnterCommand): already in the container's
// other namespaces, it moves its thread into the container's mount
// namespace and root, restricts it and execs c.Argv. It returns only on
// error.
func Enter(c Config) error {
	runtime.LockOSThread() // namespaces, root and restrictions are this thread's; it execs
	lastCap, err := lastCapability()
	if err != nil {
		return err
	}
	// setns into a mount namespace needs a thread that shares its file
	// system attributes with no other.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare file system attributes: %w", err)
	}
	if err := unix.Setns(enterMountNSFd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter the mount namespace: %w", err)
	}
	if err := unix.Fchdir(enterRootFd); err != nil {
		return fmt.Errorf("enter the root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("enter the root: %w", err)
	}
	unix.Close(enterMountNSFd)
	unix.Close(enterRootFd)
	c.Ready = ReadyStarted // no NOTIFY_SOCKET: only the payload may notify
	env := payloadEnv(c)
	argv0, err := lookPath(c.Argv[0], env)
	if err != nil {
		return err
	}
	if err := unix.Chdir(c.Workdir); err != nil {
		return fmt.Errorf("change to working directory %s: %w", c.Workdir, err)
	}
	if err := restrict(c, lastCap); err != nil {
		return err
	}
	err = unix.Exec(argv0, c.Argv, env)
	return fmt.Errorf("exec %s: %w", c.Argv[0], err)
}

// Probe runs c.Argv inside the container whose payload is pid, as
// EnterCommand does, with a timeout, and returns its combined output. A
// non-zero exit or a timeout is an error.
func Probe(self string, c Config, pid int, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd, release, err := EnterCommand(ctx, self, c, pid)
	if err != nil {
		return "", err
	}
	defer release()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("probe timed out after %s", timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), fmt.Errorf("probe: %w", err)
	}
	return out.String(), err
}
