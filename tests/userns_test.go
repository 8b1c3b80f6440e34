package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
	// Seen from inside, as the container's root (cove exec joins its user
	// namespace).
	r := cove(t, "exec", "unsfiles", "--", "sh", "-c",
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
// TestHostDevicesRefused in a user namespace, and the calls of the
// escape-probe fixture (bpf, keyrings, ptrace, modules, reboot,
// open_by_handle_at): nothing more succeeds.
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
	for call, errno := range escapeProbe(t, "--userns", "auto") {
		if errno != "EPERM" {
			t.Errorf("in a user namespace %s gave %s, want EPERM (the seccomp filter)", call, errno)
		}
	}
	// The user namespace alone stops what needs a capability over the
	// host: with no seccomp filter and CAP_DAC_READ_SEARCH, open_by_handle_at
	// (the "shocker" escape) is refused in a user namespace; without one
	// the kernel looks the handle up (a bogus one: ESTALE).
	more := []string{"--seccomp", "unconfined", "--cap-add", "dac_read_search"}
	if got := escapeProbe(t, append(more, "--userns", "auto")...)["open_by_handle_at"]; got != "EPERM" {
		t.Errorf("open_by_handle_at with CAP_DAC_READ_SEARCH and no seccomp filter, in a user namespace: %s, want EPERM", got)
	}
	if got := escapeProbe(t, append(more, "--userns", "host")...)["open_by_handle_at"]; got != "ESTALE" {
		t.Errorf("open_by_handle_at with CAP_DAC_READ_SEARCH and no seccomp filter, without a user namespace: %s, want ESTALE (the control)", got)
	}
}

// escapeProbe runs the escape-probe fixture as root in a container with
// the cove run flags more and returns each call's answer ("ALLOWED" or
// an errno name).
func escapeProbe(t *testing.T, more ...string) map[string]string {
	t.Helper()
	r := cove(t, runArgs(append(more, "--rm", "-u", "0", "--", "/bin/escape-probe")...)...)
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if call, answer, ok := strings.Cut(l, " "); ok {
			got[call] = answer
		}
	}
	if r.Code != 0 || len(got) != 8 {
		t.Fatalf("escape-probe %q: exit %d, want 8 answers:\n%s%s", more, r.Code, r.Stdout, r.Stderr)
	}
	return got
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

// TestUserNSExec: in a container with a user namespace, cove exec runs in
// that namespace, with TestExec's view otherwise (checkExec): as the
// container's users, with root's capabilities there (a chown works and
// lands in the container's host block), and a terminal of cove exec -it
// belongs to the command's user; a health probe runs there too.
func TestUserNSExec(t *testing.T) {
	env.Need(t)
	checkExec(t, "uns-exec", "--userns", "auto", "--tmpfs", "/scratch")
	r := cove(t, "exec", "-u", "0", "uns-exec", "--", "/bin/sh", "-c",
		`readlink /proc/self/ns/user; cat /proc/self/uid_map; touch /scratch/f && chown 1000:1000 /scratch/f && stat -c %u:%g /scratch/f`)
	pid := show(t, "cove-uns-exec.service", "MainPID")
	lines := strings.Split(r.Stdout, "\n")
	payloadNS := inside(t, "readlink", "/proc/"+pid+"/ns/user").Stdout
	if r.Code != 0 || len(lines) < 3 || lines[0]+"\n" != payloadNS || lines[2] != "1000:1000" {
		t.Fatalf("cove exec -u 0 in a user namespace: exit %d, want the payload's user namespace %s, the map, 1000:1000:\n%s%s", r.Code, payloadNS, r.Stdout, r.Stderr)
	}
	m := strings.Fields(lines[1])
	base, _ := strconv.Atoi(m[1])
	if len(m) != 3 || m[0] != "0" || base < 0x80000 || m[2] != "65536" {
		t.Errorf("the exec'd command's uid_map is %q, want 0 BASE 65536 with BASE ≥ 524288", lines[1])
	}
	if got := inside(t, "stat", "-c", "%u:%g", "/proc/"+pid+"/root/scratch/f").Stdout; got != fmt.Sprintf("%d:%d\n", base+1000, base+1000) {
		t.Errorf("the host sees the file chowned to 1000:1000 inside as %q, want %d:%d", got, base+1000, base+1000)
	}
	term := onTerminal(t, 20, 70, "exec", "-it", "uns-exec", "--", "/bin/sh")
	shellSeesTerminal(t, term, 20, 70)
	if out := term.run(`echo "as $(id -u) on $(stat -c %u "$(tty)")"`); !strings.Contains(out, "\nas 1000 on 1000\n") {
		t.Errorf("cove exec -it in a user namespace: want the shell and its terminal 1000's:\n%s", out)
	}
	term.typeKeys("exit 5\r")
	if code, screen := term.wait(30 * time.Second); code != 5 {
		t.Errorf("cove exec -it after exit 5: exit status %d:\n%s", code, screen)
	}

	runWithHealth(t, "uns-probe", `command = ["/bin/sh", "-c", "[ \"$(id -u)\" = 0 ] && [ \"$(readlink /proc/self/ns/user)\" = \"$(readlink /proc/1/ns/user)\" ] && grep -q '^Seccomp:[[:space:]]*2' /proc/self/status"]
interval = "1s"
retries = 1
[security]
userns = "auto"
`)
	eventually(t, 20*time.Second, "a probe in the user namespace to pass", func() bool {
		return strings.Contains(mustCove(t, "status", "uns-probe"), "healthy")
	})
	if st := mustCove(t, "status", "uns-probe"); strings.Contains(st, "unhealthy") {
		t.Errorf("the probe did not run as the container's root in its user namespace:\n%s", st)
	}
}

