// Package layout checks the shape of the tree that docs/architecture.md
// draws: the pure packages on the data path (spec, units, launch, and the
// network plan they share) import
// nothing that makes syscalls or talks to D-Bus, and build off Linux.
package layout

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cove-project/cove"

// pure are the packages that may not have effects: compiling a spec into
// units must work, and be testable, with no kernel or bus behind it.
var pure = []string{module + "/spec", module + "/units", module + "/launch", module + "/internal/network/plan"}

// effectful are the imports a pure package may not name directly: the
// syscall and process packages, the network, and D-Bus. (os is allowed:
// spec reads the file it parses.)
var effectful = []string{
	"syscall", "golang.org/x/sys/unix", "os/exec", "os/signal", "net",
	"github.com/godbus/dbus/v5", "github.com/coreos/go-systemd/v22",
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// list runs go list on packages (the pure ones when none are given) from
// the module's root.
func list(t *testing.T, packages ...string) []pkg {
	t.Helper()
	if len(packages) == 0 {
		packages = pure
	}
	cmd := exec.Command(goTool(t), append([]string{"list", "-json=ImportPath,Imports,Deps"}, packages...)...)
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	for d := json.NewDecoder(strings.NewReader(string(out))); d.More(); {
		var p pkg
		if err := d.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestPureImports fails when a pure package imports an effectful package
// directly, or any package of cove's other than the pure ones.
func TestPureImports(t *testing.T) {
	pkgs := list(t)
	if len(pkgs) != len(pure) {
		t.Fatalf("go list found %d of the %d pure packages", len(pkgs), len(pure))
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if slices.Contains(effectful, imp) || strings.HasPrefix(imp, "github.com/godbus/") || strings.HasPrefix(imp, "github.com/coreos/") {
				t.Errorf("%s imports %s: pure packages may not make syscalls or use D-Bus", p.ImportPath, imp)
			}
		}
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, module+"/") && !slices.Contains(pure, dep) {
				t.Errorf("%s depends on %s: pure packages may depend only on %v", p.ImportPath, dep, pure)
			}
		}
	}
}

// notStaged are what the stage binary (cmd/cove-launch), which every
// container start and stop runs, must not link: the command line, the
// API, the man page generator, the DNS and DHCP responders, the
// registry client and TLS. Each Go start pays the package initialisation
// of what the binary links.
var notStaged = []string{
	module + "/internal/cli", module + "/internal/api", module + "/internal/dns", module + "/internal/dhcp",
	"github.com/spf13/cobra", "github.com/spf13/cobra/doc", "github.com/miekg/dns",
	// the registry client: the launcher reads the store (internal/image/stored)
	module + "/internal/image", "github.com/google/go-containerregistry/pkg/v1/remote/transport", "net/http",
	"crypto/tls", // go-systemd's activation links it (internal/ondemand takes the sockets itself)
	// huge pages in the container's cgroup, for the launcher's console relay's lifetime
	module + "/internal/hugeheap",
}

// TestStageLinksLittle fails when the stage binary links a package of
// notStaged.
func TestStageLinksLittle(t *testing.T) {
	for _, p := range list(t, module+"/cmd/cove-launch") {
		for _, dep := range p.Deps {
			if slices.Contains(notStaged, dep) {
				t.Errorf("%s links %s: a container's stages run it at every start and stop", p.ImportPath, dep)
			}
		}
	}
}

// notInside are what the inside binary (cmd/cove-init), the first
// process of every container and cove exec's entry, must not link beyond
// notStaged: the network, the image store and its registry client, and
// D-Bus.
var notInside = append([]string{
	module + "/internal/network", module + "/internal/image", module + "/supervisor", module + "/internal/stage",
	"github.com/google/nftables", "github.com/vishvananda/netlink", "github.com/google/go-containerregistry/pkg/name",
	"github.com/godbus/dbus/v5", "net/http",
}, notStaged...)

// TestInsideLinksLittle fails when the inside binary links a package of
// notInside.
func TestInsideLinksLittle(t *testing.T) {
	for _, p := range list(t, module+"/cmd/cove-init") {
		for _, dep := range p.Deps {
			if slices.Contains(notInside, dep) {
				t.Errorf("%s links %s: every container start runs it", p.ImportPath, dep)
			}
		}
	}
}

// TestPureBuildsOffLinux builds the pure packages for macOS: cove validate
// and cove render's logic must not depend on Linux-only files.
func TestPureBuildsOffLinux(t *testing.T) {
	for _, goos := range []string{"darwin", "windows"} {
		cmd := exec.Command(goTool(t), append([]string{"build"}, pure...)...)
		cmd.Dir = root(t)
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go build %v: %v\n%s", goos, pure, err, out)
		}
	}
}

func goTool(t *testing.T) string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("go tool: %v", err)
	}
	return p
}

func root(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
