package isolate

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// writable layer, made now in its state directory if it has none yet;
// read-only when c is. With a user namespace the layers are idmapped into
// a namespace of the container's host IDs (allocated now if it never ran),
// which hold (this cove binary, launch.UserNSHoldVerb) holds while the
// mount is made. Without write, a container that has no writable layer
// yet gets its image's layers alone, read-only, and nothing is made. It
// also returns the container's ID range (the host's without a user
// namespace, or for the layers alone), and what releases the root: it
// unmounts it and, for the writable layer, releases its lock
// (inside.LockState), which a launcher takes before it mounts (two
// overlays must not share a writable layer). It is for docker cp.
func StoppedRoot(c launch.Config, hold string, write bool) (root *os.File, release func(), ids spec.IDRange, err error) {
	ids = inside.HostRange
	if c.Volatile {
		return nil, nil, ids, ErrVolatile
	}
	if _, err := os.Lstat(filepath.Join(c.Image.StateDir, launch.UpperDir)); !write && errors.Is(err, os.ErrNotExist) {
		fd, err := layersTree(c.Image.Layers)
		if err != nil {
			return nil, nil, ids, err
		}
		root, err := mountFile(fd, c.Name, true)
		return root, func() { root.Close() }, ids, err
	}
	if err := os.MkdirAll(c.Image.StateDir, 0o700); err != nil {
		return nil, nil, ids, fmt.Errorf("create the container's state directory: %w", err)
	}
	unlock, err := inside.LockState(c.Image.StateDir)
	if err != nil {
		return nil, nil, ids, err
	}
	if root, ids, err = writableRoot(c, hold); err != nil {
		unlock()
		return nil, nil, ids, err
	}
	return root, func() { root.Close(); unlock() }, ids, nil
}

// writableRoot is StoppedRoot's overlay of c's layers and writable layer,
// made under the writable layer's lock.
func writableRoot(c launch.Config, hold string) (*os.File, spec.IDRange, error) {
	ids, ns := inside.HostRange, -1
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
	root, err := mountFile(fd, c.Name, c.ReadOnly)
	return root, ids, err
}

// mountFile makes the detached mount fd a file named for container name,
// read-only if readOnly (a failure closes fd).
func mountFile(fd int, name string, readOnly bool) (*os.File, error) {
	what := name + "'s root"
	if readOnly {
		if err := inside.ReadOnlyTree(fd, what); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return os.NewFile(uintptr(fd), what), nil
}

// layersTree mounts, detached, the layers (top first) alone: the one
// layer's tree, or an overlay of them without a writable layer.
func layersTree(layers []string) (int, error) {
	var fds []int
	defer inside.CloseAll(&fds)
	for _, l := range layers {
		fd, err := idmappedTree(l, -1, "image layer")
		if err != nil {
			return -1, err
		}
		fds = append(fds, fd)
	}
	if len(fds) == 1 {
		fd := fds[0]
		fds = nil
		return fd, nil
	}
	return overlayTree(fds, nil, nil, false)
}

// userNSOf opens a new user namespace that maps container IDs 0… to host
// IDs ids: hold, started in it, holds it until the namespace is open.
func userNSOf(hold string, ids spec.IDRange) (int, error) {
	cmd := exec.Command(hold, launch.UserNSHoldVerb)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return -1, fmt.Errorf("make a user namespace: %w", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, UidMappings: idMap(ids), GidMappings: idMap(ids)}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("make a user namespace: start %s %s: %w", hold, launch.UserNSHoldVerb, err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the new user namespace: open /proc/%d/ns/user: %w", cmd.Process.Pid, err)
	}
	return ns, nil
}
