//go:build linux

package sandbox

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// console is the pseudo-terminal bind-mounted over /dev/console inside the
// sandbox. systemd as PID 1 logs to /dev/console (it reopens it, ignoring its
// stderr), and /dev is shared with the host: without a console of its own,
// the sandbox's log would go to the host's console and not to Options.Log.
type console struct {
	master *os.File
	slave  string   // e.g. /dev/pts/3
	hold   *os.File // our own slave fd: keeps the master readable between writers
	copied chan struct{}
}

// newConsole allocates a pty and copies everything written to its slave to w
// until the last writer closes the slave.
func newConsole(w io.Writer) (*console, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open pty: %w", err)
	}
	var n uint32
	var unlock int32
	var tio syscall.Termios
	rc, err := m.SyscallConn()
	if err != nil {
		m.Close()
		return nil, err
	}
	var ioErr error
	_ = rc.Control(func(fd uintptr) {
		if ioErr = ioctl(fd, syscall.TIOCGPTN, unsafe.Pointer(&n)); ioErr != nil {
			return
		}
		if ioErr = ioctl(fd, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); ioErr != nil {
			return
		}
		// Raw output (no \n -> \r\n), no echo.
		if ioErr = ioctl(fd, syscall.TCGETS, unsafe.Pointer(&tio)); ioErr != nil {
			return
		}
		tio.Oflag &^= syscall.OPOST
		tio.Lflag &^= syscall.ECHO | syscall.ICANON
		ioErr = ioctl(fd, syscall.TCSETS, unsafe.Pointer(&tio))
	})
	if ioErr != nil {
		m.Close()
		return nil, fmt.Errorf("sandbox: set up pty: %w", ioErr)
	}
	c := &console{master: m, slave: fmt.Sprintf("/dev/pts/%d", n), copied: make(chan struct{})}
	// Without an open slave, the master reads EIO and writers block once
	// the buffer is full: hold the slave open until close.
	if c.hold, err = os.OpenFile(c.slave, os.O_RDWR|syscall.O_NOCTTY, 0); err != nil {
		m.Close()
		return nil, fmt.Errorf("sandbox: open pty slave: %w", err)
	}
	go func() {
		defer close(c.copied)
		_, _ = io.Copy(w, m) // ends with EIO once no one holds the slave
	}()
	return c, nil
}

// close releases the slave, waits briefly for the remaining output, then
// closes the master.
func (c *console) close() {
	c.hold.Close()
	select {
	case <-c.copied:
	case <-time.After(time.Second):
	}
	c.master.Close()
}

// ioctl calls ioctl(2) with a pointer argument.
func ioctl(fd, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}
