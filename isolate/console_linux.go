package isolate

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/isolate/inside"
	"github.com/cove-project/cove/launch"
)

// storeConsole, for c.Console, copies the master that the container's
// init pid keeps at inside.InitConsoleFd (pidfd_getfd) into the unit's file
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
	fd, err := unix.PidfdGetfd(pidfd, inside.InitConsoleFd, 0)
	if err != nil {
		return fmt.Errorf("keep the terminal: pidfd_getfd pid %d fd %d: %w", pid, inside.InitConsoleFd, err)
	}
	defer unix.Close(fd)
	return notifySystemd("FDSTORE=1\nFDNAME=console", fd)
}
