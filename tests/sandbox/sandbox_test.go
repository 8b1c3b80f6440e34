//go:build linux

package sandbox

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireUsable skips the test when no sandbox can be booted here, except in
// CI (CI=true), where that is a failure.
func requireUsable(t *testing.T) {
	t.Helper()
	if ok, reason := Usable(); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sandbox not usable in CI: %s", reason)
		}
		t.Skipf("sandbox not usable: %s", reason)
	}
}

// bootForTest boots a sandbox logging to a file that is printed if the test
// fails, and shuts it down when the test ends.
func bootForTest(t *testing.T, opts Options) *Sandbox {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "console.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() || os.Getenv("SANDBOX_CONSOLE") != "" {
			data, _ := os.ReadFile(logPath)
			t.Logf("sandbox console:\n%s", data)
		}
	})
	opts.Log = logFile
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 2 * time.Minute // CI machines may be loaded
	}
	start := time.Now()
	s, err := Boot(context.Background(), opts)
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	t.Logf("Boot took %v (systemd pid %d, cgroup %s)", time.Since(start).Round(time.Millisecond), s.PID(), s.CgroupName())
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// run runs a command inside and fails the test unless it exits 0.
func run(t *testing.T, s *Sandbox, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, code, err := s.Run(ctx, name, args...)
	if err != nil || code != 0 {
		t.Fatalf("%s %s: code %d, err %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), code, err, out, errOut)
	}
	return out
}

// checkOnlyBaseServices fails if services other than the sandbox's own
// (D-Bus, journald) run inside: host-enabled servers must stay down.
func checkOnlyBaseServices(t *testing.T, s *Sandbox) {
	t.Helper()
	out := run(t, s, "systemctl", "list-units", "--state=running", "--type=service", "--no-legend", "--plain", "--no-pager")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "dbus.service", "systemd-journald.service":
		default:
			t.Errorf("unexpected running service in sandbox: %s", line)
		}
	}
}

