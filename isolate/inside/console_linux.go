package inside

import (
	"fmt"
	"os"

	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/launch"
	"golang.org/x/sys/unix"
)

// ptmx is the pty multiplexer inside a container: its own devpts
// instance's (see mountDev), so that its processes see their terminal as
// /dev/pts/N.
const ptmx = "/dev/ptmx"

// InitConsoleFd is where the container's init keeps its console's master
// (close-on-exec) until it execs the payload, for the first stage to copy
// to the terminal's relay (isolate's startRelay). It is high: the
// init's other descriptors (status, go, the Go runtime's, the minimal
// init's binary) take the lowest free numbers.
const InitConsoleFd = 100

// takeConsole gives the container's init, for c.Console, a terminal: over
// the console socket on its standard input (see package tty) it allocates
// a pty from the container's devpts, sends the master to cove, and makes
// the slave its controlling terminal (a new session) and its stdin, stdout
// and stderr, which the payload inherits. It keeps the master at
// InitConsoleFd. It runs after prepare, as the payload's user, so the
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
	if _, err := unix.FcntlInt(InitConsoleFd, unix.F_GETFD, 0); err == nil {
		return fmt.Errorf("keep the terminal's master at fd %d: the descriptor is in use", InitConsoleFd)
	}
	if err := unix.Dup3(rawFd(master), InitConsoleFd, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("keep the terminal's master at fd %d: dup3: %w", InitConsoleFd, err)
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
