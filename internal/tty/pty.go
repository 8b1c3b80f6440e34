// Package tty gives cove's interactive commands a terminal: a pseudo-terminal
// pair, the console socket over which the stage that sets up a container's
// process hands the pty's master to cove, and the session that relays between
// the user's terminal (in raw mode, its size kept on the pty) and that master
// until the program ends or the user presses the detach key.
package tty

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open allocates a pseudo-terminal pair from the multiplexer ptmx
// ("/dev/ptmx", or a container's, which allocates from the container's
// devpts): the master, non-blocking so that closing it ends a pending read,
// and its slave, opened through the master (TIOCGPTPEER: no path is looked
// up) in blocking mode. Neither becomes the caller's controlling terminal;
// both are close-on-exec. The slave belongs to the caller's user and group.
func Open(ptmx string) (master, slave *os.File, err error) {
	m, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("allocate a pty: open %s: %w", ptmx, err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock the pty of %s: ioctl(TIOCSPTLCK): %w", ptmx, err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open the slave of the pty of %s: ioctl(TIOCGPTPEER): %w", ptmx, errno)
	}
	return os.NewFile(uintptr(m), "pty master"), os.NewFile(s, "pty slave"), nil
}

// Size reads the window size of terminal f.
func Size(f *os.File) (*unix.Winsize, error) {
	var ws *unix.Winsize
	err := control(f, func(fd int) (err error) {
		ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the window size of %s: ioctl(TIOCGWINSZ): %w", f.Name(), err)
	}
	return ws, nil
}

// SetSize sets the window size of terminal f (a pty's master or slave); the
// kernel sends SIGWINCH to the foreground process group of the pty when it
// changes.
func SetSize(f *os.File, ws *unix.Winsize) error {
	err := control(f, func(fd int) error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) })
	if err != nil {
		return fmt.Errorf("set the window size of %s: ioctl(TIOCSWINSZ): %w", f.Name(), err)
	}
	return nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	return control(f, func(fd int) error {
		_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	}) == nil
}

// control runs op on f's descriptor without changing its blocking mode (as
// f.Fd() would).
func control(f *os.File, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = op(int(fd)) }); err != nil {
		return err
	}
	return opErr
}
