//go:build linux

package sandbox

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Usable reports whether a sandbox can be booted here and, if not, why.
func Usable() (ok bool, reason string) {
	if os.Geteuid() != 0 {
		return false, "not running as root"
	}
	if fi, err := os.Stat(systemdPath); err != nil || fi.Mode()&0o111 == 0 {
		return false, "no " + systemdPath + " (install systemd)"
	}
	for _, tool := range []string{"unshare", "nsenter", "systemctl", "mount", "umount", "dbus-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, "no " + tool + " in PATH"
		}
	}
	if !unitExists("dbus.socket") {
		return false, "no dbus.socket unit (install dbus)"
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		return false, "no overlay filesystem in /proc/filesystems (modprobe overlay)"
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(cgroupRoot, &st); err != nil || st.Type != 0x01021994 { // TMPFS_MAGIC
		return false, cgroupRoot + " is not a tmpfs of cgroup v1/hybrid hierarchies (pure cgroup2 hosts are not supported)"
	}
	hs, err := readHierarchies()
	if err != nil {
		return false, err.Error()
	}
	memory := false
	for _, h := range hs {
		memory = memory || h.controllers == "memory"
	}
	if !memory {
		return false, "no cgroup v1 memory hierarchy"
	}
	return true, ""
}

// unitExists reports whether a unit file of that name is installed.
func unitExists(name string) bool {
	for _, d := range unitDirs {
		if _, err := os.Stat(d + "/" + name); err == nil {
			return true
		}
	}
	return false
}

// TB is the part of testing.TB that TempDir uses; *testing.T and
// *testing.B satisfy it. It is declared here so that the package does not
// import testing, which would link the testing package (and its flags) into
// the programs that use a sandbox outside tests, such as bench/.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// TempDir returns a new directory under /var/tmp, removed when the test ends.
// Use it instead of t.TempDir for anything the sandbox must see (a rootfs, a
// state directory): /tmp is private inside the sandbox.
func TempDir(tb TB, pattern string) string {
	tb.Helper()
	d, err := os.MkdirTemp("/var/tmp", pattern)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}
