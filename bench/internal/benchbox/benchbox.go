// Package benchbox is what cove's benchmark programs share. Set-up
// (benchbox.go): a locked work directory under /var/tmp, a fresh build of
// cove, a busybox root filesystem, a private systemd booted by
// tests/sandbox. Measurement (inside.go, measure.go): running and timing
// commands inside it, warm-up and measured rounds, summarising samples.
// Reporting (report.go): progress lines, the machine, the command line
// and the -json output. Podman next to cove (podman.go): a private store,
// the containers.conf a sandbox needs, settings that work. Networks
// (network.go): the closed world of a sandbox with its own network
// namespace, and cove's network units in it.
package benchbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cove-project/cove/tests/sandbox"
)

// WorkPrefix starts the name of a benchmark's directory under /var/tmp.
const WorkPrefix = "cove-bench-"

// CmdTimeout is the usual bound of a single command run inside the sandbox.
const CmdTimeout = 60 * time.Second

// GeneratorDir is where a Declared box installs cove as cove-generator,
// inside the sandbox (as tests/main_test.go does).
const GeneratorDir = "/etc/systemd/system-generators"

// Options say how to set up a Box.
type Options struct {
	// Verbose copies the sandbox's console output to stderr.
	Verbose bool
	// BootTimeout bounds the sandbox's boot.
	BootTimeout time.Duration
	// Declared boots the sandbox the way tests/main_test.go does for
	// declared workloads: /etc and /var/lib are private overlays, and a
	// directory holding a cove-generator symlink to the built cove is bound
	// at GeneratorDir, so every daemon-reload runs cove's generator.
	Declared bool
	// Overlays are further host directories that get a private writable
	// overlay inside the sandbox (sandbox.Options.Overlays), e.g. "/etc"
	// and "/var/lib"; with Declared they are added to its two.
	Overlays []string
	// Dirs are paths inside the sandbox (e.g. "/var/lib/cove/images")
	// over each of which an empty directory of the work directory is
	// bind-mounted: a real file system, where an overlay's directory
	// cannot hold overlayfs whiteouts or trusted.* xattrs. Box.Dirs maps
	// each to its host directory. A path outside /run, /tmp and the
	// overlays must exist on the host.
	Dirs []string
	// PrivateNetwork boots the sandbox in a network namespace of its own
	// with only lo (sandbox.Options.PrivateNetwork): the closed world of
	// shared docs/network-testing.md (see network.go).
	PrivateNetwork bool
}

// Box is a booted benchmark sandbox and what it needs on the host.
type Box struct {
	Repo   string // the cove module's root
	Work   string // the work directory under /var/tmp (visible inside)
	Cove   string // the cove binary, built fresh into Work
	Rootfs string // a busybox rootfs in Work
	// Generator is the cove-generator symlink's path inside the sandbox
	// (set with Options.Declared); running it makes argv[0] cove-generator.
	Generator string
	// Dirs maps each of Options.Dirs to its directory on the host.
	Dirs map[string]string
	SB   *sandbox.Sandbox
	// Ctx ends on SIGINT or SIGTERM; the sandbox harness's own handler
	// then shuts the sandbox down, and SweepStale removes the work
	// directory on the next run.
	Ctx context.Context

	closers []func() // run in reverse order by Close
}

// Setup checks that a sandbox can run here, builds cove and the rootfs and
// boots the sandbox. The caller must Close the box. Progress goes to
// stderr.
func Setup(o Options) (_ *Box, err error) {
	if ok, why := sandbox.Usable(); !ok {
		return nil, errors.New("cannot boot a private systemd here: " + why)
	}
	repo, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	SweepStale()
	work, unlock, err := MakeWorkDir()
	if err != nil {
		return nil, err
	}
	b := &Box{Repo: repo, Work: work}
	b.defer_(func() { os.RemoveAll(work) })
	b.defer_(unlock)
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if err := b.build(); err != nil {
		return nil, err
	}
	opts := sandbox.Options{BootTimeout: o.BootTimeout, PrivateNetwork: o.PrivateNetwork}
	if o.Declared {
		if err := b.declare(&opts); err != nil {
			return nil, err
		}
	}
	if err := b.extra(&opts, o); err != nil {
		return nil, err
	}
	if o.Verbose { // else Boot's errors quote the console's end anyway
		opts.Log = os.Stderr
	}
	if err := b.boot(opts); err != nil {
		return nil, err
	}
	return b, nil
}

