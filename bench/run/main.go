// Command run measures how long it takes to start a container that runs
// /bin/true with cove, next to the same job done by systemd-run (a transient
// unit with RootDirectory= and PrivateNetwork=) and by podman, all inside one
// private systemd booted by tests/sandbox. The commands run interleaved
// round-robin, so that the noise of a shared machine hits all of them alike.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/run -n 30
//	go run ./bench/run -n 30 -json
//
// See docs/benchmarks.md for what is measured and the results.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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

// workPrefix starts the name of the benchmark's directory under /var/tmp.
const workPrefix = "cove-bench-"

// podmanImage is the name the rootfs is imported under.
const podmanImage = "localhost/bb"

// podmanRunRoot is podman's run root inside the sandbox (a private /run).
const podmanRunRoot = "/run/cove-bench-podman"

// cmdTimeout bounds every single command run inside the sandbox.
const cmdTimeout = 60 * time.Second

// bench is one command that is timed.
type bench struct {
	Key     string    `json:"key"`           // A, B, C, D
	Name    string    `json:"name"`          // cove, systemd-run, podman, nsenter floor
	Argv    []string  `json:"argv"`          // the command run inside the sandbox
	Env     []string  `json:"env,omitempty"` // added to the environment
	Samples []float64 `json:"samples_ms"`
	Median  float64   `json:"median_ms"`
	P90     float64   `json:"p90_ms"`
	Min     float64   `json:"min_ms"`
	Mean    float64   `json:"mean_ms"`
}

// report is the whole result, as printed with -json.
type report struct {
	Date        string             `json:"date"`
	Invocation  string             `json:"invocation"`
	Rounds      int                `json:"rounds"`
	Warmup      int                `json:"warmup_rounds"`
	Machine     map[string]string  `json:"machine"`
	Prefix      []string           `json:"nsenter_prefix"`
	Rootfs      string             `json:"rootfs"`
	Benches     []*bench           `json:"benches"`
	Ratios      map[string]float64 `json:"ratios"`
	PodmanSkip  string             `json:"podman_skipped,omitempty"`
	PodmanSetup string             `json:"podman_setup,omitempty"`
}