// TestUserNSVolume: a container from an image (not on the host's network)
// is in a user namespace by default, and a --rm run frees its IDs when it
// ends. A named volume in a
// container with a user namespace is mounted idmapped: on its first use it gets the image's content with
// the owners the image gives them (not shifted into the container's host
// block), files the container's users write are theirs on disk (uid 1000
// writes host uid 1000), and a container without a user namespace sees
// the same owners as one with.
func TestUserNSVolume(t *testing.T) {
	env.Need(t)
	ref, _ := testImage(t)
	mustCove(t, "pull", ref)
	t.Cleanup(func() { cove(t, "volume", "rm", "unsvol") })
	ls := "stat -c '%n %u:%g %a' /www /www/index.html"
	r := cove(t, "run", "--rm", "--name", "uns-vol", "--network", "none", "-u", "0", "-v", "unsvol:/www", ref, "sh", "-c", ls+"; echo r > /www/byroot; cat /proc/self/uid_map")
	if r.Code != 0 || !strings.Contains(r.Stdout, "/www 0:0 777\n/www/index.html 0:0 644\n") || !strings.Contains(r.Stdout, " 524288 ") && !regexp.MustCompile(`0\s+[1-9]\d{5,}\s+65536`).MatchString(r.Stdout) {
		t.Fatalf("a new volume in a user namespace: exit %d, want the image's /www as the image has it and a user namespace:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	if r := cove(t, "run", "--rm", "--userns", "auto", "-u", "1000:1000", "-v", "unsvol:/www", ref, "sh", "-c", "echo u > /www/by1000"); r.Code != 0 {
		t.Fatalf("uid 1000 writing to the volume: exit %d: %s", r.Code, r.Stderr)
	}
	data := "/var/lib/cove/volumes/unsvol/_data/"
	got := inside(t, "stat", "-c", "%n %u:%g", data+"index.html", data+"byroot", data+"by1000").Stdout
	if want := data + "index.html 0:0\n" + data + "byroot 0:0\n" + data + "by1000 1000:1000\n"; got != want {
		t.Errorf("on disk the volume has\n%swant\n%s", got, want)
	}
	r = cove(t, "run", "--rm", "--userns", "host", "-v", "unsvol:/www", ref, "stat", "-c", "%n %u:%g", "/www/byroot", "/www/by1000")
	if r.Stdout != "/www/byroot 0:0\n/www/by1000 1000:1000\n" {
		t.Errorf("without a user namespace the volume shows: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	runRecordGoes(t, ref)
}

// runRecordGoes: a --rm run records its IDs in its unit's runtime
// directory (cove status shows them), which systemd removes when the run
// ends, with no record left in /var/lib/cove/userns.
func runRecordGoes(t *testing.T, ref string) {
	cleanupWorkload(t, "uns-rm")
	mustCove(t, "run", "-d", "--rm", "--name", "uns-rm", "--network", "none", ref, "sleep", "1000")
	rec := strings.TrimSpace(inside(t, "cat", "/run/cove/userns/uns-rm/ids").Stdout)
	if !regexp.MustCompile(`^[1-9]\d+:65536$`).MatchString(rec) || !strings.Contains(mustCove(t, "status", "uns-rm"), "0:"+rec) {
		t.Fatalf("a --rm run's record in its runtime directory: %q, or cove status does not show it", rec)
	}
	mustCove(t, "stop", "uns-rm")
	eventually(t, 10*time.Second, "the run's runtime directory to go", func() bool {
		return inside(t, "test", "-e", "/run/cove/userns/uns-rm").Code != 0
	})
	if left := usernsRecord(t, "uns-rm"); left != "" {
		t.Errorf("a --rm run left a record in /var/lib/cove/userns: %q", left)
	}
}

// TestUserNSMachined: systemd-machined learns a container's IDs from its
// leader, the payload, whose uid_map cove wrote (systemd 252's
// RegisterMachine has no field for them): machinectl copy-to gives the
// file it copies into the container's root file system to the
// container's root (host uid BASE, 0 inside), as it does for nspawn's
// containers. (Into a file system the container mounted itself, a tmpfs,
// machined's copy fails with EOVERFLOW: host root owns nothing there.)
func TestUserNSMachined(t *testing.T) {
	env.Need(t)
	ref, _ := testImage(t)
	mustCove(t, "pull", ref)
	cleanupWorkload(t, "uns-mach")
	mustCove(t, "run", "-d", "--name", "uns-mach", "--network", "none", ref, "sleep", "1000") // a user namespace: the default
	src := filepath.Join(workDir, "machined-copy")
	if err := os.WriteFile(src, []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := inside(t, "machinectl", "copy-to", "uns-mach", src, "/copied"); r.Code != 0 {
		t.Fatalf("machinectl copy-to: exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	if m := strings.Fields(mustCove(t, "exec", "uns-mach", "--", "cat", "/proc/self/uid_map")); len(m) != 3 || m[1] == "0" {
		t.Fatalf("uns-mach is not in a user namespace of its own: uid_map %q", m)
	}
	if r := cove(t, "exec", "uns-mach", "--", "sh", "-c", "cat /copied; stat -c %u:%g /copied"); r.Stdout != "from the host\n0:0\n" {
		t.Errorf("the copied file inside: exit %d, %q %s; want its text and 0:0 (machined shifted it into the container's IDs)", r.Code, r.Stdout, r.Stderr)
	}
}

// TestUserNSDirectoryUsers: where nsswitch.conf names a source beyond the
// files (extrausers here, standing in for LDAP or sssd), auto skips a
// block whose first ID a user of that source has, as nspawn checks a
// block it picks.
func TestUserNSDirectoryUsers(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "uns-nss")
	mustCove(t, runArgs("-d", "--name", "uns-nss", "--userns", "auto", "--", "/bin/sleep", "1000")...)
	first := hostRange(t, "uns-nss")
	mustCove(t, "rm", "uns-nss") // its block is free again: the first free one
	t.Cleanup(func() {
		inside(t, "sh", "-c", "mv /etc/nsswitch.conf.cove-test /etc/nsswitch.conf; rm -rf /var/lib/extrausers")
	})
	script := fmt.Sprintf(`set -e
cp /etc/nsswitch.conf /etc/nsswitch.conf.cove-test
sed -i -e 's/^passwd:.*/passwd: files extrausers/' -e 's/^group:.*/group: files extrausers/' /etc/nsswitch.conf
mkdir -p /var/lib/extrausers
echo 'dirsvc:x:%[1]d:%[1]d::/:/bin/false' > /var/lib/extrausers/passwd
: > /var/lib/extrausers/group
getent passwd %[1]d`, first)
	if r := inside(t, "sh", "-c", script); r.Code != 0 || !strings.HasPrefix(r.Stdout, "dirsvc:") {
		t.Fatalf("a directory user at %d through libnss-extrausers: exit %d, %q %s", first, r.Code, r.Stdout, r.Stderr)
	}
	mustCove(t, runArgs("-d", "--name", "uns-nss", "--userns", "auto", "--", "/bin/sleep", "1000")...)
	if again := hostRange(t, "uns-nss"); again == first {
		t.Errorf("auto gave block %d, whose first ID NSS knows (dirsvc)", again)
	}
}

// TestUserNSIdmapRefused: an idmapped bind of a directory on a file
// system that cannot be idmapped (the sandbox's /var/lib, an overlayfs)
// fails the start with a message naming the mount and what idmapped
// mounts need; nothing keeps running.
func TestUserNSIdmapRefused(t *testing.T) {
	env.Need(t)
	if fs := strings.TrimSpace(inside(t, "findmnt", "-n", "-o", "FSTYPE", "-T", "/var/lib").Stdout); fs != "overlay" {
		t.Skipf("the sandbox's /var/lib is %s, not an overlayfs", fs)
	}
	inside(t, "mkdir", "-p", "/var/lib/cove-idmap-test")
	t.Cleanup(func() { inside(t, "rmdir", "/var/lib/cove-idmap-test") })
	cleanupWorkload(t, "uns-noidmap")
	spec := containerSpec(t, filepath.Join(workDir, "idmap-specs"), "uns-noidmap", rootfs, `["/bin/sleep", "1000"]`,
		"[[container.mount]]\nsource = \"/var/lib/cove-idmap-test\"\ntarget = \"/data\"\nidmap = true\n[security]\nuserns = \"auto\"\n")
	r := cove(t, "run", "-d", spec)
	if r.Code == 0 || !strings.Contains(r.Stderr, "idmapped mount of /var/lib/cove-idmap-test on /data") || !strings.Contains(r.Stderr, "idmapped mounts need Linux ≥ 5.12") {
		t.Errorf("an idmapped bind on overlayfs: exit %d, stderr %q; want a failed start naming the mount and the requirement", r.Code, r.Stderr)
	}
	if st := show(t, "cove-uns-noidmap.service", "ActiveState"); st == "active" || st == "activating" {
		t.Errorf("the workload is %s after the refused start", st)
	}
}
