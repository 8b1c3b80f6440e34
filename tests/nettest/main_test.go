// Package nettest holds cove's networking integration tests. Following
// shared docs/network-testing.md, they boot their own private systemd 252
// in a network namespace of its own (sandbox.Options.PrivateNetwork):
// everything cove creates (cove0, veths, nftables tables) and the
// "outside" namespace that plays the internet exist only inside it, and
// every test asserts that closed world first. Without root or systemd they
// skip, saying why; under CI=true they must run.
package nettest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
	"github.com/cove-project/cove/tests/sandbox"
)

// Shared by all tests of a run.
var (
	env     harness.Env      // work directory, binaries, console, why tests skip
	sb      *sandbox.Sandbox // the private systemd, in its own network namespace
	coveBin string           // env.CoveBin
	rootfs  string           // env.Rootfs: a busybox root filesystem
	workDir string           // env.WorkDir: host directory visible inside the sandbox
)

func TestMain(m *testing.M) {
	os.Exit(harness.Run(m, &env, "cove-nettest-", "../../cmd/cove", setup))
}

// setup adds the udp-echo fixture to the rootfs, boots the sandbox with
// its own network namespace, private /etc and /var/lib, and cove's
// generator (which writes the networks' DNS and DHCP sockets), and
// installs the network, DNS and DHCP unit templates.
func setup() (func(), error) {
	coveBin, rootfs, workDir = env.CoveBin, env.Rootfs, env.WorkDir
	fixture := exec.Command("go", "build", "-o", filepath.Join(rootfs, "bin")+"/", "../cmd/udp-echo")
	fixture.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := fixture.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build udp-echo: %v\n%s", err, out)
	}
	binds, err := harness.CoveBinds(&env)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err = sandbox.Boot(ctx, sandbox.Options{
		Log:            &env.Log,
		Overlays:       []string{"/etc", "/var/lib"},
		Binds:          binds,
		PrivateNetwork: true,
		BootTimeout:    3 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	return func() { sb.Shutdown() }, installTemplates(ctx)
}

// installTemplates installs test-local copies of the shipped
// packaging/cove-network@.service, cove-dns@.service,
// cove-dhcp@.service, cove-ra@.service and cove-release@.service in the sandbox's /etc/systemd/system (an overlay):
// the same units with the test's cove instead of /usr/bin/cove.
func installTemplates(ctx context.Context) error {
	for name, verbs := range map[string]int{"cove-network@.service": 3, "cove-dns@.service": 1, "cove-dhcp@.service": 1, "cove-ra@.service": 1, "cove-release@.service": 1} {
		b, err := os.ReadFile("../../packaging/" + name)
		if err != nil {
			return err
		}
		unit := strings.ReplaceAll(string(b), "/usr/bin/cove ", coveBin+" ")
		// The test's cove lives in the work directory under /tmp, which
		// the responders' PrivateTmp= would hide; /usr/bin/cove is not.
		unit = strings.ReplaceAll(unit, "\nPrivateTmp=yes\n", "\nPrivateTmp=no\n")
		if strings.Count(unit, coveBin+" ") != verbs {
			return fmt.Errorf("packaging/%s: want %d commands running /usr/bin/cove, got:\n%s", name, verbs, b)
		}
		cmd := sb.Command(ctx, "sh", "-c", "cat > '/etc/systemd/system/"+name+"'")
		cmd.Stdin = strings.NewReader(unit)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("install %s: %v\n%s", name, err, out)
		}
	}
	if out, err := sb.Command(ctx, "systemctl", "daemon-reload").CombinedOutput(); err != nil {
		return fmt.Errorf("daemon-reload: %v\n%s", err, out)
	}
	return nil
}

// result is the outcome of a command run inside the sandbox.
type result = harness.Result

// inside runs a command in the sandbox and fails t if it could not run.
func inside(t *testing.T, name string, args ...string) result {
	t.Helper()
	return harness.Inside(t, sb, name, args...)
}

// must runs a command inside and fails t unless it exits 0.
func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	r := inside(t, name, args...)
	if r.Code != 0 {
		t.Fatalf("%s %q: exit %d\nstdout: %s\nstderr: %s", name, args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// mustCove runs the cove binary inside and fails t unless it exits 0.
func mustCove(t *testing.T, args ...string) string {
	t.Helper()
	return must(t, coveBin, args...)
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

// journalOnFailure logs the last lines of the sandbox's journal when t
// has failed, as the test ends.
func journalOnFailure(t *testing.T, lines int) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("journal (end):\n%s", inside(t, "journalctl", "--no-pager", "-n", strconv.Itoa(lines)).Stdout)
		}
	})
}

// applySpec writes text as the spec NAME.toml in a directory of its own
// under the work directory and applies it; the test's end prunes it.
func applySpec(t *testing.T, name, text string) {
	t.Helper()
	dir, empty := filepath.Join(workDir, name), filepath.Join(workDir, name+"-empty")
	for _, d := range []string{dir, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { inside(t, coveBin, "apply", "--prune", empty) })
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCove(t, "apply", path)
}

// httpdSpec is the text of a spec of a busybox httpd container on network
// cove serving its hostname on port 8080 (as runServer's), with extra
// lines at the end of its [container] and [service] tables.
func httpdSpec(container, service string) string {
	return serverSpec(`["/bin/sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]`, container, service)
}

// serverSpec is the text of a spec of a container on network cove from
// the test rootfs running command (a TOML array), with extra lines at the
// end of its [container] and [service] tables.
func serverSpec(command, container, service string) string {
	return `version = 1
kind = "container"
[container]
rootfs = "` + rootfs + `"
volatile = true
network = "cove"
command = ` + command + `
` + container + `
[service]
stop_timeout = "2s"
` + service + "\n"
}