// options are the command-line flags.
type options struct {
	n, warmup     int
	json, verbose bool
	podman        bool   // include podman if installed
	podmanManager string // only this cgroup manager, if set
	podmanRuntime string // only this OCI runtime, if set
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 20, "measured rounds")
	flag.IntVar(&o.warmup, "warmup", 3, "warm-up rounds (not counted)")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of a markdown table")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.BoolVar(&o.podman, "podman", true, "include podman (C) if it is installed")
	flag.StringVar(&o.podmanManager, "podman-cgroup-manager", "", "use only this podman cgroup manager (systemd, cgroupfs; default: the first that works)")
	flag.StringVar(&o.podmanRuntime, "podman-runtime", "", "use only this OCI runtime for podman (crun, runc; default: the first that works)")
	flag.Parse()
	if o.n < 1 || o.warmup < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := benchmark(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchmark sets everything up, runs the rounds and prints the report.
func benchmark(o options) error {
	n, warmup := o.n, o.warmup
	if ok, why := sandbox.Usable(); !ok {
		return errors.New("cannot boot a private systemd here: " + why)
	}
	repo, err := moduleRoot()
	if err != nil {
		return err
	}
	sweepStale()
	work, unlock, err := makeWorkDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	defer unlock()

	progress("building cove")
	coveBin := filepath.Join(work, "cove")
	build := exec.Command("go", "build", "-o", coveBin, "./cmd/cove")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/cove: %v\n%s", err, out)
	}
	rootfs := filepath.Join(work, "rootfs")
	if err := sandbox.Rootfs(rootfs); err != nil {
		return err
	}

	progress("booting the sandbox")
	var logw io.Writer // Boot's errors quote the console's end anyway
	if o.verbose {
		logw = os.Stderr
	}
	// On SIGINT or SIGTERM the running command is killed; the sandbox
	// harness's own handler shuts the sandbox down. sweepStale removes the
	// work directory on the next run.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sb, err := sandbox.Boot(ctx, sandbox.Options{BootTimeout: 2 * time.Minute, Log: logw})
	if err != nil {
		return err
	}
	defer sb.Shutdown()

	rep := &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Invocation: "go run ./bench/run " + strings.Join(os.Args[1:], " "),
		Rounds:     n,
		Warmup:     warmup,
		Machine:    machine(ctx, sb),
		Prefix:     nsenterPrefix(ctx, sb),
		Rootfs:     rootfs,
		Ratios:     map[string]float64{},
	}
	benches := []*bench{
		{Key: "A", Name: "cove", Argv: []string{coveBin, "run", "--rm", "--rootfs", rootfs, "--network", "none", "--", "/bin/true"}},
		{Key: "B", Name: "systemd-run", Argv: []string{"systemd-run", "--wait", "--quiet", "-p", "RootDirectory=" + rootfs, "-p", "PrivateNetwork=yes", "/bin/true"}},
	}
	if !o.podman {
		rep.PodmanSkip = "podman: left out (-podman=false)"
	} else if _, err := exec.LookPath("podman"); err != nil {
		rep.PodmanSkip = "podman: not installed (apt-get install podman crun)"
		progress(rep.PodmanSkip)
	} else {
		progress("setting up podman")
		pb, setup, err := setupPodman(ctx, sb, work, rootfs, o.podmanManager, o.podmanRuntime)
		if err != nil {
			return err
		}
		benches = append(benches, pb)
		rep.PodmanSetup = setup
		progress("podman: " + setup)
	}
	benches = append(benches, &bench{Key: "D", Name: "nsenter floor", Argv: []string{"/bin/true"}})
	rep.Benches = benches

	for round := 0; round < warmup+n; round++ {
		if round == warmup {
			progress(fmt.Sprintf("warm-up done (%d rounds); measuring %d rounds", warmup, n))
		}
		for _, b := range benches {
			d, err := timeOnce(ctx, sb, b.Env, b.Argv)
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, b.Name, err)
			}
			if round >= warmup {
				b.Samples = append(b.Samples, d)
			}
		}
	}
	for _, b := range benches {
		summarize(b)
	}
	ratios(rep)

	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printMarkdown(os.Stdout, rep)
	return nil
}

// progress writes a line about what the benchmark is doing to stderr.
func progress(msg string) {
	fmt.Fprintf(os.Stderr, "bench: %s\n", msg)
}

