package isolate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/userns"
	"github.com/cove-project/cove/isolate/inside"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// A container with a user namespace (launch.Config.UserNS) runs its init
// as root of a new user namespace created with its other namespaces: the
// first stage writes uid_map and gid_map ("0 BASE COUNT") before the init
// runs, so the payload's uid 0 is host uid BASE. The init's capabilities
// are then those of that namespace: it may mount in its own mount
// namespace but not idmap a host file system nor read what host root
// alone may. So the first stage, still host root, builds the trees the
// container needs from the host's files as detached mounts (open_tree,
// fsmount): the root (an overlay of the image's layers, each idmapped
// into the container's namespace, or the idmapped rootfs) and the bind
// mounts (idmapped with idmap = true), and passes them to the init over a
// socket; the init attaches them in its mount namespace (move_mount).

// hostIDs allocates c's host IDs (see package userns).
func hostIDs(c launch.Config) (spec.IDRange, error) {
	if err := os.MkdirAll(inside.UserRootDir, 0o755); err != nil {
		return spec.IDRange{}, fmt.Errorf("create %s: %w", inside.UserRootDir, err)
	}
	return userns.Default().Allocate(c.Name, c.UserNS)
}

// withUserNS makes cmd start the init in a new user namespace mapping
// container IDs 0…Count-1 to host IDs ids, as root there, executing the
// cove binary through inside.SelfFd. It returns the first stage's end of the
// trees socket, and the files to close once the init has started.
func withUserNS(cmd *initCmd, ids spec.IDRange) (trees *os.File, started []*os.File, err error) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create the trees socket: socketpair: %w", err)
	}
	trees, child := os.NewFile(uintptr(sp[0]), "trees"), os.NewFile(uintptr(sp[1]), "trees")
	self, err := os.Open(cmd.path)
	if err != nil {
		trees.Close()
		child.Close()
		return nil, nil, fmt.Errorf("open the cove binary: %w", err)
	}
	cmd.files = append(cmd.files, child, self) // inside.TreesFd, inside.SelfFd
	cmd.path = fmt.Sprintf("/proc/self/fd/%d", inside.SelfFd)
	m := idMap(ids)
	a := &cmd.attr
	a.Cloneflags |= unix.CLONE_NEWUSER
	a.UidMappings, a.GidMappings = m, m
	a.GidMappingsEnableSetgroups = true  // the maps are host root's: setgroups stays safe to allow
	a.Credential = &syscall.Credential{} // become the namespace's root, host uid BASE
	return trees, []*os.File{child, self}, nil
}

// idMap is the one line of a uid_map or gid_map of a user namespace of
// host IDs ids: container IDs 0… are ids.
func idMap(ids spec.IDRange) []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(ids.Base), Size: int(ids.Count)}}
}

// sendTrees builds the trees of container c for its init pid (see the
// comment on user namespaces above) and sends them on sock: the root, its
// /proc, then one per bind mount and named volume of c.Mounts, in order
// (a volume prepared from the root tree: inside.VolumeTree).
func sendTrees(c launch.Config, pid int, ids spec.IDRange, sock *os.File) error {
	ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the container's user namespace: %w", err)
	}
	defer unix.Close(ns)
	var fds []int
	defer inside.CloseAll(&fds)
	root, err := lockedHostRoot(c, ns, ids)
	if err != nil {
		return err
	}
	fds = append(fds, root)
	proc, err := procTree(pid)
	if err != nil {
		return err
	}
	fds = append(fds, proc)
	for _, m := range c.Mounts {
		if fd, err := hostTree(m, root, ns, ids); err != nil {
			return err
		} else if fd >= 0 {
			fds = append(fds, fd)
		}
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte{'t'}, unix.UnixRights(fds...), nil, 0); err != nil {
		return fmt.Errorf("pass %d mounts to the container: sendmsg: %w", len(fds), err)
	}
	return nil
}

// hostTree makes the tree of mount m (see inside.HostTree; -1 for none)
// for a container with user namespace ns of IDs ids and root tree root.
func hostTree(m spec.Mount, root, ns int, ids spec.IDRange) (int, error) {
	switch {
	case !inside.HostTree(m):
		return -1, nil
	case m.Type == spec.MountVolume:
		r, err := unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 0) // an *os.File closes its descriptor
		if err != nil {
			return -1, fmt.Errorf("dup the root tree: %w", err)
		}
		rf := os.NewFile(uintptr(r), "the container's root")
		defer rf.Close()
		return inside.VolumeTree(rf, m, ns, ids)
	}
	return inside.CloneBind(m, ns)
}

