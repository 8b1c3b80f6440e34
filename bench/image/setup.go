package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/registry"
	"github.com/cove-project/cove/tests/sandbox"
)

// Paths inside the sandbox. The image store and the containers' writable
// layers are directories of the work directory (the host's file system)
// bound there: the sandbox's /var/lib is an overlay, which cannot hold
// whiteouts or trusted.* xattrs, nor be an overlay's upper directory.
const (
	storeDir       = "/var/lib/cove/images"
	containersDir  = "/var/lib/cove/containers"
	registriesTOML = "/etc/cove/registries.toml"
	podmanRunRoot  = "/run/cove-bench-image-podman" // private /run
)

// Image names in the registry.
const (
	repoA = "bench/app:1"   // busybox + the random layers
	repoB = "bench/other:1" // busybox + the first random layer + its own
)

// fixture is what the three parts share.
type fixture struct {
	box       *benchbox.Box
	reg       *registry.Registry
	other     *registry.Registry // a second registry: pushes there upload every layer
	stopReg   func()             // stops the registries (only the first call acts)
	refA      string             // REGISTRY/bench/app:1
	refB      string             // REGISTRY/bench/other:1
	store     string             // the cove store's directory on the host
	tree      string             // an unpacked copy of image A (systemd-run's root)
	skopeoDir string             // skopeo's destination
	podman    *podmanSetup       // nil if podman is left out
	writer    bool               // -writer
}

// ctx is the box's context (ends on SIGINT or SIGTERM).
func (f *fixture) ctx() context.Context { return f.box.Ctx }

// sb is the sandbox.
func (f *fixture) sb() *sandbox.Sandbox { return f.box.SB }

// close stops the registry; its data goes with the work directory.
func (f *fixture) close() {
	if f.stopReg != nil {
		f.stopReg()
	}
}

// setup starts the registry, builds and pushes the images, points cove
// at the registry, unpacks systemd-run's tree and sets podman up.
func setup(box *benchbox.Box, o options) (_ *fixture, _ *report, err error) {
	f := &fixture{
		box:       box,
		store:     box.Dirs[storeDir],
		tree:      filepath.Join(box.Work, "tree"),
		skopeoDir: filepath.Join(box.Work, "skopeo"),
		writer:    o.writer,
	}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	rep := newReport(box, o)
	if err := f.startRegistry(); err != nil {
		return nil, nil, err
	}
	if err := f.pushImages(o, rep); err != nil {
		return nil, nil, err
	}
	if err := f.configureCove(); err != nil {
		return nil, nil, err
	}
	if err := f.setupPodman(o, rep); err != nil {
		return nil, nil, err
	}
	return f, rep, nil
}

// newReport starts the report.
func newReport(box *benchbox.Box, o options) *report {
	return &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Invocation: benchbox.Invocation("image"),
		Rounds:     o.n,
		Warmup:     o.warmup,
		Machine:    machine(box.Ctx, box.SB),
		Prefix:     benchbox.NsenterPrefix(box.Ctx, box.SB),
		Work:       box.Work,
		Ratios:     map[string]float64{},
	}
}

// startRegistry starts the registry, and a second one (other), on the
// host's 127.0.0.1 (the sandbox shares the host's network), storing their
// data in the work directory. They are stopped by close, or as soon as a
// signal ends the box's context.
func (f *fixture) startRegistry() error {
	benchbox.Progress("starting the registries")
	regs := make([]*registry.Registry, 2)
	for i, name := range []string{"registry", "registry-other"} {
		dir := filepath.Join(f.box.Work, name)
		err := mkdir(dir)
		if err == nil {
			regs[i], err = startQuiet(dir)
		}
		if err != nil {
			if i > 0 {
				regs[0].Close()
			}
			return err
		}
	}
	reg := regs[0]
	var once sync.Once
	f.stopReg = func() { once.Do(func() { regs[0].Close(); regs[1].Close() }) }
	go func() {
		<-f.box.Ctx.Done()
		f.stopReg()
	}()
	f.reg, f.other = reg, regs[1]
	f.refA, f.refB = reg.Addr+"/"+repoA, reg.Addr+"/"+repoB
	return nil
}

// startQuiet starts the registry with its output (an error line for every
// HEAD of a blob not yet pushed) in dir/registry.log instead of stderr:
// registry.Start hands the registry os.Stderr as it is at the call.
func startQuiet(dir string) (*registry.Registry, error) {
	path := filepath.Join(dir, "registry.log")
	log, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	stderr := os.Stderr
	os.Stderr = log
	reg, err := registry.Start(dir)
	os.Stderr = stderr
	log.Close() // the registry has its own descriptor
	if err != nil {
		out, _ := os.ReadFile(path)
		return nil, fmt.Errorf("%w\nregistry log:\n%s", err, benchbox.Tail(string(out), 20))
	}
	return reg, nil
}

// configureCove allows plain HTTP to the registry in the sandbox's
// /etc/cove/registries.toml (/etc is a private overlay).
func (f *fixture) configureCove() error {
	conf := "[[registry]]\nlocation = \"" + f.reg.Addr + "\"\ninsecure = true\n" +
		"[[registry]]\nlocation = \"" + f.other.Addr + "\"\ninsecure = true\n"
	_, err := f.inside(nil, "sh", "-c", `mkdir -p /etc/cove && printf '%s' "$1" > `+registriesTOML, "sh", conf)
	return err
}

// inside runs argv in the sandbox and returns its output.
func (f *fixture) inside(env []string, argv ...string) (string, error) {
	return benchbox.Inside(f.ctx(), f.sb(), 5*time.Minute, env, argv...)
}

// machine describes the machine, with podman's and skopeo's versions.
func machine(ctx context.Context, sb *sandbox.Sandbox) map[string]string {
	m := benchbox.Machine(ctx, sb)
	for _, tool := range []string{"podman", "skopeo", "crun"} {
		if out, err := exec.Command(tool, "--version").Output(); err == nil {
			m[tool] = benchbox.FirstLine(strings.TrimSpace(string(out)))
		}
	}
	if out, err := exec.Command(registry.Binary, "--version").Output(); err == nil {
		m["registry"] = strings.TrimSpace(string(out))
	}
	return m
}
