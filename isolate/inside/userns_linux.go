package inside

import (
	"fmt"
	"os"
	"strings"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"golang.org/x/sys/unix"
)

// receiveTrees is the init's side of isolate's sendTrees: it returns the root, the
// /proc and the bind mounts' and volumes' trees, in order.
func receiveTrees(c launch.Config) (*trees, error) {
	binds := 2 // the root and /proc
	for _, m := range c.Mounts {
		if HostTree(m) {
			binds++
		}
	}
	b := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(binds*4))
	_, oobn, flags, _, err := unix.Recvmsg(TreesFd, b, oob, unix.MSG_CMSG_CLOEXEC)
	unix.Close(TreesFd)
	if err != nil {
		return nil, fmt.Errorf("receive the container's mounts: recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 || flags&unix.MSG_CTRUNC != 0 {
		return nil, fmt.Errorf("receive the container's mounts: no or truncated descriptors (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != binds {
		CloseAll(&fds)
		return nil, fmt.Errorf("receive the container's mounts: want %d descriptors, got %d (%v)", binds, len(fds), err)
	}
	return &trees{root: fds[0], proc: fds[1], binds: fds[2:]}, nil
}

// trees are the detached mounts an init in a user namespace gets from the
// first stage.
type trees struct {
	root  int
	proc  int   // a proc file system of the container's pid namespace
	binds []int // the bind mounts and volumes of launch.Config.Mounts (HostTree), in order; taken by next
}

// next takes the tree of the next bind mount or volume.
func (t *trees) next() int {
	fd := t.binds[0]
	t.binds = t.binds[1:]
	return fd
}

// attachRoot attaches the root tree at UserRootDir, returns that path and
// closes the tree.
func (t *trees) attachRoot() (string, error) {
	defer unix.Close(t.root)
	if err := unix.MoveMount(t.root, "", unix.AT_FDCWD, UserRootDir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return "", fmt.Errorf("attach the root: move_mount on %s: %w", UserRootDir, err)
	}
	return UserRootDir, nil
}

// IDMaps are a process's uid_map and gid_map as cove writes them: one
// line, "0 BASE COUNT" (the host's own: "0 0 4294967295").
type IDMaps struct{ UID, GID spec.IDRange }

// ReadIDMaps reads the ID maps of process pid, one cove started.
func ReadIDMaps(pid int) (IDMaps, error) {
	var m IDMaps
	for _, f := range []struct {
		name string
		to   *spec.IDRange
	}{{"uid_map", &m.UID}, {"gid_map", &m.GID}} {
		p := fmt.Sprintf("/proc/%d/%s", pid, f.name)
		b, err := os.ReadFile(p)
		if err != nil {
			return m, fmt.Errorf("read the ID map of pid %d: %w", pid, err)
		}
		var from, to, n uint32
		if k, _ := fmt.Sscan(string(b), &from, &to, &n); k != 3 || from != 0 || strings.Count(strings.TrimSpace(string(b)), "\n") != 0 {
			return m, fmt.Errorf("read %s: %q is not one line \"0 BASE COUNT\" as cove writes it", p, b)
		}
		*f.to = spec.IDRange{Base: to, Count: n}
	}
	return m, nil
}

// Host reports whether the maps are the host's own: no user namespace
// of the container's.
func (m IDMaps) Host() bool {
	return m.UID == HostRange && m.GID == HostRange
}

// HostRange is the ID range of the host's user namespace.
var HostRange = spec.IDRange{Base: 0, Count: 4294967295}

// ToHost returns the host IDs of container IDs uid and gid.
func (m IDMaps) ToHost(uid, gid uint32) (uint32, uint32, error) {
	if uid >= m.UID.Count || gid >= m.GID.Count {
		return 0, 0, fmt.Errorf("user %d:%d is outside the container's user namespace (%d IDs)", uid, gid, min(m.UID.Count, m.GID.Count))
	}
	return m.UID.Base + uid, m.GID.Base + gid, nil
}

// ToContainer returns the container IDs of host IDs uid and gid; one the
// container's user namespace does not map is the overflow ID 65534, as
// the kernel shows it there.
func (m IDMaps) ToContainer(uid, gid uint32) (uint32, uint32) {
	in := func(id uint32, r spec.IDRange) uint32 {
		if !r.Contains(id) {
			return overflowID
		}
		return id - r.Base
	}
	return in(uid, m.UID), in(gid, m.GID)
}

// overflowID is the kernel's default overflowuid and overflowgid: what
// a user namespace shows for an ID it does not map.
const overflowID = 65534

// Descriptors of the init of a container with a user namespace, after
// the status (3) and go (4) pipes.
const (
	TreesFd = 5 // a socket: the first stage's detached mounts (isolate's sendTrees)
	SelfFd  = 6 // the cove binary, executed through this descriptor
)

// UserRootDir is where the init of a container with a user namespace
// attaches its root in its own mount namespace before pivot_root: a
// directory whose path host uid BASE may search (unlike an image
// container's state directory or a test's rootfs). It stays empty on
// the host.
const UserRootDir = "/run/cove/root"

// idmapNeeds says what idmapped mounts need, for errors.
const idmapNeeds = "idmapped mounts need Linux ≥ 5.12 and a file system that supports them (ext4, xfs, btrfs; tmpfs from 6.3; not overlayfs or NFS); set security.userns = \"host\" for this container"

// CloseAll closes the descriptors in *fds.
func CloseAll(fds *[]int) {
	for _, fd := range *fds {
		unix.Close(fd)
	}
}

// Idmap makes detached mount fd (recursively) idmapped into user
// namespace ns.
func Idmap(fd, ns int) error {
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP): %w; %s", err, idmapNeeds)
	}
	return nil
}
