package isolate

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/isolate/inside"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// ErrVolatile marks the root of a volatile container that does not run:
// there is none (its writes lived in memory).
var ErrVolatile = errors.New("a volatile container's root exists only while it runs")

// StoppedRoot returns the root of image container c (its layers completed
// from the store), which does not run, as a detached mount built as its
// start builds it (hostRoot): an overlay of its image's layers under its
// writable layer, made now in its state directory if it has none yet.
// With a user namespace the layers are idmapped into one of the
// container's host IDs, allocated now if it never ran, which hold (the
// cove binary, launch.UserNSHoldVerb) holds while the mount is made. It
// also returns the container's ID range (the host's without a user
// namespace). It is for docker cp: the caller keeps the container from
// starting while the mount is open (two overlays must not share a
// writable layer). Closing the file unmounts the root.
func StoppedRoot(c launch.Config, hold string) (*os.File, spec.IDRange, error) {
	ids := inside.HostRange
	if c.Volatile {
		return nil, ids, ErrVolatile
	}
	if err := os.MkdirAll(c.Image.StateDir, 0o700); err != nil {
		return nil, ids, fmt.Errorf("container state: %w", err)
	}
	ns := -1
	if spec.HasUserNS(c.UserNS) {
		var err error
		if ids, err = hostIDs(c); err != nil {
			return nil, ids, err
		}
		if ns, err = userNSOf(hold, ids); err != nil {
			return nil, ids, err
		}
		defer unix.Close(ns)
	}
	fd, err := hostRoot(c, ns, ids)
	if err != nil {
		return nil, ids, err
	}
	return os.NewFile(uintptr(fd), c.Name+"'s root"), ids, nil
}

// userNSOf opens a new user namespace that maps container IDs 0… to host
// IDs ids: hold, started in it, holds it until the namespace is open.
func userNSOf(hold string, ids spec.IDRange) (int, error) {
	cmd := exec.Command(hold, launch.UserNSHoldVerb)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return -1, fmt.Errorf("make a user namespace: %w", err)
	}
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(ids.Base), Size: int(ids.Count)}}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, UidMappings: m, GidMappings: m, Pdeathsig: unix.SIGKILL}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("make a user namespace: start %s %s: %w", hold, launch.UserNSHoldVerb, err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the new user namespace: %w", err)
	}
	return ns, nil
}
