package ondemand

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Wake sends one datagram to the AF_UNIX datagram socket at path, which
// starts the service its socket unit activates or, while that runs,
// tells it something is due. It never waits: with the socket's queue
// full (the service is not reading yet) the datagram is dropped and that
// is no error, since those queued wake it as well.
func Wake(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("wake %s: socket(AF_UNIX, SOCK_DGRAM): %w", path, err)
	}
	defer unix.Close(fd)
	err = unix.Sendto(fd, []byte{1}, unix.MSG_DONTWAIT, &unix.SockaddrUnix{Name: path})
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("wake %s: sendto: %w", path, err)
	}
	return nil
}