// lockedHostRoot is hostRoot under the lock of the container's writable
// layer (inside.LockState), if it has one.
func lockedHostRoot(c launch.Config, ns int, ids spec.IDRange) (int, error) {
	if c.Image.Ref != "" && !c.Volatile {
		unlock, err := inside.LockState(c.Image.StateDir)
		if err != nil {
			return -1, err
		}
		defer unlock()
	}
	return hostRoot(c, ns, ids)
}

// hostRoot builds the container's root as a detached mount: an overlay of
// the image's idmapped layers with its writable layer (a throwaway one,
// c.Image.Throwaway, mounted volatile: inside.ReadyLayer), or the idmapped
// rootfs, under an overlay on a tmpfs when volatile. With ns -1 (no user
// namespace) nothing is idmapped.
func hostRoot(c launch.Config, ns int, ids spec.IDRange) (int, error) {
	var lowers []int
	defer inside.CloseAll(&lowers)
	if c.Image.Ref == "" {
		root, err := idmappedTree(c.Rootfs, ns, "the rootfs")
		if err != nil || !c.Volatile {
			return root, err
		}
		lowers = append(lowers, root)
	}
	for _, l := range c.Image.Layers {
		fd, err := idmappedTree(l, ns, "image layer")
		if err != nil {
			return -1, err
		}
		lowers = append(lowers, fd)
	}
	var upper, work *os.File
	var err error
	if c.Volatile {
		var tmpfs int
		if tmpfs, err = newTmpfs(); err != nil {
			return -1, err
		}
		// Open until the overlay exists: closing a detached mount's
		// last descriptor unmounts it.
		defer unix.Close(tmpfs)
		upper, work, err = tmpfsLayer(tmpfs, lowers[0])
	} else {
		upper, work, err = stateLayer(c.Image.StateDir, ids, c.Image.Throwaway)
	}
	if err != nil {
		return -1, err
	}
	defer upper.Close()
	defer work.Close()
	return overlayTree(lowers, upper, work, c.Image.Throwaway)
}

// procTree mounts, detached, a proc file system of process pid's pid
// namespace. The init could mount it itself only where the kernel sees a
// proc file system fully visible in its mount namespace already (no
// read-only /proc/sys over it, as in a container or this test sandbox);
// host root may always. Naming the pid namespace needs Linux 6.15.
func procTree(pid int) (int, error) {
	ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/pid", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the container's pid namespace: %w", err)
	}
	defer unix.Close(ns)
	fs, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen proc: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetFd(fs, "pidns", ns); err != nil {
		return -1, fmt.Errorf("mount the container's /proc: fsconfig proc pidns: %w (a user namespace needs Linux ≥ 6.15)", err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("mount the container's /proc: fsconfig(FSCONFIG_CMD_CREATE): %w", err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("mount the container's /proc: fsmount: %w", err)
	}
	return fd, nil
}

// idmappedTree clones the tree at path (recursively) as a detached mount
// idmapped into user namespace ns: a file that host uid U owns appears
// owned by container uid U. With ns -1 the clone is not idmapped.
func idmappedTree(path string, ns int, what string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("%s %s: open_tree: %w", what, path, err)
	}
	if ns < 0 {
		return fd, nil
	}
	if err := inside.Idmap(fd, ns); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return fd, nil
}

