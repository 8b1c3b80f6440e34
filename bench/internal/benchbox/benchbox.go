// Package benchbox is what cove's benchmark programs share: a locked work
// directory under /var/tmp, a fresh build of cove, a busybox root
// filesystem, a private systemd booted by tests/sandbox, and helpers to run
// and time commands inside it and to summarise samples.
package benchbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
	SB        *sandbox.Sandbox
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

	Progress("building cove")
	b.Cove = filepath.Join(work, "cove")
	build := exec.Command("go", "build", "-o", b.Cove, "./cmd/cove")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/cove: %v\n%s", err, out)
	}
	b.Rootfs = filepath.Join(work, "rootfs")
	if err := sandbox.Rootfs(b.Rootfs); err != nil {
		return nil, err
	}
	opts := sandbox.Options{BootTimeout: o.BootTimeout}
	if o.Declared {
		gen := filepath.Join(work, "generators")
		if err := os.MkdirAll(gen, 0o755); err != nil {
			return nil, err
		}
		if err := os.Symlink(b.Cove, filepath.Join(gen, "cove-generator")); err != nil {
			return nil, err
		}
		opts.Overlays = []string{"/etc", "/var/lib"}
		opts.Binds = map[string]string{GeneratorDir: gen}
		b.Generator = GeneratorDir + "/cove-generator"
	}

	Progress("booting the sandbox")
	if o.Verbose { // else Boot's errors quote the console's end anyway
		opts.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	b.Ctx = ctx
	b.defer_(stop)
	sb, err := sandbox.Boot(ctx, opts)
	if err != nil {
		return nil, err
	}
	b.SB = sb
	b.defer_(func() { sb.Shutdown() })
	return b, nil
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

// Progress writes a line about what the benchmark is doing to stderr.
func Progress(msg string) {
	fmt.Fprintf(os.Stderr, "bench: %s\n", msg)
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

// TimeOnce runs argv inside the sandbox (stdio on /dev/null), bounded by
// timeout, and returns the wall-clock time of the whole nsenter invocation
// in milliseconds. On failure it runs the command again to show its
// output.
func TimeOnce(ctx context.Context, sb *sandbox.Sandbox, timeout time.Duration, env, argv []string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := sb.Command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		out, err2 := Inside(ctx, sb, timeout, env, argv...)
		return 0, fmt.Errorf("%v; again: %v\nstdout: %s", err, err2, out)
	}
	return Millis(d), nil
}

// Inside runs argv in the sandbox, with env added to its environment and
// bounded by timeout, and returns its output; it fails unless argv exits 0.
func Inside(ctx context.Context, sb *sandbox.Sandbox, timeout time.Duration, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := sb.Command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// Millis converts d to milliseconds with microsecond resolution.
func Millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// FirstLine returns s up to its first line break, shortened.
func FirstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Machine describes the machine a benchmark runs on: CPUs, Go, kernel,
// the sandbox's systemd and the CPU model.
func Machine(ctx context.Context, sb *sandbox.Sandbox) map[string]string {
	m := map[string]string{
		"cpus": fmt.Sprint(runtime.NumCPU()),
		"go":   runtime.Version(),
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m["kernel"] = unix.ByteSliceToString(u.Release[:])
	}
	if out, err := Inside(ctx, sb, CmdTimeout, nil, "systemctl", "--version"); err == nil {
		m["systemd"], _, _ = strings.Cut(out, "\n")
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// MachineLine renders m as "k: v; k: v" in key order.
func MachineLine(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+": "+m[k])
	}
	return strings.Join(parts, "; ")
}

// NsenterPrefix is what sb.Command puts before a command.
func NsenterPrefix(ctx context.Context, sb *sandbox.Sandbox) []string {
	args := sb.Command(ctx, "CMD").Args
	return args[:len(args)-1]
}

// Stats summarise samples.
type Stats struct {
	Median, P90, Min, Mean float64
}

// Summarize computes median, p90 (nearest rank), min and mean; all zero
// without samples.
func Summarize(samples []float64) Stats {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return Stats{}
	}
	var st Stats
	if n%2 == 1 {
		st.Median = s[n/2]
	} else {
		st.Median = (s[n/2-1] + s[n/2]) / 2
	}
	st.P90 = s[int(math.Ceil(0.9*float64(n)))-1]
	st.Min = s[0]
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	st.Mean = sum / float64(n)
	return st
}
