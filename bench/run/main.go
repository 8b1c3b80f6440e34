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
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/sandbox"
)

// podmanImage is the name the rootfs is imported under.
const podmanImage = "localhost/bb"

// podmanRunRoot is podman's run root inside the sandbox (a private /run).
const podmanRunRoot = "/run/cove-bench-podman"

// cmdTimeout bounds every single command run inside the sandbox.
const cmdTimeout = benchbox.CmdTimeout

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
	// On SIGINT or SIGTERM the running command is killed (box.Ctx ends);
	// the sandbox harness's own handler shuts the sandbox down.
	// benchbox.SweepStale removes the work directory on the next run.
	box, err := benchbox.Setup(benchbox.Options{Verbose: o.verbose, BootTimeout: 2 * time.Minute})
	if err != nil {
		return err
	}
	defer box.Close()
	ctx, sb, work, rootfs, coveBin := box.Ctx, box.SB, box.Work, box.Rootfs, box.Cove

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
func progress(msg string) { benchbox.Progress(msg) }

// timeOnce runs argv inside the sandbox (stdio on /dev/null) and returns
// the wall-clock time of the whole nsenter invocation in milliseconds. On
// failure it runs the command again to show its output.
func timeOnce(ctx context.Context, sb *sandbox.Sandbox, env, argv []string) (float64, error) {
	return benchbox.TimeOnce(ctx, sb, cmdTimeout, env, argv)
}

// inside runs argv in the sandbox, with env added to its environment, and
// returns its output; it fails unless argv exits 0.
func inside(ctx context.Context, sb *sandbox.Sandbox, env []string, argv ...string) (string, error) {
	return benchbox.Inside(ctx, sb, cmdTimeout, env, argv...)
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
func firstLine(s string) string { return benchbox.FirstLine(s) }

// machine describes the machine the benchmark ran on.
func machine(ctx context.Context, sb *sandbox.Sandbox) map[string]string {
	m := benchbox.Machine(ctx, sb)
	if out, err := exec.Command("podman", "--version").Output(); err == nil {
		m["podman"] = strings.TrimSpace(string(out))
	}
	return m
}

// nsenterPrefix is what sb.Command puts before a command.
func nsenterPrefix(ctx context.Context, sb *sandbox.Sandbox) []string {
	return benchbox.NsenterPrefix(ctx, sb)
}

// summarize computes median, p90 (nearest rank), min and mean.
func summarize(b *bench) {
	st := benchbox.Summarize(b.Samples)
	b.Median, b.P90, b.Min, b.Mean = st.Median, st.P90, st.Min, st.Mean
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
	fmt.Fprintf(w, "- machine: %s.\n", benchbox.MachineLine(rep.Machine))
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
