//go:build linux

package sandbox

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// hostBusybox is where Debian's busybox-static installs its binary.
const hostBusybox = "/bin/busybox"

// rootfsStamp records which busybox a rootfs was built from.
const rootfsStamp = ".cove-rootfs"

// Rootfs makes dir a minimal busybox root filesystem: the host's static
// /bin/busybox (Debian's busybox-static) as dir/bin/busybox with a symlink
// per applet in dir/bin (and sbin, usr/bin, usr/sbin as links to bin), the
// directories /proc /sys /dev /tmp /etc /root /var /run /home, and
// /etc/passwd and /etc/group with root, user (1000) and nobody, and
// /etc/hostname. A rootfs already built from the same busybox is reused.
// Concurrent calls on the same dir (e.g. from parallel test binaries) are
// serialised with a lock file in dir.
//
// dir must be visible inside a sandbox to be used there: not under /tmp
// (see TempDir).
func Rootfs(dir string) error {
	if err := exec.Command("dpkg", "-s", "busybox-static").Run(); err != nil {
		return errors.New("sandbox: busybox-static is not installed: apt-get install busybox-static")
	}
	if err := checkStatic(hostBusybox); err != nil {
		return err
	}
	fi, err := os.Stat(hostBusybox)
	if err != nil {
		return fmt.Errorf("sandbox: %w (apt-get install busybox-static)", err)
	}
	stamp := fmt.Sprintf("%s %d %d\n", hostBusybox, fi.Size(), fi.ModTime().UnixNano())

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".cove-rootfs.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("sandbox: lock rootfs: %w", err)
	}
	if old, err := os.ReadFile(filepath.Join(dir, rootfsStamp)); err == nil && string(old) == stamp {
		return nil
	}
	if err := buildRootfs(dir); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, rootfsStamp), []byte(stamp), 0o644)
}

// checkStatic fails unless path is an ELF executable without an interpreter.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("sandbox: %s: %w (apt-get install busybox-static)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("sandbox: %s is dynamically linked: apt-get install busybox-static", path)
		}
	}
	return nil
}

// buildRootfs lays out the rootfs in dir.
func buildRootfs(dir string) error {
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "root", "var", "run", "home/user", "usr"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|fs.ModeSticky); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Chmod(filepath.Join(dir, "root"), 0o700); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Chown(filepath.Join(dir, "home/user"), 1000, 1000); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	bb := filepath.Join(dir, "bin", "busybox")
	if err := copyFile(hostBusybox, bb, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return fmt.Errorf("sandbox: busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			return err
		}
	}
	for link, target := range map[string]string{"sbin": "bin", "usr/bin": "../bin", "usr/sbin": "../bin"} {
		if err := symlink(target, filepath.Join(dir, link)); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
			"user:x:1000:1000:user:/home/user:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":    "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
		"etc/hostname": "cove-test\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	return nil
}

// symlink makes link point to target, replacing whatever link was.
func symlink(target, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	if err := os.RemoveAll(link); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Symlink(target, link); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

// copyFile copies src to dst atomically (through a temporary file in dst's
// directory).
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".copy-*")
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}
