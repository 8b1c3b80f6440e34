package ondemand

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Wake sends one datagram to the AF_UNIX datagram socket at path, which
// starts the service its socket unit activates or, while that runs,
// tells it something is due. It never waits: with the socket's queue
// full (the service is not reading) it fails with EAGAIN at once.
func Wake(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("wake %s: socket(AF_UNIX, SOCK_DGRAM): %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, []byte{1}, unix.MSG_DONTWAIT, &unix.SockaddrUnix{Name: path}); err != nil {
		return fmt.Errorf("wake %s: sendto: %w", path, err)
	}
	return nil
}