// moduleRoot returns the directory of the cove module.
func moduleRoot() (string, error) {
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

// makeWorkDir creates the benchmark's directory under /var/tmp (visible in
// the sandbox) and locks it; a run that dies without cleaning up leaves it
// unlocked, for sweepStale.
func makeWorkDir() (dir string, unlock func(), err error) {
	dir, err = os.MkdirTemp("/var/tmp", workPrefix)
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

// sweepStale removes work directories of earlier runs that died (killed by
// a signal, after the sandbox harness shut their sandbox down).
func sweepStale() {
	dirs, _ := filepath.Glob("/var/tmp/" + workPrefix + "*")
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

// timeOnce runs argv inside the sandbox (stdio on /dev/null) and returns
// the wall-clock time of the whole nsenter invocation in milliseconds. On
// failure it runs the command again to show its output.
func timeOnce(ctx context.Context, sb *sandbox.Sandbox, env, argv []string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := sb.Command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		out, err2 := inside(ctx, sb, env, argv...)
		return 0, fmt.Errorf("%v; again: %v\nstdout: %s", err, err2, out)
	}
	return float64(d.Microseconds()) / 1000, nil
}

// inside runs argv in the sandbox, with env added to its environment, and
// returns its output; it fails unless argv exits 0.
func inside(ctx context.Context, sb *sandbox.Sandbox, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
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

// podmanConf is the containers.conf podman gets (CONTAINERS_CONF): the
// packaged /usr/share/containers/containers.conf without its one default
// sysctl, which crun cannot write because the sandbox's /proc/sys is
// read-only.
const podmanConf = `[containers]
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
  "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
default_sysctls = []
`

// setupPodman imports the rootfs as an image into a private podman store
// and finds podman settings that work in the sandbox: the systemd cgroup
// manager first (systemd runs there), then cgroupfs; crun, then runc;
// default ulimits, then ulimits within the sandbox's limits. manager and
// rt, if set, allow only that cgroup manager or runtime.
func setupPodman(ctx context.Context, sb *sandbox.Sandbox, work, rootfs, manager, rt string) (*bench, string, error) {
	conf := filepath.Join(work, "containers.conf")
	if err := os.WriteFile(conf, []byte(podmanConf), 0o644); err != nil {
		return nil, "", err
	}
	env := []string{"CONTAINERS_CONF=" + conf}
	store := []string{"podman", "--root", filepath.Join(work, "podman"), "--runroot", podmanRunRoot}
	imp := fmt.Sprintf("tar -C %s -c . | %s import - %s", rootfs, strings.Join(store, " "), podmanImage)
	if _, err := inside(ctx, sb, env, "sh", "-c", imp); err != nil {
		return nil, "", fmt.Errorf("podman import: %w", err)
	}
	managers, runtimes := []string{"systemd", "cgroupfs"}, []string{"crun", "runc"}
	if manager != "" {
		managers = []string{manager}
	}
	if rt != "" {
		runtimes = []string{rt}
	}
	ulimits := []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"}
	var tried []string
	for _, m := range managers {
		for _, r := range runtimes {
			if _, err := exec.LookPath(r); err != nil {
				tried = append(tried, r+": not installed")
				continue
			}
			for _, ul := range [][]string{nil, ulimits} {
				argv := append(append([]string(nil), store...), "--cgroup-manager", m, "--runtime", r,
					"run", "--rm", "--network=none")
				argv = append(append(argv, ul...), podmanImage, "/bin/true")
				_, err := inside(ctx, sb, env, argv...)
				setup := fmt.Sprintf("cgroup manager %s, runtime %s", m, r)
				if ul != nil {
					setup += ", ulimits nofile=20000 nproc=32768"
				}
				if err == nil {
					setup += ", no default sysctls (CONTAINERS_CONF)"
					if len(tried) > 0 {
						setup += "; failed before: " + strings.Join(tried, "; ")
					}
					return &bench{Key: "C", Name: "podman", Argv: argv, Env: env}, setup, nil
				}
				tried = append(tried, setup+" ("+firstLine(err.Error())+")")
			}
		}
	}
	return nil, "", fmt.Errorf("no podman setting worked:\n%s", strings.Join(tried, "\n"))
}

// firstLine returns s up to its first line break, shortened.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// machine describes the machine the benchmark ran on.
func machine(ctx context.Context, sb *sandbox.Sandbox) map[string]string {
	m := map[string]string{
		"cpus": fmt.Sprint(runtime.NumCPU()),
		"go":   runtime.Version(),
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m["kernel"] = unix.ByteSliceToString(u.Release[:])
	}
	if out, err := inside(ctx, sb, nil, "systemctl", "--version"); err == nil {
		m["systemd"], _, _ = strings.Cut(out, "\n")
	}
	if out, err := exec.Command("podman", "--version").Output(); err == nil {
		m["podman"] = strings.TrimSpace(string(out))
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

// nsenterPrefix is what sb.Command puts before a command.
func nsenterPrefix(ctx context.Context, sb *sandbox.Sandbox) []string {
	args := sb.Command(ctx, "CMD").Args
	return args[:len(args)-1]
}

// summarize computes median, p90 (nearest rank), min and mean.
func summarize(b *bench) {
	s := append([]float64(nil), b.Samples...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return
	}
	if n%2 == 1 {
		b.Median = s[n/2]
	} else {
		b.Median = (s[n/2-1] + s[n/2]) / 2
	}
	b.P90 = s[int(math.Ceil(0.9*float64(n)))-1]
	b.Min = s[0]
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	b.Mean = sum / float64(n)
}

// find returns the bench with key k, or nil.
func find(rep *report, k string) *bench {
	for _, b := range rep.Benches {
		if b.Key == k {
			return b
		}
	}
	return nil
}

// ratios compares the medians, as measured and net of the nsenter floor.
func ratios(rep *report) {
	a, b, c, d := find(rep, "A"), find(rep, "B"), find(rep, "C"), find(rep, "D")
	rep.Ratios["cove/systemd-run"] = a.Median / b.Median
	rep.Ratios["cove/systemd-run net of floor"] = (a.Median - d.Median) / (b.Median - d.Median)
	if c != nil {
		rep.Ratios["podman/cove"] = c.Median / a.Median
		rep.Ratios["podman/cove net of floor"] = (c.Median - d.Median) / (a.Median - d.Median)
	}
}

// printMarkdown writes the report as a markdown table with notes.
func printMarkdown(w io.Writer, rep *report) {
	fmt.Fprintf(w, "%d rounds after %d warm-up rounds, interleaved %s; %s UTC\n\n",
		rep.Rounds, rep.Warmup, order(rep), strings.Replace(rep.Date, "T", " ", 1))
	fmt.Fprintln(w, "| | command (inside the sandbox) | median | p90 | min |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|")
	for _, b := range rep.Benches {
		fmt.Fprintf(w, "| %s %s | `%s` | %.1f ms | %.1f ms | %.1f ms |\n",
			b.Key, b.Name, display(rep, append(append([]string(nil), b.Env...), b.Argv...)), b.Median, b.P90, b.Min)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| ratio of medians | as measured | net of the nsenter floor (D subtracted) |")
	fmt.Fprintln(w, "|---|---:|---:|")
	fmt.Fprintf(w, "| cove / systemd-run | %.2f× | %.2f× |\n",
		rep.Ratios["cove/systemd-run"], rep.Ratios["cove/systemd-run net of floor"])
	if _, ok := rep.Ratios["podman/cove"]; ok {
		fmt.Fprintf(w, "| podman / cove | %.2f× | %.2f× |\n",
			rep.Ratios["podman/cove"], rep.Ratios["podman/cove net of floor"])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- Each time is the wall clock of the whole `%s CMD` invocation from the host.\n",
		strings.Join(rep.Prefix, " "))
	fmt.Fprintf(w, "- R = `%s` (busybox rootfs from sandbox.Rootfs); cove = a fresh `go build ./cmd/cove`; IMAGE = `%s`, imported from R.\n",
		rep.Rootfs, podmanImage)
	if rep.PodmanSkip != "" {
		fmt.Fprintf(w, "- %s; C skipped.\n", rep.PodmanSkip)
	} else {
		fmt.Fprintf(w, "- podman: %s.\n", rep.PodmanSetup)
	}
	keys := make([]string, 0, len(rep.Machine))
	for k := range rep.Machine {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+": "+rep.Machine[k])
	}
	fmt.Fprintf(w, "- machine: %s.\n", strings.Join(parts, "; "))
	fmt.Fprintf(w, "- command: `%s`\n", rep.Invocation)
}

// order lists the bench keys in the order they run in a round.
func order(rep *report) string {
	var ks []string
	for _, b := range rep.Benches {
		ks = append(ks, b.Key)
	}
	return strings.Join(ks, " ") + " …"
}

// display shortens argv for the table: the rootfs as R, the work directory
// as $W.
func display(rep *report, argv []string) string {
	s := strings.Join(argv, " ")
	s = strings.ReplaceAll(s, rep.Rootfs, "R")
	s = strings.ReplaceAll(s, filepath.Dir(rep.Rootfs), "$W")
	return strings.ReplaceAll(s, podmanImage, "IMAGE")
}
