// Package tests holds cove's integration tests. They boot one private
// systemd 252 per run (package sandbox) and drive the real cove binary
// inside it against real containers. Without root or systemd they skip,
// saying why; under CI=true they must run.
package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
	"github.com/cove-project/cove/tests/sandbox"
)

// Shared by all tests of a run.
var (
	env     harness.Env       // work directory, binaries, console, why tests skip
	sb      *sandbox.Sandbox  // the private systemd
	coveBin string            // env.CoveBin
	rootfs  string            // env.Rootfs: a busybox root filesystem
	workDir string            // env.WorkDir: host directory visible inside the sandbox
	binds   map[string]string // harness.CoveBinds: what boot binds into every boot
)

func TestMain(m *testing.M) {
	os.Exit(harness.Run(m, &env, "cove-test-", "../cmd/cove", setup))
}

// setup adds the notify-send and escape-probe fixtures and the directories the sandbox binds
// to the rootfs and work directory harness made, and boots the sandbox.
func setup() (func(), error) {
	coveBin, rootfs, workDir = env.CoveBin, env.Rootfs, env.WorkDir
	fixtures := exec.Command("go", "build", "-o", filepath.Join(rootfs, "bin")+"/", "./cmd/notify-send", "./cmd/escape-probe")
	fixtures.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := fixtures.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build notify-send and escape-probe: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(workDir, "empty"), 0o755); err != nil {
		return nil, err
	}
	var err error
	if binds, err = harness.CoveBinds(&env); err != nil {
		return nil, err
	}
	sb, err = boot()
	if err != nil {
		return nil, err
	}
	return func() { sb.Shutdown() }, hostNetworkByDefault() // sb, not the value now: TestReboot boots a new one
}

// hostSettings is the sandbox's /etc/cove/cove.toml (see
// hostNetworkByDefault).
const hostSettings = "# written by tests/main_test.go: no cove networks in the machine's network namespace\n[run]\nnetwork = \"host\"\n"

// hostNetworkByDefault writes the sandbox's /etc/cove/cove.toml (its /etc
// is an overlay kept across TestReboot's boots) so that what builds a
// spec without a file (cove run --rootfs/IMAGE, the Docker API's create)
// uses the host's network, not the default network "cove". This suite
// runs in the machine's real network namespace: it must never create a
// bridge, a veth or an nftables table there (tests/nettest does, in a
// namespace of its own). Without this file the cove runs of
// container_test, mounts_test, image_test, ready_test and lifecycle_test
// and every container that docker_run_test and api_test create would
// join network cove.
func hostNetworkByDefault() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := sb.Command(ctx, "sh", "-c", "mkdir -p /etc/cove && cat > /etc/cove/cove.toml")
	cmd.Stdin = strings.NewReader(hostSettings)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("write /etc/cove/cove.toml: %v\n%s", err, out)
	}
	return nil
}

// boot boots the sandbox over the shared state directory: /etc and
// /var/lib are private overlays that persist across boots (a reboot), and
// cove's generator, the image store and the containers' layers are bound
// in (harness.CoveBinds).
func boot() (*sandbox.Sandbox, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return sandbox.Boot(ctx, sandbox.Options{
		Log:         &env.Log,
		StateDir:    filepath.Join(workDir, "state"),
		Overlays:    []string{"/etc", "/var/lib"},
		Binds:       binds, // harness.CoveBinds
		Wants:       []string{"multi-user.target"},
		BootTimeout: 3 * time.Minute,
	})
}

// result is the outcome of a command run inside the sandbox.
type result = harness.Result

// inside runs a command in the sandbox and fails t if it could not run.
func inside(t *testing.T, name string, args ...string) result {
	t.Helper()
	return harness.Inside(t, sb, name, args...)
}

// cove runs the cove binary inside the sandbox.
func cove(t *testing.T, args ...string) result {
	t.Helper()
	return inside(t, coveBin, args...)
}

// mustCove runs cove and fails t unless it exits 0.
func mustCove(t *testing.T, args ...string) string {
	t.Helper()
	r := cove(t, args...)
	if r.Code != 0 {
		t.Fatalf("cove %q: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// show reads one property of a unit with systemctl show.
func show(t *testing.T, unit, prop string) string {
	t.Helper()
	r := inside(t, "systemctl", "show", "-p", prop, "--value", unit)
	return strings.TrimSpace(r.Stdout)
}

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanupWorkload removes a workload when the test ends.
func cleanupWorkload(t *testing.T, name string) {
	t.Cleanup(func() { cove(t, "rm", name) })
}

// insideStdin runs a command in the sandbox with stdin as its input.
func insideStdin(t *testing.T, stdin, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sb.Command(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("run %s %q: %v", name, args, err)
	}
	return result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}
