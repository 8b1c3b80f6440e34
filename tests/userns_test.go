package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// usernsRecord is the record of workload name's user namespace IDs in the
// sandbox ("" if none).
func usernsRecord(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(inside(t, "cat", "/var/lib/cove/userns/"+name).Stdout)
}

// hostRange reads the uid_map and gid_map of workload name's main process
// from the host side and returns the host ID its uid 0 maps to; it fails
// t unless both are one 65536-ID block at or above 524288 (0x80000).
func hostRange(t *testing.T, name string) int {
	t.Helper()
	pid := show(t, "cove-"+name+".service", "MainPID")
	var base int
	for _, m := range []string{"uid_map", "gid_map"} {
		f := strings.Fields(inside(t, "cat", "/proc/"+pid+"/"+m).Stdout)
		if len(f) != 3 || f[0] != "0" || f[2] != "65536" {
			t.Fatalf("%s of %s (pid %s) is %q, want one line 0 BASE 65536", m, name, pid, f)
		}
		b, _ := strconv.Atoi(f[1])
		if b < 0x80000 || b%0x10000 != 0 {
			t.Errorf("%s of %s maps 0 to %d, want a 64K-aligned host ID ≥ 524288", m, name, b)
		}
		base = b
	}
	status := inside(t, "grep", "-E", "^(Uid|Gid):", "/proc/"+pid+"/status").Stdout
	want := fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\n", base, base, base, base, base, base, base, base)
	if status != want {
		t.Errorf("the host sees %s's payload as\n%s, want\n%s", name, status, want)
	}
	if rec := usernsRecord(t, name); rec != fmt.Sprintf("%d:65536", base) {
		t.Errorf("the record of %s is %q, want %d:65536", name, rec, base)
	}
	return base
}

// TestUserNSRanges: with --userns auto the payload's root is a host ID
// of its own block: two containers get disjoint blocks, also when started
// at the same time; a restart keeps the block, cove rm frees it; a range
// overlapping another workload's is refused.
func TestUserNSRanges(t *testing.T) {
	env.Need(t)
	for _, n := range []string{"uns-a", "uns-b", "uns-c", "uns-d"} {
		cleanupWorkload(t, n)
	}
	mustCove(t, runArgs("-d", "--name", "uns-a", "--userns", "auto", "--restart", "always", "--", "/bin/sleep", "1000")...)
	// Two at once: the allocation lock gives them two blocks.
	run := func(n string) string {
		return fmt.Sprintf("%s run --rootfs %s --stop-timeout 1s -d --name %s --userns auto -- /bin/sleep 1000", coveBin, rootfs, n)
	}
	if r := inside(t, "sh", "-c", run("uns-b")+" & "+run("uns-c")+" & wait"); r.Code != 0 {
		t.Fatalf("two concurrent runs: %s %s", r.Stdout, r.Stderr)
	}
	a, b, c := hostRange(t, "uns-a"), hostRange(t, "uns-b"), hostRange(t, "uns-c")
	if a == b || b == c || a == c {
		t.Errorf("blocks not disjoint: %d %d %d", a, b, c)
	}
	if st := mustCove(t, "status", "uns-b"); !strings.Contains(st, fmt.Sprintf("User namespace: 0:%d:65536", b)) {
		t.Errorf("cove status uns-b does not show its IDs 0:%d:65536:\n%s", b, st)
	}
	mustCove(t, "restart", "uns-a")
	if again := hostRange(t, "uns-a"); again != a {
		t.Errorf("after a restart uns-a maps 0 to %d, before to %d", again, a)
	}
	r := cove(t, runArgs("-d", "--name", "uns-d", "--userns", fmt.Sprintf("%d:1000", b+5), "--", "/bin/sleep", "1000")...)
	if r.Code == 0 || !strings.Contains(r.Stderr, "overlaps the IDs of workload uns-b") {
		t.Errorf("a range in uns-b's: exit %d: %s", r.Code, r.Stderr)
	}
	mustCove(t, "rm", "uns-a")
	if rec := usernsRecord(t, "uns-a"); rec != "" {
		t.Errorf("cove rm left uns-a's record %q", rec)
	}
}

