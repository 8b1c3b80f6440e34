// Package harness runs an integration test package against a private
// systemd (package sandbox): it checks that one can run here, makes the
// work directory, builds the cove binary and the busybox root file system,
// lets the package boot its sandbox, runs the tests and cleans up.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/tests/sandbox"
)

// Env is what a test package's run shares with its tests.
type Env struct {
	WorkDir string       // host directory visible inside the sandbox, removed at the end
	CoveBin string       // the cove binary under test, in WorkDir/bin
	Rootfs  string       // a busybox root file system, in WorkDir/rootfs
	SkipWhy string       // why the tests cannot run here ("" when they can)
	Log     bytes.Buffer // the sandbox's console output
}

// Runner runs the tests (a *testing.M).
type Runner interface{ Run() int }

// Run sets env up and runs m. When no private systemd can run here, the
// tests still run with env.SkipWhy set (they skip), except under CI=true,
// where that is a failure. Otherwise it makes the work directory (under
// /var/tmp, named after prefix), builds cove from cmd (a package path
// relative to the test's directory) and the rootfs, and calls boot, which
// boots the sandbox and returns how to shut it down (called at the end;
// boot may set it up further). The sandbox's console is printed when a
// test fails. It returns m's exit code.
func Run(m Runner, env *Env, prefix, cmd string, boot func() (shutdown func(), err error)) int {
	if ok, reason := sandbox.Usable(); !ok {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "integration tests cannot run under CI: %s\n", reason)
			return 1
		}
		env.SkipWhy = reason
		return m.Run()
	}
	var err error
	if env.WorkDir, err = os.MkdirTemp("/var/tmp", prefix); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(env.WorkDir)
	shutdown, err := setUp(env, cmd, boot)
	if shutdown != nil {
		defer shutdown()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "set up integration tests: %v\n%s", err, env.Log.String())
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- sandbox console (end) ---\n%s\n", Tail(env.Log.String(), 60))
	}
	return code
}

// setUp builds cove (the package cmd) and, beside it, the stage and
// inside binaries (launch.StagePath, launch.InsidePath), as they are
// shipped (scripts/build in the module that holds cmd), and the rootfs,
// then boots.
func setUp(env *Env, cmd string, boot func() (func(), error)) (func(), error) {
	env.CoveBin = filepath.Join(env.WorkDir, "bin", "cove")
	build := exec.Command("bash", "scripts/build", filepath.Dir(env.CoveBin))
	build.Dir = filepath.Dir(filepath.Dir(cmd)) // cmd is ROOT/cmd/cove
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build cove, %s and %s (scripts/build): %v\n%s", launch.StageBinary, launch.InsideBinary, err, out)
	}
	env.Rootfs = filepath.Join(env.WorkDir, "rootfs")
	if err := sandbox.Rootfs(env.Rootfs); err != nil {
		return nil, err
	}
	return boot()
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := bytes.Split(bytes.TrimRight([]byte(s), "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Need skips t when the sandbox cannot run here (see Env.SkipWhy).
func (e *Env) Need(t testing.TB) {
	t.Helper()
	if e.SkipWhy != "" {
		t.Skip("integration test needs a private systemd: " + e.SkipWhy)
	}
}

// Result is the outcome of a command run inside the sandbox.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Inside runs a command in sb (its namespaces, network included when it
// has its own) within a minute, and fails t if it could not run.
func Inside(t testing.TB, sb *sandbox.Sandbox, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, errOut, code, err := sb.Run(ctx, name, args...)
	if err != nil {
		t.Fatalf("run %s %q: %v", name, args, err)
	}
	return Result{out, errOut, code}
}

// DockerCLI returns the docker CLI to run inside sb: the one scripts/deps
// extracts from Debian's docker.io package (20.10, what CI runs), else
// the one on PATH. Without either the test skips (under CI it fails).
func DockerCLI(t testing.TB, sb *sandbox.Sandbox) string {
	t.Helper()
	// Under /var/cache/cove-tests, the one directory of the tests' caches.
	const extracted = "/var/cache/cove-tests/docker-cli/usr/bin/docker"
	if r := Inside(t, sb, "test", "-x", extracted); r.Code == 0 {
		return extracted
	}
	if r := Inside(t, sb, "sh", "-c", "command -v docker"); r.Code == 0 {
		return strings.TrimSpace(r.Stdout)
	}
	missingTool(t, "no docker CLI on PATH or at "+extracted, "extracts it")
	return ""
}

// missingTool fails t under CI, which runs scripts/deps (what it does:
// done), and skips it elsewhere, saying what is missing (what).
func missingTool(t testing.TB, what, done string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(what + " (scripts/deps " + done + ")")
	}
	t.Skip(what + " (run scripts/deps)")
}

// ComposeV5 returns the docker compose v5 that scripts/deps builds
// (tests/tools/compose names its version), to run inside sb. Without it
// the test skips (under CI it fails).
func ComposeV5(t testing.TB, sb *sandbox.Sandbox) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0) // tests/harness/harness.go
	mod, err := os.ReadFile(filepath.Join(filepath.Dir(self), "../tools/compose/go.mod"))
	m := regexp.MustCompile(`(?m)^\tgithub\.com/docker/compose/v5 (v\S+)`).FindSubmatch(mod)
	if err != nil || m == nil {
		t.Fatalf("the compose version of tests/tools/compose/go.mod: %v", err)
	}
	// Under /var/cache/cove-tests, the one directory of the tests' caches.
	bin := "/var/cache/cove-tests/compose-" + string(m[1]) + "/docker-compose"
	if r := Inside(t, sb, "test", "-x", bin); r.Code == 0 {
		return bin
	}
	missingTool(t, "no docker compose at "+bin, "builds it")
	return ""
}

