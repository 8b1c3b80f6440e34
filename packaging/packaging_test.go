//go:build linux

// Package packaging tests cove's deb and rpm packages. It builds them with
// scripts/package, checks their contents and metadata, and installs,
// upgrades, removes and purges them in throwaway root directories: dpkg
// --root and rpm --root keep their databases there and chroot into it to
// run the maintainer scripts, where fake systemctl, deb-systemd-helper,
// deb-systemd-invoke and systemd-sysusers record their arguments. The
// host's package databases, logs, systemd and /etc are not touched.
package packaging

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The two versions built: an install of v1 is upgraded to v2.
const v1, v2 = "1.0.0", "1.1.0"

var (
	buildOnce sync.Once
	buildDir  string // the built packages
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// need skips the test unless the tools are installed; under CI=true it
// fails instead, so CI really runs these tests.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " is not installed (scripts/deps installs it)"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// needRoot skips the test unless it runs as root (dpkg and rpm chroot into
// the throwaway root); under CI=true it fails instead.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("installing packages into a throwaway root needs root (chroot)")
		}
		t.Skip("installing packages into a throwaway root needs root (chroot)")
	}
}

// pkg is the path of a built package: kind "deb" or "rpm".
func pkg(t *testing.T, kind, version string) string {
	t.Helper()
	need(t, "dpkg-deb", "rpmbuild", "rpm")
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "cove-packages-"); buildErr != nil {
			return
		}
		for _, v := range []string{v1, v2} {
			cmd := exec.Command("bash", "../scripts/package", "all", buildDir)
			cmd.Env = append(os.Environ(), "VERSION="+v)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("scripts/package all (VERSION=%s): %v\n%s", v, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	name := fmt.Sprintf("cove_%s_%s.deb", version, runtime.GOARCH)
	if kind == "rpm" {
		name = fmt.Sprintf("cove-%s-1.%s.rpm", version, rpmArch())
	}
	return filepath.Join(buildDir, name)
}

func rpmArch() string {
	if runtime.GOARCH == "arm64" {
		return "aarch64"
	}
	return "x86_64"
}

// output runs a command and returns its standard output; it fails the
// test with the command's output if it fails.
func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// rpmQuery queries a package file with a private database path (rpm would
// otherwise create ~/.rpmdb).
func rpmQuery(t *testing.T, file string, args ...string) string {
	t.Helper()
	return output(t, "rpm", append([]string{"--dbpath", t.TempDir(), "-qp"}, append(args, file)...)...)
}

// entry is one installed file: ls-style permissions and a symlink's target.
type entry struct{ perms, target string }

// layout is what both packages install; with debLayout or rpmLayout,
// what each installs and nothing else (the deb also lists the parent
// directories).
var layout = map[string]entry{
	"/etc/cove":            {"drwxr-xr-x", ""},
	"/usr/bin/cove":        {"-rwxr-xr-x", ""},
	"/usr/bin/cove-launch": {"-rwxr-xr-x", ""},
	"/usr/bin/cove-init":   {"-rwxr-xr-x", ""},
	"/usr/lib/systemd/system-generators/cove-generator": {"lrwxrwxrwx", "../../../bin/cove"},
	"/usr/lib/systemd/system/cove-api.service":          {"-rw-r--r--", ""},
	"/usr/lib/systemd/system/cove-api.socket":           {"-rw-r--r--", ""},
	"/usr/lib/systemd/system/cove-auto-update.service":  {"-rw-r--r--", ""},
	"/usr/lib/systemd/system/cove-auto-update.timer":    {"-rw-r--r--", ""},
	"/usr/lib/systemd/system/cove-network@.service":     {"-rw-r--r--", ""},
	"/usr/lib/systemd/system/cove-dns@.service":         {"-rw-r--r--", ""},
	"/usr/lib/systemd/system/cove-dhcp@.service":        {"-rw-r--r--", ""},
	"/usr/lib/systemd/system/cove-ra@.service":          {"-rw-r--r--", ""},
	"/usr/lib/systemd/system/cove-release@.service":     {"-rw-r--r--", ""},
	"/usr/lib/sysusers.d/cove.conf":                     {"-rw-r--r--", ""},
	"/usr/share/cove":                                   {"drwxr-xr-x", ""},
	"/usr/share/doc/cove":                               {"drwxr-xr-x", ""},
	"/usr/share/doc/cove/README.md":                     {"-rw-r--r--", ""},
	"/usr/share/doc/cove/api.md":                        {"-rw-r--r--", ""},
	"/usr/share/bash-completion/completions/cove":       {"-rw-r--r--", ""},
	"/usr/share/fish/vendor_completions.d/cove.fish":    {"-rw-r--r--", ""},
}

// The deb's copyright file and changelog are where Debian policy puts
// them; the rpm's licence file is where Fedora does, and its changelog is
// in its header. The zsh completion is where each distribution's zsh
// looks for packages' completions.
var (
	debLayout = withLayout(map[string]entry{
		"/usr/share/doc/cove/copyright":           {"-rw-r--r--", ""},
		"/usr/share/doc/cove/changelog.gz":        {"-rw-r--r--", ""},
		"/usr/share/lintian/overrides/cove":       {"-rw-r--r--", ""},
		"/usr/share/zsh/vendor-completions/_cove": {"-rw-r--r--", ""},
	})
	rpmLayout = withLayout(map[string]entry{
		"/usr/share/licenses/cove":            {"drwxr-xr-x", ""},
		"/usr/share/licenses/cove/copyright":  {"-rw-r--r--", ""},
		"/usr/share/zsh/site-functions/_cove": {"-rw-r--r--", ""},
	})
)

// manLayout is the man pages both packages hold: those under
// usr/share/man in the deb's tree (scripts/package generates them with
// packaging/man), gzipped. It fails the test unless cove(1), cove-run(1),
// cove-image-pull(1) and cove.toml(5) are among them, every page
// decompresses to a roff page with a NAME section, and cove(1) and
// cove.toml(5) name the package's version.
func manLayout(t *testing.T) map[string]entry {
	t.Helper()
	root := t.TempDir()
	output(t, "dpkg-deb", "-x", pkg(t, "deb", v1), root)
	files, err := filepath.Glob(filepath.Join(root, "usr/share/man", "man*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	m, pages := map[string]entry{}, map[string]string{}
	for _, f := range files {
		name := strings.TrimPrefix(f, filepath.Join(root, "usr/share/man")+"/")
		m["/usr/share/man/"+name] = entry{"-rw-r--r--", ""}
		pages[name] = output(t, "gzip", "-dc", f)
		if !strings.Contains(pages[name], ".TH ") || !strings.Contains(pages[name], ".SH NAME\n") {
			t.Errorf("%s is no man page:\n%.200s", name, pages[name])
		}
	}
	for _, p := range []string{"man1/cove.1.gz", "man1/cove-run.1.gz", "man1/cove-image-pull.1.gz", "man5/cove.toml.5.gz"} {
		if _, ok := pages[p]; !ok {
			t.Fatalf("the package has no man page %s: %v", p, files)
		}
	}
	for _, p := range []string{"man1/cove.1.gz", "man5/cove.toml.5.gz"} {
		if !strings.Contains(pages[p], `"cove `+v1+`"`) {
			t.Errorf("%s does not name version %s:\n%.200s", p, v1, pages[p])
		}
	}
	return m
}

func withLayout(extra map[string]entry) map[string]entry {
	m := maps.Clone(layout)
	maps.Copy(m, extra)
	return m
}

func TestDebContents(t *testing.T) {
	deb := pkg(t, "deb", v1)
	want := maps.Clone(debLayout)
	maps.Copy(want, manLayout(t))
	got := map[string]entry{}
	// drwxr-xr-x root/root 0 2026-11-27 00:48 ./etc/cove/
	// lrwxrwxrwx root/root 0 2026-11-27 00:48 ./usr/.../cove-generator -> ../../../bin/cove
	for _, line := range strings.Split(strings.TrimSpace(output(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "root/root" {
			t.Errorf("dpkg-deb -c: want root/root: %q", line)
			continue
		}
		e := entry{perms: f[0]}
		if len(f) == 8 && f[6] == "->" {
			e.target = f[7]
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if path == "" {
			continue
		}
		got[path] = e
	}
	for path, e := range got {
		if _, ok := want[path]; !ok && e.perms == "drwxr-xr-x" && isParent(want, path) {
			delete(got, path)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deb contents:\n got %v\nwant %v", got, want)
	}

	fields := map[string]string{}
	for _, line := range strings.Split(output(t, "dpkg-deb", "-f", deb), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			fields[k] = v
		}
	}
	for k, want := range map[string]string{
		"Package":      "cove",
		"Version":      v1,
		"Maintainer":   maintainer,
		"Architecture": runtime.GOARCH,
		"Depends":      "systemd (>= 252)",
		"Recommends":   "systemd-container, tini",
		"Suggests":     "qemu-system-x86, qemu-utils",
	} {
		if fields[k] != want {
			t.Errorf("control field %s = %q, want %q", k, fields[k], want)
		}
	}
	if n := fields["Installed-Size"]; len(n) < 4 {
		t.Errorf("Installed-Size = %q, want the size in KiB of an ~8 MB binary", n)
	}
}

// isParent reports whether path is a directory above an entry of
// layout.
func isParent(layout map[string]entry, path string) bool {
	for p := range layout {
		if strings.HasPrefix(p, path+"/") {
			return true
		}
	}
	return false
}

func TestRPMContents(t *testing.T) {
	rpm := pkg(t, "rpm", v1)
	man := manLayout(t)
	want := maps.Clone(rpmLayout)
	maps.Copy(want, man)
	got := map[string]entry{}
	qf := "[%{FILEMODES:perms}|%{FILEUSERNAME}|%{FILEGROUPNAME}|%{FILELINKTOS}|%{FILENAMES}\n]"
	for _, line := range strings.Split(strings.TrimSpace(rpmQuery(t, rpm, "--qf", qf)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 5 || f[1] != "root" || f[2] != "root" {
			t.Errorf("rpm file %q: want root root", line)
			continue
		}
		got[f[4]] = entry{perms: f[0], target: f[3]}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rpm contents:\n got %v\nwant %v", got, want)
	}
	// rpm counts man pages as documentation.
	docs := strings.Fields(rpmQuery(t, rpm, "--docfiles"))
	if want := append([]string{"/usr/share/doc/cove/README.md", "/usr/share/doc/cove/api.md"}, slices.Sorted(maps.Keys(man))...); !reflect.DeepEqual(docs, want) {
		t.Errorf("rpm docfiles %v, want %v", docs, want)
	}
	if got, want := rpmQuery(t, rpm, "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}"), "cove "+v1+" 1 "+rpmArch(); got != want {
		t.Errorf("rpm name: %q, want %q", got, want)
	}
	for flag, want := range map[string][]string{
		"--requires": {
			"/bin/sh", "/bin/sh", "/bin/sh",
			"rpmlib(CompressedFileNames) <= 3.0.4-1", "rpmlib(FileDigests) <= 4.6.0-1",
			"rpmlib(PayloadFilesHavePrefix) <= 4.0-1",
			"systemd", "systemd", "systemd", "systemd", "util-linux"},
		"--recommends": {"/usr/bin/tini-static", "systemd-container"},
		"--suggests":   {"qemu-system-x86"},
	} {
		got := strings.Split(strings.TrimSpace(rpmQuery(t, rpm, flag)), "\n")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("rpm %s: %q, want %q", flag, got, want)
		}
	}
}

// TestBinary runs the packaged binary, as cove and through the generator
// link, and checks that both packages hold the same bytes.
func TestBinary(t *testing.T) {
	deb, rpm := pkg(t, "deb", v1), pkg(t, "rpm", v1)
	dir := t.TempDir()
	output(t, "dpkg-deb", "-x", deb, dir)
	out := output(t, filepath.Join(dir, "usr/bin/cove"), "--help")
	if !strings.Contains(out, "cove [command]") {
		t.Errorf("cove --help:\n%s", out)
	}
	if out := output(t, filepath.Join(dir, "usr/bin/cove"), "version"); !strings.HasPrefix(out, "cove "+v1+"\n") && !strings.HasPrefix(out, "cove "+v1+" (") {
		t.Errorf("cove version of the package built as %s: %q", v1, out)
	}
	// Without arguments the generator only prints its usage: no side effects.
	cmd := exec.Command(filepath.Join(dir, "usr/lib/systemd/system-generators/cove-generator"))
	out2, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out2), "usage: cove-generator") {
		t.Errorf("cove-generator without arguments: %v\n%s", err, out2)
	}

	data, err := os.ReadFile(filepath.Join(dir, "usr/bin/cove"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := rpmQuery(t, rpm, "--qf", "[%{FILEDIGESTS} %{FILENAMES}\n]"); !strings.Contains(got, hex.EncodeToString(sum[:])+" /usr/bin/cove\n") {
		t.Errorf("the rpm's /usr/bin/cove differs from the deb's (sha256 %x):\n%s", sum, got)
	}
}

// busybox is where Debian's busybox-static installs its static binary.
const busybox = "/bin/busybox"

// fakes are the commands the maintainer scripts call, installed in the
// throwaway root. Each appends its name and arguments to /calls.
// deb-systemd-helper was-enabled fails when /admin-disabled exists (the
// administrator disabled the socket); systemd-sysusers fails unless its
// configuration is installed.
var fakes = map[string]string{
	"systemctl":          "",
	"deb-systemd-invoke": "",
	"deb-systemd-helper": `[ "$2" != was-enabled ] || [ ! -e /admin-disabled ]`,
	"systemd-sysusers":   `[ -f "/usr/lib/sysusers.d/$1" ]`,
}

// newRoot makes a throwaway root laid out like Debian's merged /usr: the
// host's static busybox as /usr/bin/sh and the few tools the scripts use,
// the fakes, an empty dpkg database, and /run/systemd/system if systemd is
// to look as if it ran.
func newRoot(t *testing.T, systemdRunning bool) string {
	t.Helper()
	needRoot(t)
	need(t, "dpkg", "rpm")
	if f, err := elf.Open(busybox); err != nil {
		t.Fatalf("%v (scripts/deps installs busybox-static)", err)
	} else {
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Fatalf("%s is dynamically linked: apt-get install busybox-static", busybox)
			}
		}
	}
	root := t.TempDir()
	dirs := []string{"usr/bin", "dev", "tmp", "var/lib/dpkg/info", "var/lib/dpkg/updates"}
	if systemdRunning {
		dirs = append(dirs, "run/systemd/system")
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"usr/bin/busybox": string(data), "var/lib/dpkg/status": "", "dev/null": ""}
	for name, check := range fakes {
		files["usr/bin/"+name] = "#!/bin/sh\necho \"${0##*/} $*\" >>/calls\n" + check + "\n"
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"bin": "usr/bin"}
	for _, tool := range []string{"sh", "rm", "rmdir", "mkdir", "cat"} {
		links["usr/bin/"+tool] = "busybox"
	}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// cleanEnv is the environment of dpkg and rpm: nothing of the test's
// (such as DPKG_ROOT) leaks into the maintainer scripts.
var cleanEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}

// dpkg runs dpkg on root and returns the calls the maintainer scripts made.
func dpkg(t *testing.T, root string, args ...string) []string {
	t.Helper()
	args = append([]string{"--root=" + root, "--log=" + root + "/dpkg.log", "--force-depends"}, args...)
	return calls(t, root, exec.Command("dpkg", args...))
}

// rpmRoot runs rpm on root and returns the calls the scriptlets made.
func rpmRoot(t *testing.T, root string, args ...string) []string {
	t.Helper()
	args = append([]string{"--root", root, "--dbpath", "/var/lib/rpm", "--noplugins"}, args...)
	return calls(t, root, exec.Command("rpm", args...))
}

// calls runs cmd and returns the lines it added to root/calls.
func calls(t *testing.T, root string, cmd *exec.Cmd) []string {
	t.Helper()
	log := filepath.Join(root, "calls")
	os.Remove(log)
	cmd.Env = cleanEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	data, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func wantCalls(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
		t.Errorf("%s: the scripts called\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// exists reports whether root/path exists (without following a final
// symlink).
func exists(root, path string) bool {
	_, err := os.Lstat(filepath.Join(root, path))
	return err == nil
}

// wantFiles checks which of paths exist below root.
func wantFiles(t *testing.T, what, root string, want bool, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if exists(root, p) != want {
			t.Errorf("%s: %s exists = %v, want %v", what, p, !want, want)
		}
	}
}

// userFiles are an administrator's spec, what cove apply last applied, and
// a root filesystem of a workload.
var userFiles = []string{"etc/cove/web.toml", "var/lib/cove/applied/web.toml", "var/lib/cove/rootfs/busybox/keep"}

func writeUserFiles(t *testing.T, root string) {
	t.Helper()
	for _, f := range userFiles {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte("version = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// installed are files of the package checked after install and removal.
var installed = []string{
	"usr/bin/cove", "usr/bin/cove-launch", "usr/bin/cove-init", "usr/lib/systemd/system-generators/cove-generator",
	"usr/lib/systemd/system/cove-api.socket", "usr/lib/systemd/system/cove-api.service",
	"usr/lib/systemd/system/cove-auto-update.timer", "usr/lib/systemd/system/cove-auto-update.service",
	"usr/lib/systemd/system/cove-network@.service",
	"usr/lib/systemd/system/cove-dns@.service",
	"usr/lib/systemd/system/cove-dhcp@.service",
	"usr/lib/systemd/system/cove-ra@.service",
	"usr/lib/systemd/system/cove-release@.service",
	"usr/lib/sysusers.d/cove.conf",
}

// TestDebLifecycle installs, upgrades, removes and purges the deb where
// systemd runs: the socket is enabled and started, restarted on upgrade,
// stopped on removal; no workload is touched; purge deletes
// /var/lib/cove/applied and keeps /etc/cove's specs.
func TestDebLifecycle(t *testing.T) {
	deb1, deb2 := pkg(t, "deb", v1), pkg(t, "deb", v2)
	root := newRoot(t, true)

	wantCalls(t, "install", dpkg(t, root, "-i", deb1),
		"systemd-sysusers cove.conf",
		"deb-systemd-helper --quiet was-enabled cove-api.socket",
		"deb-systemd-helper enable cove-api.socket",
		"systemctl --system daemon-reload",
		"deb-systemd-invoke start cove-api.socket")
	wantFiles(t, "install", root, true, installed...)
	if fi, err := os.Stat(filepath.Join(root, "usr/lib/systemd/system-generators/cove-generator")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("the generator link does not lead to an executable: %v", err)
	}
	writeUserFiles(t, root)

	wantCalls(t, "upgrade", dpkg(t, root, "-i", deb2),
		"systemd-sysusers cove.conf",
		"deb-systemd-helper --quiet was-enabled cove-api.socket",
		"deb-systemd-helper enable cove-api.socket",
		"systemctl --system daemon-reload",
		"deb-systemd-invoke restart cove-api.socket")

	// The administrator disabled the socket: an upgrade keeps it disabled
	// (deb-systemd-invoke does not restart disabled units).
	if err := os.WriteFile(filepath.Join(root, "admin-disabled"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "reinstall, socket disabled", dpkg(t, root, "-i", deb2),
		"systemd-sysusers cove.conf",
		"deb-systemd-helper --quiet was-enabled cove-api.socket",
		"deb-systemd-helper update-state cove-api.socket",
		"systemctl --system daemon-reload",
		"deb-systemd-invoke restart cove-api.socket")

	wantCalls(t, "remove", dpkg(t, root, "-r", "cove"),
		"deb-systemd-invoke stop cove-api.socket cove-api.service",
		"systemctl --system daemon-reload")
	wantFiles(t, "remove", root, false, installed...)
	wantFiles(t, "remove", root, true, userFiles...)

	wantCalls(t, "purge", dpkg(t, root, "-P", "cove"),
		"deb-systemd-helper purge cove-api.socket")
	wantFiles(t, "purge", root, true, "etc/cove/web.toml", "var/lib/cove/rootfs/busybox/keep")
	wantFiles(t, "purge", root, false, "var/lib/cove/applied")
}

// TestDebNoSystemd installs, removes and purges the deb where systemd does
// not run (a chroot, an image build, a container): the socket is enabled
// but nothing is started, stopped or reloaded, and nothing fails.
func TestDebNoSystemd(t *testing.T) {
	deb := pkg(t, "deb", v1)
	root := newRoot(t, false)
	wantCalls(t, "install", dpkg(t, root, "-i", deb),
		"systemd-sysusers cove.conf",
		"deb-systemd-helper --quiet was-enabled cove-api.socket",
		"deb-systemd-helper enable cove-api.socket")
	if err := os.MkdirAll(filepath.Join(root, "var/lib/cove/applied"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "remove", dpkg(t, root, "-r", "cove"))
	wantCalls(t, "purge", dpkg(t, root, "-P", "cove"), "deb-systemd-helper purge cove-api.socket")
	// Nothing of cove's is left.
	wantFiles(t, "purge", root, false, "etc/cove", "var/lib/cove", "usr/share/cove")
}

// TestRPMLifecycle installs, upgrades and erases the rpm where systemd
// runs. The specs and /var/lib/cove stay on erase (rpm has no purge).
func TestRPMLifecycle(t *testing.T) {
	rpm1, rpm2 := pkg(t, "rpm", v1), pkg(t, "rpm", v2)
	root := newRoot(t, true)
	rpmRoot(t, root, "--initdb")

	wantCalls(t, "install", rpmRoot(t, root, "--nodeps", "-i", rpm1),
		"systemd-sysusers cove.conf",
		"systemctl --no-reload enable cove-api.socket",
		"systemctl daemon-reload",
		"systemctl start cove-api.socket")
	wantFiles(t, "install", root, true, installed...)
	writeUserFiles(t, root)

	// The new package's %post, then the old one's %preun and %postun.
	wantCalls(t, "upgrade", rpmRoot(t, root, "--nodeps", "-U", rpm2),
		"systemd-sysusers cove.conf",
		"systemctl daemon-reload",
		"systemctl daemon-reload",
		"systemctl try-restart cove-api.socket")

	wantCalls(t, "erase", rpmRoot(t, root, "-e", "cove"),
		"systemctl --no-reload disable cove-api.socket",
		"systemctl stop cove-api.socket cove-api.service",
		"systemctl daemon-reload")
	wantFiles(t, "erase", root, false, installed...)
	wantFiles(t, "erase", root, true, userFiles...)
}

// TestRPMNoSystemd installs and erases the rpm where systemd does not run.
func TestRPMNoSystemd(t *testing.T) {
	rpm := pkg(t, "rpm", v1)
	root := newRoot(t, false)
	rpmRoot(t, root, "--initdb")
	wantCalls(t, "install", rpmRoot(t, root, "--nodeps", "-i", rpm),
		"systemd-sysusers cove.conf",
		"systemctl --no-reload enable cove-api.socket")
	wantCalls(t, "erase", rpmRoot(t, root, "-e", "cove"),
		"systemctl --no-reload disable cove-api.socket")
	wantFiles(t, "erase", root, false, "etc/cove", "usr/bin/cove")
}

// TestVersion checks how scripts/package maps git describe output, and
// that dpkg and rpm order the results alike.
func TestVersion(t *testing.T) {
	for _, c := range []struct{ describe, want string }{
		{"v1.2", "1.2"},
		{"v1.2-rc1", "1.2~rc1"},
		{"v1.2-5-gabc1234", "1.2+git5.abc1234"},
		{"v1.2-5-gabc1234-dirty", "1.2+git5.abc1234.dirty"},
		{"v1.2-rc1-3-gabc1234", "1.2~rc1+git3.abc1234"},
		{"abc1234", "0.0.0+git20260101120000.abc1234"},
		{"1234abc-dirty", "0.0.0+git20260101120000.1234abc.dirty"},
	} {
		got := strings.TrimSpace(output(t, "bash", "../scripts/package", "version", c.describe, "20260101120000"))
		if got != c.want {
			t.Errorf("version of %q = %q, want %q", c.describe, got, c.want)
		}
	}

	ordered := []string{
		"0.0.0+git20260101120000.abc1234", "0.0.0+git20260102120000.abc1234",
		"1.2~rc1", "1.2~rc1+git3.abc1234", "1.2", "1.2+git5.abc1234",
		"1.2+git5.abc1234.dirty", "1.2+git12.abc1234", "1.2.1", "1.10",
	}
	need(t, "dpkg", "rpm")
	for i := 0; i+1 < len(ordered); i++ {
		a, b := ordered[i], ordered[i+1]
		if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg: %s is not older than %s", a, b)
		}
		lua := fmt.Sprintf("%%{lua: print(rpm.vercmp(%q, %q))}", a, b)
		if got := output(t, "rpm", "--eval", lua); strings.TrimSpace(got) != "-1" {
			t.Errorf("rpm: %s is not older than %s (vercmp %s)", a, b, got)
		}
	}

	cmd := exec.Command("bash", "../scripts/package", "version")
	cmd.Env = append(os.Environ(), "VERSION=1.0-1")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("VERSION=1.0-1 (a hyphen is not a valid rpm version) accepted: %s", out)
	}
}