// overlayTree mounts, detached, an overlay of lowers (top first) with
// upper and work (none: a read-only overlay of at least two lowers),
// volatile (inside.OverlayVolatile) for a throwaway writable layer. Overlayfs takes idmapped lower layers from Linux 5.19;
// they are given one by one ("lowerdir+", Linux 6.7: no limit on their
// number).
func overlayTree(lowers []int, upper, work *os.File, throwaway bool) (int, error) {
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fs)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fs, key, value); err != nil {
			return fmt.Errorf("fsconfig overlay %s=%s: %w (overlayfs over idmapped layers needs Linux ≥ 5.19, lowerdir+ 6.7)", key, value, err)
		}
		return nil
	}
	err = set("source", "overlay")
	for _, l := range lowers {
		err = errors.Join(err, set("lowerdir+", fmt.Sprintf("/proc/self/fd/%d", l)))
	}
	if upper != nil {
		err = errors.Join(err, set("upperdir", inside.FDPath(upper)), set("workdir", inside.FDPath(work)))
	}
	if throwaway {
		if vErr := unix.FsconfigSetFlag(fs, inside.OverlayVolatile); vErr != nil {
			err = errors.Join(err, fmt.Errorf("fsconfig overlay %s: %w", inside.OverlayVolatile, vErr))
		}
	}
	if err != nil {
		return -1, err
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("create the overlay of %d layers: fsconfig(FSCONFIG_CMD_CREATE): %w", len(lowers), err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("fsmount overlay: %w", err)
	}
	return fd, nil
}

// stateLayer opens the upper and work directories of an image container's
// state directory, creating them. A new upper directory, the container's
// "/", belongs to the container's root (host uid ids.Base); an existing
// one must belong to ids: a writable layer made without a user namespace,
// or in another range, would show wrong owners inside. A throwaway layer
// starts empty (inside.ReadyLayer).
func stateLayer(dir string, ids spec.IDRange, throwaway bool) (upper, work *os.File, err error) {
	if err := inside.ReadyLayer(dir, throwaway); err != nil {
		return nil, nil, err
	}
	up := filepath.Join(dir, launch.UpperDir)
	switch err := os.Mkdir(up, 0o755); {
	case err == nil:
		if err := os.Chown(up, int(ids.Base), int(ids.Base)); err != nil {
			return nil, nil, err
		}
	case !errors.Is(err, os.ErrExist):
		return nil, nil, err
	}
	if upper, err = openDir(up); err != nil {
		return nil, nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(upper.Fd()), &st); err != nil {
		upper.Close()
		return nil, nil, fmt.Errorf("fstat %s: %w", up, err)
	}
	if !ids.Contains(st.Uid) {
		upper.Close()
		return nil, nil, fmt.Errorf("the writable layer %s belongs to host uid %d, outside this container's IDs %s (it was written with another security.userns); cove rm the container to start afresh", up, st.Uid, ids)
	}
	wk := filepath.Join(dir, launch.WorkDir)
	if err := os.Mkdir(wk, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		upper.Close()
		return nil, nil, err
	}
	if work, err = openDir(wk); err != nil {
		upper.Close()
		return nil, nil, err
	}
	return upper, work, nil
}

// newTmpfs mounts a detached tmpfs for a volatile root's writes.
func newTmpfs() (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	if err := errors.Join(unix.FsconfigSetString(fs, "mode", "0700"), unix.FsconfigCreate(fs)); err != nil {
		return -1, fmt.Errorf("create the volatile root's tmpfs: fsconfig: %w", err)
	}
	t, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return -1, fmt.Errorf("fsmount tmpfs: %w", err)
	}
	return t, nil
}

// tmpfsLayer makes upper and work directories on the detached tmpfs t for
// a volatile root; upper gets the owner and mode of the top of lower (an
// idmapped tree: owners as the container sees them, from the host).
func tmpfsLayer(t, lower int) (upper, work *os.File, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(lower, &st); err != nil {
		return nil, nil, fmt.Errorf("fstat the volatile root's lower layer: %w", err)
	}
	top := fmt.Sprintf("/proc/self/fd/%d/upper", t)
	if err := os.Mkdir(top, 0o755); err != nil {
		return nil, nil, err
	}
	if err := errors.Join(os.Chown(top, int(st.Uid), int(st.Gid)), os.Chmod(top, os.FileMode(st.Mode&0o777))); err != nil {
		return nil, nil, fmt.Errorf("give the volatile root's top directory its owner and mode: %w", err)
	}
	if err := os.Mkdir(fmt.Sprintf("/proc/self/fd/%d/work", t), 0o700); err != nil {
		return nil, nil, err
	}
	if upper, err = openDir(top); err != nil {
		return nil, nil, err
	}
	if work, err = openDir(fmt.Sprintf("/proc/self/fd/%d/work", t)); err != nil {
		upper.Close()
		return nil, nil, err
	}
	return upper, work, nil
}

// openDir opens directory p as an O_PATH handle, not following a symlink.
func openDir(p string) (*os.File, error) {
	return os.OpenFile(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}
