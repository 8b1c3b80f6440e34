package inside

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/launch"
)

// lastCapability reads the highest capability number the kernel knows.
func lastCapability() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read capability count: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read capability count: %w", err)
	}
	return n, nil
}

// restrict applies the payload's limits to the calling thread, which must be
// locked and must be the one that execs: the capability bounding set, no
// ambient or inheritable capabilities, no_new_privs, the seccomp filter,
// then the payload's uid and gid.
func restrict(c launch.Config, lastCap int) error {
	keep := map[int]bool{}
	for _, name := range c.Caps {
		n, _ := launch.CapNumber(name)
		keep[n] = true
	}
	for n := 0; n <= lastCap; n++ {
		if keep[n] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: prctl(PR_CAPBSET_DROP): %w", n, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
	}
	if err := clearInheritable(); err != nil {
		return err
	}
	if c.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	if c.Seccomp {
		if err := loadSeccomp(); err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	return setIdentity(c.UID, c.GID)
}

// clearInheritable empties the thread's inheritable capability set, so that
// exec grants nothing beyond the bounding set.
func clearInheritable() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear inheritable capabilities: capset: %w", err)
	}
	return nil
}

// setIdentity switches to uid:gid with no supplementary groups: uid and
// gid on all threads (Go's setresuid/setresgid), the groups on the calling
// thread only (unix.Setgroups), which must therefore be the one that execs.
func setIdentity(uid, gid uint32) error {
	if err := unix.Setgroups([]int{}); err != nil {
		return fmt.Errorf("clear supplementary groups: setgroups: %w", err)
	}
	if err := unix.Setresgid(int(gid), int(gid), int(gid)); err != nil {
		return fmt.Errorf("setresgid %d: %w", gid, err)
	}
	if err := unix.Setresuid(int(uid), int(uid), int(uid)); err != nil {
		return fmt.Errorf("setresuid %d: %w", uid, err)
	}
	return nil
}

// loopbackUp brings up lo in a new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: socket(AF_INET, SOCK_DGRAM): %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: ioctl(SIOCGIFFLAGS): %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: ioctl(SIOCSIFFLAGS): %w", err)
	}
	return nil
}