// CoveBinds prepares, under env's work directory, what both integration
// suites bind into their sandbox, and returns the binds: cove as
// cove-generator in a generator directory (for
// /etc/systemd/system-generators), and the image store and the
// containers' writable layers, which need a file system that takes
// overlayfs whiteouts and trusted.* xattrs, and the named volumes, which
// need one that takes idmapped mounts (in a user namespace): the host's,
// not a /var/lib overlay.
func CoveBinds(env *Env) (map[string]string, error) {
	binds := map[string]string{
		"/etc/systemd/system-generators": filepath.Join(env.WorkDir, "generators"),
		"/var/lib/cove/images":           filepath.Join(env.WorkDir, "images"),
		"/var/lib/cove/containers":       filepath.Join(env.WorkDir, "containers"),
		"/var/lib/cove/volumes":          filepath.Join(env.WorkDir, "volumes"),
	}
	for _, d := range binds {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	gen := filepath.Join(binds["/etc/systemd/system-generators"], "cove-generator")
	if err := os.Symlink(env.CoveBin, gen); err != nil && !os.IsExist(err) {
		return nil, err
	}
	return binds, nil
}

// Background starts a command in the sandbox that keeps running (a
// server) and returns the first line it prints; when the test ends it is
// killed (its nsenter, and with it the command: see sandbox.Command) and
// waited for.
func Background(t testing.TB, sb *sandbox.Sandbox, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := sb.Command(ctx, name, args...)
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		cancel()
		t.Fatalf("start %s in the sandbox: %v", name, err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s %q printed %q: %v", name, args, line, err)
	}
	return line
}

// OpenTap creates the tap name in the calling thread's network namespace,
// or attaches to it if it exists (a persistent one, as AttachTap makes),
// for frames without packet information, and returns the file its frames
// are read from and written to, polled by the runtime. A tap it created
// goes when the file is closed; a persistent one stays.
func OpenTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tap %s: open /dev/net/tun: %w", name, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: ioctl TUNSETIFF: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil { // after TUNSETIFF: then the runtime can poll it
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: fcntl O_NONBLOCK: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}