// cgroupDirsNamed finds directories of that name anywhere in the host's
// cgroup hierarchies.
func cgroupDirsNamed(name string) []string {
	var found []string
	_ = filepath.WalkDir(cgroupRoot, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == name {
			found = append(found, p)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

// lifecycle is what TestLifecycle prepares on the host before the first
// boot.
type lifecycle struct {
	stateDir string // the caller's state directory, reused by the reboot
	rootfs   string // a busybox rootfs
	hostFile string // a file under the host's /tmp, bound in
	hostname string // the host's name before the boot
}

// newLifecycle makes the state directory, the rootfs and the file to bind.
func newLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	l := &lifecycle{
		stateDir: TempDir(t, "cove-sandbox-test-state-"),
		rootfs:   TempDir(t, "cove-sandbox-test-rootfs-"),
		hostFile: filepath.Join(t.TempDir(), "bound.txt"), // under the host's /tmp
	}
	if err := Rootfs(l.rootfs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.hostFile, []byte("bound\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.hostname, _ = os.Hostname()
	return l
}

// options are the first boot's: /etc overlaid, a file and a directory
// bound from the host's /tmp, the caller's state directory.
func (l *lifecycle) options() Options {
	return Options{
		Overlays: []string{"/etc"},
		Binds: map[string]string{
			"/etc/cove-test-bind/file": l.hostFile,
			"/run/cove-test-bind":      filepath.Dir(l.hostFile),
		},
		StateDir: l.stateDir,
	}
}

func TestLifecycle(t *testing.T) {
	requireUsable(t)
	l := newLifecycle(t)
	s := bootForTest(t, l.options())
	t.Run("running", func(t *testing.T) { expectRunning(t, s, l.hostname) })
	t.Run("rootfs", func(t *testing.T) { expectRootfs(t, s, l.rootfs) })
	t.Run("memorymax", func(t *testing.T) { expectMemoryMax(t, s) })
	t.Run("overlay", func(t *testing.T) { expectOverlay(t, s) })
	t.Run("binds", func(t *testing.T) { expectBinds(t, s, l.hostFile) })
	t.Run("state-dir-locked", func(t *testing.T) { expectStateDirLocked(t, l.stateDir) })
	expectShutdown(t, s)
	expectReboot(t, l.stateDir)
}

// expectRunning checks that the system is up, runs only the base services
// and left the host's name alone.
func expectRunning(t *testing.T, s *Sandbox, hostname string) {
	if got := strings.TrimSpace(run(t, s, "systemctl", "is-system-running")); got != "running" {
		t.Errorf("is-system-running = %q", got)
	}
	checkOnlyBaseServices(t, s)
	if h, _ := os.Hostname(); h != hostname {
		t.Errorf("host name changed from %q to %q", hostname, h)
	}
}

// expectRootfs runs transient units in the rootfs.
func expectRootfs(t *testing.T, s *Sandbox, rootfs string) {
	run(t, s, "systemd-run", "--wait", "--quiet", "-p", "RootDirectory="+rootfs, "-p", "PrivateNetwork=yes", "/bin/true")
	out := run(t, s, "systemd-run", "--wait", "--quiet", "--pipe", "-p", "RootDirectory="+rootfs, "/bin/cat", "/etc/hostname")
	if out != "cove-test\n" {
		t.Errorf("hostname file in rootfs = %q", out)
	}
}

// expectMemoryMax checks that a unit's MemoryMax= reaches the v1 memory
// controller, seen from the host and from inside.
func expectMemoryMax(t *testing.T, s *Sandbox) {
	const unit = "cove-sandbox-test-mem.service"
	run(t, s, "systemd-run", "--quiet", "--unit="+unit, "-p", "MemoryMax=64M", "/bin/sleep", "60")
	defer run(t, s, "systemctl", "stop", unit)
	hostFile := filepath.Join(s.CgroupDirs()["memory"], "system.slice", unit, "memory.limit_in_bytes")
	data, err := os.ReadFile(hostFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != "67108864" {
		t.Errorf("%s = %s", hostFile, got)
	}
	inside := strings.TrimSpace(run(t, s, "cat", "/sys/fs/cgroup/memory/system.slice/"+unit+"/memory.limit_in_bytes"))
	if inside != "67108864" {
		t.Errorf("inside memory.limit_in_bytes = %s", inside)
	}
}

// expectOverlay checks that writes to an overlaid directory land in its
// upper directory (HostPath), not on the host.
func expectOverlay(t *testing.T, s *Sandbox) {
	run(t, s, "sh", "-c", "echo hi > /etc/cove-test-x")
	data, err := os.ReadFile(s.HostPath("/etc/cove-test-x"))
	if err != nil || string(data) != "hi\n" {
		t.Errorf("HostPath file: %q, %v", data, err)
	}
	if _, err := os.Lstat("/etc/cove-test-x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file written inside appeared on the host: %v", err)
	}
	if p := s.HostPath("/var/lib/x"); p != "" {
		t.Errorf("HostPath outside overlays = %q", p)
	}
}

// expectBinds checks the bound file and directory, and that the host's
// /tmp stays invisible inside.
func expectBinds(t *testing.T, s *Sandbox, hostFile string) {
	if out := run(t, s, "cat", "/etc/cove-test-bind/file"); out != "bound\n" {
		t.Errorf("bound file = %q", out)
	}
	if out := run(t, s, "cat", "/run/cove-test-bind/bound.txt"); out != "bound\n" {
		t.Errorf("bound dir file = %q", out)
	}
	if _, err := os.Lstat("/etc/cove-test-bind"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bind target appeared on the host: %v", err)
	}
	if _, _, code, _ := s.Run(context.Background(), "test", "-e", hostFile); code == 0 {
		t.Errorf("host /tmp file %s visible inside", hostFile)
	}
}

// expectStateDirLocked checks that a second Boot on a state directory in
// use fails.
func expectStateDirLocked(t *testing.T, stateDir string) {
	if s2, err := Boot(context.Background(), Options{StateDir: stateDir, Overlays: []string{"/etc"}}); err == nil {
		s2.Shutdown()
		t.Fatal("second Boot on a state dir in use succeeded")
	}
}

// expectShutdown shuts s down twice and checks that systemd and the
// sandbox's cgroups are gone and that Run fails.
func expectShutdown(t *testing.T, s *Sandbox) {
	t.Helper()
	pid, name := s.PID(), s.CgroupName()
	start := time.Now()
	if err := s.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("Shutdown took %v", time.Since(start).Round(time.Millisecond))
	if err := s.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("systemd pid %d still exists after Shutdown (kill 0: %v)", pid, err)
	}
	if left := cgroupDirsNamed(name); len(left) > 0 {
		t.Errorf("cgroups left after Shutdown: %v", left)
	}
	if _, _, _, err := s.Run(context.Background(), "true"); err == nil {
		t.Errorf("Run after Shutdown succeeded")
	}
}

// expectReboot boots again over the same state directory, this time with
// multi-user.target: the overlay's file is back, only the base services
// run, and Shutdown leaves the caller's state directory.
func expectReboot(t *testing.T, stateDir string) {
	t.Helper()
	s := bootForTest(t, Options{Overlays: []string{"/etc"}, StateDir: stateDir, Wants: []string{"multi-user.target"}})
	if out := run(t, s, "cat", "/etc/cove-test-x"); out != "hi\n" {
		t.Errorf("after reboot /etc/cove-test-x = %q", out)
	}
	if got := strings.TrimSpace(run(t, s, "systemctl", "is-active", "multi-user.target")); got != "active" {
		t.Errorf("multi-user.target is %s", got)
	}
	checkOnlyBaseServices(t, s)
	if err := s.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := os.Stat(stateDir); err != nil {
		t.Errorf("caller's state dir removed: %v", err)
	}
}

func TestOwnStateDir(t *testing.T) {
	requireUsable(t)
	s := bootForTest(t, Options{Overlays: []string{"/var/lib"}})
	dir := s.StateDir()
	if !strings.HasPrefix(dir, "/var/tmp/") {
		t.Errorf("state dir %s not under /var/tmp", dir)
	}
	run(t, s, "mkdir", "-p", "/var/lib/cove-test/a")
	if fi, err := os.Stat(s.HostPath("/var/lib/cove-test/a")); err != nil || !fi.IsDir() {
		t.Errorf("HostPath dir: %v", err)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("own state dir %s not removed: %v", dir, err)
	}
}

func TestBadOptions(t *testing.T) {
	requireUsable(t)
	for name, opts := range map[string]Options{
		"missing overlay":   {Overlays: []string{"/nonexistent-cove-dir"}},
		"nested overlays":   {Overlays: []string{"/etc", "/etc/systemd"}},
		"state dir in /tmp": {StateDir: filepath.Join(os.TempDir(), "x")},
		"bind target": {Binds: map[string]string{
			"/nonexistent-cove-dir/x": "/etc/hostname"}},
	} {
		if s, err := Boot(context.Background(), opts); err == nil {
			s.Shutdown()
			t.Errorf("%s: Boot succeeded", name)
		}
	}
}

func TestInnerStepFails(t *testing.T) {
	requireUsable(t)
	// A directory cannot be bind-mounted over a file: the inner step fails
	// before systemd starts, and Boot reports it with the console output.
	_, err := Boot(context.Background(), Options{Binds: map[string]string{"/etc/hostname": "/var/tmp"}})
	if err == nil {
		t.Fatal("Boot succeeded")
	}
	if !strings.Contains(err.Error(), "console output") {
		t.Errorf("error lacks the console output: %v", err)
	}
	t.Logf("Boot error (expected): %v", err)
}

func TestRootfs(t *testing.T) {
	if _, err := os.Stat(hostBusybox); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("busybox-static not installed")
		}
		t.Skip("busybox-static not installed")
	}
	dir := TempDir(t, "cove-rootfs-test-")
	if err := Rootfs(dir); err != nil {
		t.Fatal(err)
	}
	if err := checkStatic(filepath.Join(dir, "bin/busybox")); err != nil {
		t.Error(err)
	}
	for _, p := range []string{"bin/sh", "bin/true", "usr/bin/env", "etc/passwd", "etc/group", "etc/hostname", "proc", "dev", "home/user"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	passwd, _ := os.ReadFile(filepath.Join(dir, "etc/passwd"))
	if !strings.Contains(string(passwd), "user:x:1000:1000:") {
		t.Errorf("passwd: %s", passwd)
	}
	// A second call reuses the rootfs.
	before, _ := os.Stat(filepath.Join(dir, "bin/busybox"))
	if err := Rootfs(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(dir, "bin/busybox"))
	if !os.SameFile(before, after) {
		t.Error("second Rootfs call rebuilt the rootfs")
	}
}
