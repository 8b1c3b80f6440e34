package ondemand

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Sockets returns the sockets systemd passed to this process
// (LISTEN_FDS and LISTEN_PID, which it then unsets): datagram sockets as
// PacketConns, stream sockets as Listeners. Nothing passed, or a socket
// of another type, is an error; on error nothing stays open. unit names
// the socket unit the process is meant to be started from, for the
// error that none was passed.
func Sockets(unit string) ([]net.PacketConn, []net.Listener, error) {
	files := passed()
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("sockets from systemd: none passed (LISTEN_FDS); this runs from %s", unit)
	}
	var conns []net.PacketConn
	var lns []net.Listener
	var errs []error
	for _, f := range files {
		c, l, err := fileSocket(f)
		f.Close() // c and l hold duplicates
		switch {
		case err != nil:
			errs = append(errs, err)
		case c != nil:
			conns = append(conns, c)
		default:
			lns = append(lns, l)
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, c := range conns {
			c.Close()
		}
		for _, l := range lns {
			l.Close()
		}
		return nil, nil, err
	}
	return conns, lns, nil
}

// fileSocket is the socket f as a PacketConn (datagram) or a Listener
// (stream).
func fileSocket(f *os.File) (net.PacketConn, net.Listener, error) {
	typ, err := socketType(f)
	if err != nil {
		return nil, nil, err
	}
	switch typ {
	case unix.SOCK_DGRAM:
		c, err := net.FilePacketConn(f)
		if err != nil {
			return nil, nil, fmt.Errorf("socket %s from systemd: %w", f.Name(), err)
		}
		return c, nil, nil
	case unix.SOCK_STREAM:
		l, err := net.FileListener(f)
		if err != nil {
			return nil, nil, fmt.Errorf("socket %s from systemd: %w", f.Name(), err)
		}
		return nil, l, nil
	}
	return nil, nil, fmt.Errorf("socket %s from systemd: type %d, want a datagram or stream socket", f.Name(), typ)
}

// socketType is f's SO_TYPE.
func socketType(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("socket %s from systemd: %w", f.Name(), err)
	}
	var typ int
	var serr error
	if err := rc.Control(func(fd uintptr) { typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE) }); err != nil {
		return 0, fmt.Errorf("socket %s from systemd: %w", f.Name(), err)
	}
	if serr != nil {
		return 0, fmt.Errorf("socket %s from systemd: getsockopt SO_TYPE: %w", f.Name(), serr)
	}
	return typ, nil
}

// passed returns the descriptors systemd passed to this process (from 3
// on, LISTEN_FDS of them, when LISTEN_PID names this process), marked
// close-on-exec, and unsets those variables, as sd_listen_fds(1) does.
// Not go-systemd's activation.Files: its package links crypto/tls, whose
// initialisation every start of the stage binary (cove-launch, which
// runs the [::1] UDP proxy) would pay.
func passed() []*os.File {
	defer func() {
		for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
			os.Unsetenv(v)
		}
	}()
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	files := make([]*os.File, 0, n)
	for fd := listenFdsStart; fd < listenFdsStart+n; fd++ {
		unix.CloseOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd)))
	}
	return files
}

// listenFdsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFdsStart = 3