// build builds cove, the stage and inside binaries beside it
// (scripts/build) and the rootfs into the work directory.
func (b *Box) build() error {
	Progress("building cove")
	b.Cove = filepath.Join(b.Work, "cove")
	build := exec.Command("bash", "scripts/build", b.Work) // as shipped
	build.Dir = b.Repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/build %s: %v\n%s", b.Work, err, out)
	}
	b.Rootfs = filepath.Join(b.Work, "rootfs")
	return sandbox.Rootfs(b.Rootfs)
}

// declare sets opts up for declared workloads (see Options.Declared).
func (b *Box) declare(opts *sandbox.Options) error {
	gen := filepath.Join(b.Work, "generators")
	if err := os.MkdirAll(gen, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(b.Cove, filepath.Join(gen, "cove-generator")); err != nil {
		return err
	}
	opts.Overlays = []string{"/etc", "/var/lib"}
	opts.Binds = map[string]string{GeneratorDir: gen}
	b.Generator = GeneratorDir + "/cove-generator"
	return nil
}

// extra adds Options.Overlays and Options.Dirs to opts.
func (b *Box) extra(opts *sandbox.Options, o Options) error {
	for _, d := range o.Overlays {
		if !slices.Contains(opts.Overlays, d) {
			opts.Overlays = append(opts.Overlays, d)
		}
	}
	if len(o.Dirs) > 0 && opts.Binds == nil {
		opts.Binds = map[string]string{}
	}
	b.Dirs = map[string]string{}
	for i, target := range o.Dirs {
		host := filepath.Join(b.Work, "dirs", fmt.Sprintf("%d-%s", i, filepath.Base(target)))
		if err := os.MkdirAll(host, 0o700); err != nil {
			return err
		}
		opts.Binds[target] = host
		b.Dirs[target] = host
	}
	return nil
}

// boot boots the sandbox, with b.Ctx ending on SIGINT or SIGTERM.
func (b *Box) boot(opts sandbox.Options) error {
	Progress("booting the sandbox")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	b.Ctx = ctx
	b.defer_(stop)
	sb, err := sandbox.Boot(ctx, opts)
	if err != nil {
		return err
	}
	b.SB = sb
	b.defer_(func() { sb.Shutdown() })
	return nil
}

// defer_ registers f to run when the box is closed.
func (b *Box) defer_(f func()) { b.closers = append(b.closers, f) }

// Close shuts the sandbox down and removes the work directory.
func (b *Box) Close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// ModuleRoot returns the directory of the cove module.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the cove module (the repository root)")
	}
	return filepath.Dir(mod), nil
}

// MakeWorkDir creates a benchmark's directory under /var/tmp (visible in
// the sandbox) and locks it; a run that dies without cleaning up leaves it
// unlocked, for SweepStale.
func MakeWorkDir() (dir string, unlock func(), err error) {
	dir, err = os.MkdirTemp("/var/tmp", WorkPrefix)
	if err != nil {
		return "", nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "owned"), nil, 0o644)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("work directory: %w", err)
	}
	return dir, func() { f.Close() }, nil
}

// SweepStale removes work directories of earlier runs that died (killed by
// a signal, after the sandbox harness shut their sandbox down).
func SweepStale() {
	dirs, _ := filepath.Glob("/var/tmp/" + WorkPrefix + "*")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "owned")); err != nil {
			continue
		}
		f, err := os.Open(filepath.Join(d, "lock"))
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(d)
		}
		f.Close()
	}
}
