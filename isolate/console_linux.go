package isolate

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/launch"
)

// ptmx is the pty multiplexer inside a container: its own devpts
// instance's (see mountDev), so that its processes see their terminal as
// /dev/pts/N.
const ptmx = "/dev/ptmx"

// initConsoleFd is where the container's init keeps its console's master
// (close-on-exec) until it execs the payload, for the first stage to copy
// into systemd's file descriptor store (storeConsole). It is high: the
// init's other descriptors (status, go, the Go runtime's, the minimal
// init's binary) take the lowest free numbers.
const initConsoleFd = 100

// takeConsole gives the container's init, for c.Console, a terminal: over
// the console socket on its standard input (see package tty) it allocates
// a pty from the container's devpts, sends the master to cove, and makes
// the slave its controlling terminal (a new session) and its stdin, stdout
// and stderr, which the payload inherits. It keeps the master at
// initConsoleFd. It runs after prepare, as the payload's user, so the
// terminal belongs to that user.
func takeConsole(c launch.Config) error {
	if !c.Console {
		return nil
	}
	master, slave, err := tty.Serve(os.Stdin, ptmx)
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	if err := controllingTerminal(int(slave.Fd())); err != nil {
		return err
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("make the terminal fd %d: dup3: %w", fd, err)
		}
	}
	if _, err := unix.FcntlInt(initConsoleFd, unix.F_GETFD, 0); err == nil {
		return fmt.Errorf("keep the terminal's master at fd %d: the descriptor is in use", initConsoleFd)
	}
	if err := unix.Dup3(rawFd(master), initConsoleFd, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("keep the terminal's master at fd %d: dup3: %w", initConsoleFd, err)
	}
	return nil
}

// rawFd returns f's descriptor without switching it to blocking mode as
// f.Fd() does: a pty master's mode is shared with cove's copy of it.
func rawFd(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

// controllingTerminal makes the calling process the leader of a new
// session whose controlling terminal is fd, so that the terminal's line
// discipline signals its foreground process group (Ctrl-C, a resize) and
// a hangup reaches it.
func controllingTerminal(fd int) error {
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("start a session for the terminal: setsid: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("acquire the controlling terminal: ioctl(TIOCSCTTY): %w", err)
	}
	return nil
}

// storeConsole, for c.Console, copies the master that the container's
// init pid keeps at initConsoleFd (pidfd_getfd) into the unit's file
// descriptor store (FDSTORE=1, FileDescriptorStoreMax= must allow it): a
// pty is hung up when its last master closes, so this keeps the payload's
// terminal when cove detaches from it, with no process of cove left. The
// first stage calls it while it is still the unit's main process, before
// the handover.
func storeConsole(c launch.Config, pid int) error {
	if !c.Console {
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("keep the terminal: pidfd_open pid %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, initConsoleFd, 0)
	if err != nil {
		return fmt.Errorf("keep the terminal: pidfd_getfd pid %d fd %d: %w", pid, initConsoleFd, err)
	}
	defer unix.Close(fd)
	return notifySystemd("FDSTORE=1\nFDNAME=console", fd)
}
