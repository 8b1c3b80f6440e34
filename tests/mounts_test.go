package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountFixture is a private copy of the rootfs (the tests change it) and
// host files to mount.
type mountFixture struct {
	rootfs  string // the copy
	data    string // a directory holding "hello"
	file    string // a file
	outside string // a host directory a symlink in the rootfs points to
}

// newMountFixture builds the fixture under dir.
func newMountFixture(t *testing.T, dir string) mountFixture {
	t.Helper()
	f := mountFixture{
		rootfs:  filepath.Join(dir, "rootfs"),
		data:    filepath.Join(dir, "data"),
		file:    filepath.Join(dir, "app.conf"),
		outside: filepath.Join(dir, "outside"),
	}
	os.RemoveAll(dir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", rootfs, f.rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy the rootfs: %v: %s", err, out)
	}
	for _, d := range []string{f.data, f.outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{filepath.Join(f.data, "hello"): "hello from the host\n", f.file: "setting = 1\n"}
	for p, text := range files {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink in the rootfs to a host path: inside the container it means
	// the same path in the rootfs, and so must a mount under it.
	if err := os.Symlink(f.outside, filepath.Join(f.rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(f.rootfs, f.outside), 0o755); err != nil {
		t.Fatal(err)
	}
	// Like /etc/localtime: a file mount on an absolute symlink lands on its
	// target inside the rootfs. And a link to the root, and a FIFO.
	for _, l := range [][2]string{{"/etc/real.conf", "etc/link.conf"}, {"/", "rootlink"}} {
		if err := os.Symlink(l[0], filepath.Join(f.rootfs, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.rootfs, "etc/real.conf"), []byte("from the rootfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(f.rootfs, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMounts: bind mounts (read-write, read-only, a single file), a tmpfs
// and a read-only root, as the payload sees them and as the host sees its
// writes; a symlink in the rootfs cannot send a mount outside it.
func TestMounts(t *testing.T) {
	env.Need(t)
	f := newMountFixture(t, filepath.Join(workDir, "mounts"))
	script := strings.Join([]string{
		"cat /data/hello",
		"echo written > /data/new && echo rw-ok",
		"echo x > /data-ro/x 2>/dev/null || echo ro-refused",
		"cat /etc/app.conf",
		"echo x > /rootfile 2>/dev/null || echo root-refused",
		"echo x > /tmp/x && echo tmp-ok",
		`grep -o " /tmp tmpfs [^ ]*" /proc/mounts`,
		"cat /escape/sub/hello",
		"cat /etc/real.conf",
	}, "; ")
	path := containerSpec(t, filepath.Join(workDir, "mounts-specs"), "mounts", f.rootfs, shCommand(script), fmt.Sprintf(`read_only = true
[[container.mount]]
source = %[1]q
target = "/data"
[[container.mount]]
source = %[1]q
target = "/data-ro"
read_only = true
[[container.mount]]
source = %[2]q
target = "/etc/app.conf"
read_only = true
[[container.mount]]
type = "tmpfs"
target = "/tmp"
size = "1M"
[[container.mount]]
source = %[1]q
target = "/escape/sub"
[[container.mount]]
source = %[2]q
target = "/etc/link.conf"
`, f.data, f.file))
	r := cove(t, "run", "--rm", path)
	want := []string{"hello from the host", "rw-ok", "ro-refused", "setting = 1", "root-refused", "tmp-ok",
		" /tmp tmpfs rw,nosuid,nodev", "hello from the host", "setting = 1"}
	if got := strings.Split(strings.TrimSpace(r.Stdout), "\n"); r.Code != 0 || len(got) != len(want) {
		t.Fatalf("cove run: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	} else {
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("line %d: %q, want %q", i+1, got[i], want[i])
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(f.data, "new")); err != nil || string(b) != "written\n" {
		t.Errorf("the payload's write to the bind mount: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(f.rootfs, "rootfile")); err == nil {
		t.Error("the payload wrote into the read-only root")
	}
	if ents, _ := os.ReadDir(f.outside); len(ents) != 0 {
		t.Errorf("the mount point was created outside the rootfs, in %s: %v", f.outside, ents)
	}
	if _, err := os.Stat(filepath.Join(f.rootfs, f.outside, "sub")); err != nil {
		t.Errorf("the symlinked mount point is not inside the rootfs: %v", err)
	}
}

// TestMountFlags: cove run's --volume, --tmpfs and --read-only, and a
// missing source reported with its position before anything starts.
func TestMountFlags(t *testing.T) {
	env.Need(t)
	f := newMountFixture(t, filepath.Join(workDir, "mountflags"))
	r := cove(t, "run", "--rm", "--rootfs", f.rootfs, "--read-only", "-v", f.data+":/data:ro",
		"--volume", f.file+":/app.conf", "--tmpfs", "/scratch:size=1M", "--",
		"/bin/sh", "-c", `cat /data/hello /app.conf; touch /data/x 2>/dev/null || echo ro-refused; touch /x 2>/dev/null || echo root-refused; grep -o " /scratch tmpfs [^ ]*size=1024k" /proc/mounts`)
	if want := "hello from the host\nsetting = 1\nro-refused\nroot-refused\n /scratch tmpfs rw,nosuid,nodev,relatime,size=1024k\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("cove run with mount flags: exit %d\n%q\nwant %q\n%s", r.Code, r.Stdout, want, r.Stderr)
	}
	for _, tc := range []struct{ volume, msg string }{
		{f.data + ":/rootlink", "mount point /rootlink is the container's root"},
		{f.file + ":/fifo", "mount point /fifo is not a regular file"},
		{f.file + ":/escape", "mount point /escape is not a regular file"},
		{f.data + ":/etc/real.conf", "mount point /etc/real.conf: cannot create subdirectories"},
	} {
		r := cove(t, "run", "--rm", "--rootfs", f.rootfs, "-v", tc.volume, "--", "/bin/true")
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.msg) {
			t.Errorf("cove run -v %s: exit %d, want an error with %q:\n%s", tc.volume, r.Code, tc.msg, r.Stderr)
		}
	}
	for _, args := range [][]string{
		{"-v", "_bad:/data"}, {"-v", "/a:/b:zz"}, {"--tmpfs", "/t:exec"}, {"-v", f.data + ":/proc/x"},
	} {
		r := cove(t, append(append([]string{"run", "--rm", "--rootfs", f.rootfs}, args...), "--", "/bin/true")...)
		if r.Code != 2 || r.Stderr == "" {
			t.Errorf("cove run %q: exit %d, stderr %q; want 2 and a message", args, r.Code, r.Stderr)
		}
	}
	missing := containerSpec(t, filepath.Join(workDir, "mounts-specs"), "nosource", f.rootfs, `["/bin/true"]`, `[[container.mount]]
source = "/no/such/dir"
target = "/data"
`)
	r = cove(t, "run", "--rm", missing)
	if r.Code != 2 || !strings.Contains(r.Stderr, missing+":7:1: container.mount[1].source: /no/such/dir does not exist") {
		t.Errorf("missing source: exit %d: %s", r.Code, r.Stderr)
	}
	if st := show(t, "cove-nosource.service", "LoadState"); st != "not-found" {
		t.Errorf("cove-nosource.service is %s after a refused run", st)
	}
}

// TestHostDevicesRefused: a payload with CAP_MKNOD can neither create
// nor open a node for a host disk (the unit's device cgroup is closed);
// the container's own /dev works.
func TestHostDevicesRefused(t *testing.T) {
	env.Need(t)
	r := inside(t, "sh", "-c", "awk 'NR > 2 && $2 == 0 { print $1; exit }' /proc/partitions")
	major := strings.TrimSpace(r.Stdout)
	if major == "" {
		t.Skip("no block device in /proc/partitions")
	}
	r = cove(t, "run", "--rm", "--rootfs", rootfs, "--tmpfs", "/scratch", "--", "/bin/sh", "-c",
		"mknod /scratch/disk b "+major+" 0 && echo created; head -c 1 /scratch/disk >/dev/null && echo opened; echo x > /dev/null && head -c 1 /dev/urandom >/dev/null && echo dev-ok")
	if strings.Contains(r.Stdout, "opened") || !strings.Contains(r.Stdout, "dev-ok") || !strings.Contains(r.Stderr, "Operation not permitted") {
		t.Errorf("a host disk's node in the container: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestVolatile: with volatile = true the payload writes to its root, also
// over files of the rootfs and through mount points it needs, and none of
// it reaches the rootfs; the next start sees the rootfs as it was.
func TestVolatile(t *testing.T) {
	env.Need(t)
	f := newMountFixture(t, filepath.Join(workDir, "volatile"))
	script := "echo x > /new && cat /new; echo changed > /etc/real.conf && cat /etc/real.conf; cat /vdata/hello; stat -c %a /"
	path := containerSpec(t, filepath.Join(workDir, "mounts-specs"), "vol", f.rootfs, shCommand(script), fmt.Sprintf(`volatile = true
[[container.mount]]
source = %q
target = "/vdata"
`, f.data))
	mode, err := os.Stat(f.rootfs)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("x\nchanged\nhello from the host\n%o\n", mode.Mode().Perm())
	for i := 0; i < 2; i++ { // the second run starts from the untouched rootfs
		if r := cove(t, "run", "--rm", path); r.Code != 0 || r.Stdout != want {
			t.Fatalf("run %d: exit %d %q, want %q\n%s", i+1, r.Code, r.Stdout, want, r.Stderr)
		}
	}
	for _, p := range []string{"new", "vdata"} {
		if _, err := os.Lstat(filepath.Join(f.rootfs, p)); err == nil {
			t.Errorf("/%s reached the rootfs", p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(f.rootfs, "etc/real.conf")); string(b) != "from the rootfs\n" {
		t.Errorf("the rootfs's /etc/real.conf is %q after the runs", b)
	}
	r := cove(t, "run", "--rm", "--rootfs", f.rootfs, "--volatile", "--read-only", "--", "/bin/true")
	if r.Code != 2 || !strings.Contains(r.Stderr, "read_only and volatile exclude each other") {
		t.Errorf("--volatile --read-only: exit %d: %s", r.Code, r.Stderr)
	}
}

// TestOwnMountsStayInside: cove's own mount points follow symlinks in the
// rootfs only inside it: a rootfs whose /run points at a host path gets
// its notify directory in the rootfs, not on the host.
func TestOwnMountsStayInside(t *testing.T) {
	env.Need(t)
	f := newMountFixture(t, filepath.Join(workDir, "ownmounts"))
	run := filepath.Join(f.rootfs, "run")
	if err := os.RemoveAll(run); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.outside, run); err != nil {
		t.Fatal(err)
	}
	path := containerSpec(t, filepath.Join(workDir, "mounts-specs"), "runlink", f.rootfs, shCommand("notify-send READY=1; echo $NOTIFY_SOCKET; sleep 1"), "[service]\nready = \"notify\"\n")
	if r := cove(t, "run", "--rm", path); r.Code != 0 || r.Stdout != "/run/notify/notify.sock\n" {
		t.Errorf("cove run: exit %d %q\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if ents, _ := os.ReadDir(f.outside); len(ents) != 0 {
		t.Errorf("cove created %v in the host directory the rootfs's /run points to", ents)
	}
	if _, err := os.Stat(filepath.Join(f.rootfs, f.outside, "notify")); err != nil {
		t.Errorf("the notify directory is not where /run/notify resolves inside the rootfs: %v", err)
	}
}
