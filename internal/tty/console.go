package tty

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// A console socket is how cove gets the terminal of a process it does not
// start itself (a container's payload, started by systemd through the
// launcher; a command cove exec enters into a container): a
// SOCK_SEQPACKET socket pair. cove writes the window size (one message,
// sizeMsgLen bytes) into its end and gives the other end to the stage that
// sets the process up, as its standard input. That stage allocates a pty
// from the container's own devpts (so that the process sees /dev/pts/N
// inside), sizes it, sends the master back in one message
// (SCM_RIGHTS) and makes the slave the process's controlling terminal and
// stdio. cove relays between the user's terminal and the master.

// sizeMsgLen is the length of the window-size message: rows, columns,
// width and height in pixels, each a native-endian uint16.
const sizeMsgLen = 8

// NewSocket creates a console socket pair for a process whose terminal
// starts with size ws: cove's end (non-blocking, so that closing it ends a
// pending Receive) and the end to pass as the setting-up stage's standard
// input. Both are close-on-exec.
func NewSocket(ws *unix.Winsize) (host, stage *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create a console socket: socketpair(AF_UNIX, SOCK_SEQPACKET): %w", err)
	}
	msg := binary.NativeEndian.AppendUint16(nil, ws.Row)
	msg = binary.NativeEndian.AppendUint16(msg, ws.Col)
	msg = binary.NativeEndian.AppendUint16(msg, ws.Xpixel)
	msg = binary.NativeEndian.AppendUint16(msg, ws.Ypixel)
	if _, err := unix.Write(fds[0], msg); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("send the window size on the console socket: write: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("make the console socket non-blocking: fcntl(O_NONBLOCK): %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console socket"), os.NewFile(uintptr(fds[1]), "console socket"), nil
}

// ErrNoTerminal is returned by Receive when the stage closed its end of
// the console socket without sending a terminal (it failed, and said why
// on its standard error).
var ErrNoTerminal = errors.New("the process ended before handing over its terminal")

// Receive waits for the pty master that the stage sends on cove's end of a
// console socket. Closing host ends the wait.
func Receive(host *os.File) (*os.File, error) {
	rc, err := host.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	var n, oobn int
	var recvErr error
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, recvErr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(recvErr, unix.EAGAIN)
	})
	if err == nil {
		err = recvErr
	}
	// A stage that closes its end before reading the window size resets
	// the connection.
	if errors.Is(err, unix.ECONNRESET) || err == nil && n == 0 && oobn == 0 {
		return nil, ErrNoTerminal
	}
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: recvmsg: %w", err)
	}
	fd, err := onlyFd(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("receive the terminal: fcntl(O_NONBLOCK): %w", err)
	}
	return os.NewFile(uintptr(fd), "pty master"), nil
}

// onlyFd reads the one descriptor of a control message, closing any others.
func onlyFd(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, fmt.Errorf("parse the control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("got %d descriptors, want the pty master", len(fds))
	}
	return fds[0], nil
}

// Serve is the stage's side of a console socket sock (its standard input):
// it reads the window size, allocates a pty from ptmx with that size and
// sends the master to cove. The caller makes the slave the process's
// terminal and closes the master when nothing needs to keep it open.
func Serve(sock *os.File, ptmx string) (master, slave *os.File, err error) {
	ws, err := readSize(sock)
	if err != nil {
		return nil, nil, err
	}
	if master, slave, err = Open(ptmx); err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*os.File, *os.File, error) {
		master.Close()
		slave.Close()
		return nil, nil, err
	}
	if err := SetSize(master, ws); err != nil {
		return fail(err)
	}
	err = control(sock, func(fd int) error {
		return control(master, func(m int) error { return unix.Sendmsg(fd, []byte{0}, unix.UnixRights(m), nil, 0) })
	})
	if err != nil {
		return fail(fmt.Errorf("send the terminal to cove: sendmsg on the console socket: %w", err))
	}
	return master, slave, nil
}

// DefaultSize is a terminal's size when nobody said one (the console
// sockets of cove and the API, a restart's terminal). NewSocket only reads
// the size it is given.
var DefaultSize = unix.Winsize{Row: 24, Col: 80}

// TakeSize reads the window-size message from the stage's end of a console
// socket if it is there now (a start's: cove wrote it before), else
// returns DefaultSize (a restart's: it was read at the first start). It
// never waits.
func TakeSize(sock *os.File) *unix.Winsize {
	ws := DefaultSize
	b := make([]byte, sizeMsgLen+1)
	var n int
	err := control(sock, func(fd int) (err error) {
		n, _, err = unix.Recvfrom(fd, b, unix.MSG_DONTWAIT)
		return err
	})
	if err == nil && n == sizeMsgLen {
		ws = unix.Winsize{Row: binary.NativeEndian.Uint16(b[0:]), Col: binary.NativeEndian.Uint16(b[2:]),
			Xpixel: binary.NativeEndian.Uint16(b[4:]), Ypixel: binary.NativeEndian.Uint16(b[6:])}
	}
	return &ws
}

// readSize reads the window-size message from the stage's end of a
// console socket.
func readSize(sock *os.File) (*unix.Winsize, error) {
	b := make([]byte, sizeMsgLen+1) // one more: a longer message is an error, not truncated
	n, err := sock.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the window size from the console socket: %w", err)
	}
	if n != sizeMsgLen {
		return nil, fmt.Errorf("read the window size from the console socket: got %d bytes, want %d (is standard input a console socket?)", n, sizeMsgLen)
	}
	return &unix.Winsize{
		Row:    binary.NativeEndian.Uint16(b[0:]),
		Col:    binary.NativeEndian.Uint16(b[2:]),
		Xpixel: binary.NativeEndian.Uint16(b[4:]),
		Ypixel: binary.NativeEndian.Uint16(b[6:]),
	}, nil
}
