package inside

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// devices are the character devices of a container's minimal /dev.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// maskedProc are /proc files hidden behind /dev/null; readOnlyProc are
// /proc paths remounted read-only (as Docker and Podman do).
var (
	maskedProc   = []string{"kcore", "keys", "timer_list", "sched_debug", "latency_stats", "kmsg"}
	readOnlyProc = []string{"sys", "sysrq-trigger", "irq", "bus", "fs"}
)

// setupRoot makes the container's rootfs (or, volatile, an overlay of it)
// the root of the current (new) mount namespace with the spec's mounts, /proc, a minimal /dev, a
// read-only /sys and, for ready = "notify", the notify socket's directory,
// read-only if asked, and detaches the old root. In a user namespace (t
// not nil) the root and the bind mounts are the first stage's trees.
func setupRoot(c launch.Config, t *trees) error {
	rootfs := c.Rootfs
	steps := []struct {
		what string
		do   func() error
	}{
		{"make mounts private", func() error {
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("mount(MS_REC|MS_PRIVATE) /: %w", err)
			}
			return nil
		}},
		{"attach the root", func() error {
			if t == nil {
				return nil
			}
			root, err := t.attachRoot()
			if err == nil {
				rootfs, c.Rootfs = root, root // what the other steps set up
			}
			return err
		}},
		{"image overlay", func() error {
			if c.Image.Ref == "" || t != nil {
				return nil
			}
			merged, err := imageRoot(c)
			if err == nil {
				rootfs, c.Rootfs = merged, merged // what the other steps set up
			}
			return err
		}},
		{"volatile overlay", func() error {
			if !c.Volatile || c.Image.Ref != "" || t != nil {
				return nil
			}
			merged, err := volatileRoot(rootfs)
			if err == nil {
				rootfs, c.Rootfs = merged, merged // what the other steps set up
			}
			return err
		}},
		{"bind rootfs", func() error {
			if t != nil {
				return nil // the attached root is a mount already
			}
			if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("mount(MS_BIND|MS_REC) %s on itself: %w", rootfs, err)
			}
			return nil
		}},
		{"mounts", func() error { return mountAll(c, t) }},
		{"mount /proc", func() error { return mountProc(rootfs, t) }},
		{"mount /dev", func() error { return mountDev(rootfs, t != nil) }},
		{"mount /sys", func() error { return mountSys(rootfs) }},
		{"mount the notify socket", func() error { return mountNotify(c) }},
		{"make the root read-only", func() error { return readOnlyRoot(c) }},
		{"switch root", func() error { return pivot(rootfs) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("set up root %s: %s: %w", rootfs, s.what, err)
		}
	}
	return nil
}

// mkdirAt creates dir inside rootfs if missing, resolving symlinks inside
// rootfs (a rootfs's "run -> /etc" must not create /etc/notify on the
// host), and returns the directory's path.
func mkdirAt(rootfs, dir string, mode os.FileMode) (string, error) {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer root.Close()
	d, err := pathrs.MkdirAllHandle(root, dir, mode)
	if err != nil {
		return "", fmt.Errorf("create %s in the rootfs: %w", dir, err)
	}
	defer d.Close()
	return os.Readlink(FDPath(d))
}

// mountProc mounts the new pid namespace's /proc (in a user namespace,
// t not nil, the first stage's) and hides the host's sensitive entries.
func mountProc(rootfs string, t *trees) error {
	p, err := mkdirAt(rootfs, "proc", 0o555)
	if err != nil {
		return err
	}
	if t != nil {
		if err := unix.MoveMount(t.proc, "", unix.AT_FDCWD, p, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("attach proc on %s: move_mount: %w", p, err)
		}
		unix.Close(t.proc)
	} else if err := unix.Mount("proc", p, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc on %s: %w", p, err)
	}
	for _, f := range maskedProc {
		t := filepath.Join(p, f)
		if _, err := os.Stat(t); err == nil {
			if err := unix.Mount("/dev/null", t, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("mask %s: mount(MS_BIND) /dev/null: %w", t, err)
			}
		}
	}
	for _, f := range readOnlyProc {
		t := filepath.Join(p, f)
		if _, err := os.Stat(t); err != nil {
			continue
		}
		if err := readOnlyBind(t, t); err != nil {
			return err
		}
	}
	return nil
}

// readOnlyBind bind-mounts src on dst recursively and makes it read-only.
func readOnlyBind(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount(MS_BIND|MS_REC) %s on %s: %w", src, dst, err)
	}
	// noexec too: a bind of a mount locked noexec (the host's /sys, in a
	// user namespace) cannot drop it.
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("mount(MS_BIND|MS_REMOUNT|MS_RDONLY) %s: %w", dst, err)
	}
	return nil
}

// mountDev builds a minimal /dev on a tmpfs: the standard character devices,
// a private devpts instance, /dev/shm and the usual symlinks. In a user
// namespace (bindDevices), where mknod is not allowed, the devices are
// bind mounts of the host's nodes: they stay host root's, so the
// container cannot change their modes.
func mountDev(rootfs string, bindDevices bool) error {
	dev, err := mkdirAt(rootfs, "dev", 0o755)
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dev, err)
	}
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range devices {
		if err := makeDevice(filepath.Join(dev, d.name), d.major, d.minor, bindDevices); err != nil {
			return err
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	pts, shm := filepath.Join(dev, "pts"), filepath.Join(dev, "shm")
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount devpts on %s: %w", pts, err)
	}
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", shm, err)
	}
	links := [][2]string{{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return err
		}
	}
	return nil
}

// makeDevice creates character device major:minor at p: a node, or with
// bind a bind mount of the host's /dev node of p's name.
func makeDevice(p string, major, minor uint32, bind bool) error {
	if !bind {
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor))); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		return nil
	}
	host := filepath.Join("/dev", filepath.Base(p))
	if err := os.WriteFile(p, nil, 0o666); err != nil {
		return err
	}
	if err := unix.Mount(host, p, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount(MS_BIND) %s on %s: %w", host, p, err)
	}
	return nil
}

// mountSys mounts a read-only sysfs, or, where the kernel refuses a new
// sysfs (host network namespace without the rights), a read-only bind of
// the host's.
func mountSys(rootfs string) error {
	p, err := mkdirAt(rootfs, "sys", 0o555)
	if err != nil {
		return err
	}
	err = unix.Mount("sysfs", p, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY) {
		return readOnlyBind("/sys", p)
	}
	if err != nil {
		return fmt.Errorf("mount sysfs on %s: %w", p, err)
	}
	return nil
}

// pivot makes rootfs the root and lazily detaches the old root.
func pivot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: umount2(MNT_DETACH): %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// mountNotify binds the launcher's notify socket directory into the
// container, for ready = "notify".
func mountNotify(c launch.Config) error {
	if c.Ready != spec.ReadyNotify {
		return nil
	}
	p, err := mkdirAt(c.Rootfs, spec.NotifyDir, 0o755)
	if err != nil {
		return err
	}
	src := filepath.Join(launch.NotifyDir, c.Name)
	if err := unix.Mount(src, p, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount(MS_BIND) %s on %s: %w", src, p, err)
	}
	return nil
}