// TestUserNSFiles: in a user namespace, the image's files keep their
// owners inside while a file the payload writes to its writable layer
// belongs to its host block; an idmapped bind mount shows host owners
// inside and writes as them; without idmap a host root-only file is
// unreadable even to the container's root, and host root's files belong
// to nobody.
func TestUserNSFiles(t *testing.T) {
	env.Need(t)
	ref, _ := testImage(t)
	mustCove(t, "pull", ref)
	dir := filepath.Join(workDir, "userns-files")
	shared := filepath.Join(dir, "shared")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shared, "theirs"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(shared, "theirs"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("host only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := declaredText(t, filepath.Join(dir, "specs"), "unsfiles", fmt.Sprintf(`version = 1
kind = "container"
[container]
image = %q
user = "0:0"
command = ["/bin/sh", "-c", "echo hi > /made; touch /idm/mine; exec sleep 1000"]
[[container.mount]]
source = %q
target = "/idm"
idmap = true
[[container.mount]]
source = %q
target = "/plain"
[[container.mount]]
source = %q
target = "/secret"
[security]
userns = "auto"
[service]
stop_timeout = "1s"
`, ref, shared, shared, secret))
	mustCove(t, "apply", spec)
	t.Cleanup(func() { cove(t, "apply", "--prune", filepath.Join(workDir, "empty")) })
	base := hostRange(t, "unsfiles")
	eventually(t, 10*time.Second, "the payload's files", func() bool {
		_, err := os.Stat(filepath.Join(shared, "mine"))
		return err == nil
	})
	owner := func(p string) string {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		return fmt.Sprintf("%d:%d", sys.Uid, sys.Gid)
	}
	if got, want := owner(filepath.Join(workDir, "containers", "unsfiles", "upper", "made")), fmt.Sprintf("%d:%d", base, base); got != want {
		t.Errorf("the host sees /made owned by %s, want %s", got, want)
	}
	if got := owner(filepath.Join(shared, "mine")); got != "0:0" {
		t.Errorf("the host sees /idm/mine owned by %s, want 0:0 (idmapped: container root writes as host root's ID)", got)
	}
	// Seen from inside, as the container's root (nsenter joins the user
	// namespace, which cove exec cannot: see isolate.Enter).
	pid := show(t, "cove-unsfiles.service", "MainPID")
	r := inside(t, "nsenter", "-t", pid, "-U", "-m", "-r", "sh", "-c",
		`stat -c '%n %u:%g' /made /etc/passwd /idm/theirs /idm/mine /plain/theirs; cat /secret || echo SECRET-REFUSED`)
	for _, want := range []string{"/made 0:0", "/etc/passwd 0:0", "/idm/theirs 1000:1000", "/idm/mine 0:0", "/plain/theirs 65534:65534", "SECRET-REFUSED"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("inside: no %q in\n%s%s", want, r.Stdout, r.Stderr)
		}
	}
	if strings.Contains(r.Stdout, "host only") {
		t.Errorf("the container's root read a host root-only file:\n%s", r.Stdout)
	}
}

// TestUserNSEscapes re-runs the escape attempts of TestRestrictions and
// TestHostDevicesRefused in a user namespace: nothing more succeeds.
func TestUserNSEscapes(t *testing.T) {
	env.Need(t)
	major := strings.TrimSpace(inside(t, "sh", "-c", "awk 'NR > 2 && $2 == 0 { print $1; exit }' /proc/partitions").Stdout)
	script := `mount -t tmpfs x /tmp && echo MOUNTED; touch /sys/x 2>/dev/null && echo SYSWRITE; ` +
		`echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo SYSCTL; unshare -m true 2>/dev/null && echo UNSHARED; ` +
		`[ -n "` + major + `" ] && mknod /scratch/disk b ` + major + ` 0 2>/dev/null && head -c 1 /scratch/disk >/dev/null 2>&1 && echo DISK; ` +
		`echo x > /dev/null && head -c 1 /dev/urandom >/dev/null && echo dev-ok; grep CapBnd /proc/self/status`
	r := cove(t, runArgs("--rm", "--userns", "auto", "--tmpfs", "/scratch", "--", "/bin/sh", "-c", script)...)
	for _, bad := range []string{"MOUNTED", "SYSWRITE", "SYSCTL", "UNSHARED", "DISK"} {
		if strings.Contains(r.Stdout, bad) {
			t.Errorf("in a user namespace the container could %s:\n%s", bad, r.Stdout)
		}
	}
	if !strings.Contains(r.Stdout, "dev-ok") || !strings.Contains(r.Stdout, "CapBnd:\t00000000a80425fb") {
		t.Errorf("exit %d: /dev or the bounding set is not as without a user namespace:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestUserNSVolatile: a volatile root in a user namespace takes writes
// (in a tmpfs the launcher made) with the root directory the container's
// root's, and leaves the rootfs untouched.
func TestUserNSVolatile(t *testing.T) {
	env.Need(t)
	r := cove(t, runArgs("--rm", "--userns", "auto", "--volatile", "--", "/bin/sh", "-c", "echo x > /uns-new && cat /uns-new && stat -c %u:%g /")...)
	if r.Code != 0 || r.Stdout != "x\n0:0\n" {
		t.Errorf("exit %d: %q, want \"x\\n0:0\\n\"\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "uns-new")); err == nil {
		t.Error("a volatile container's write reached the rootfs")
	}
}
