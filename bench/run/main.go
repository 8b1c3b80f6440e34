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
//	go run ./bench/run -n 30 -check 1.3   # exit 3 if cove / systemd-run > 1.3
//	go run ./bench/run -n 10 -phases 20   # and where the time of a start goes
//
// See docs/benchmarks.md for what is measured and the results.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// options are the command-line flags.
type options struct {
	n, warmup     int
	json, verbose bool
	podman        bool    // include podman if installed
	podmanManager string  // only this cgroup manager, if set
	podmanRuntime string  // only this OCI runtime, if set
	check         float64 // > 0: fail when cove / systemd-run exceeds it
	phases        int     // > 0: trace this many runs of A and B with perf
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
	flag.Float64Var(&o.check, "check", 0, "fail (exit 3) when the median ratio cove / systemd-run exceeds this, e.g. 1.3; a guard to run before and after a change to the start path")
	flag.IntVar(&o.phases, "phases", 0, "after the rounds, trace this many more runs of A and B with perf's scheduler tracepoints and print where their time goes")
	flag.Parse()
	if o.n < 1 || o.warmup < 0 || o.phases < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	err := benchmark(o)
	var over errOverBudget
	switch {
	case errors.As(err, &over):
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(3)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// errOverBudget is -check's failure: the ratio and the limit.
type errOverBudget struct{ ratio, limit float64 }

func (e errOverBudget) Error() string {
	return fmt.Sprintf("-check: cove / systemd-run = %.2f×, over the limit %.2f×", e.ratio, e.limit)
}

// benchmark sets everything up (setup.go), runs the rounds (measure.go)
// and prints the report (report.go).
func benchmark(o options) error {
	// On SIGINT or SIGTERM the running command is killed (box.Ctx ends);
	// the sandbox harness's own handler shuts the sandbox down.
	// benchbox.SweepStale removes the work directory on the next run.
	// /var/lib is the sandbox's own: E's user namespace records (cove
	// writes them under /var/lib/cove) stay in the work directory.
	box, err := benchbox.Setup(benchbox.Options{Verbose: o.verbose, BootTimeout: 2 * time.Minute, Overlays: []string{"/var/lib"}})
	if err != nil {
		return err
	}
	defer box.Close()
	rep, err := setup(box, o)
	if err != nil {
		return err
	}
	if err = measure(box.Ctx, box.SB, rep); err != nil {
		return err
	}
	if o.phases > 0 {
		if err = tracePhases(box.Ctx, box.SB, rep, box.Work, o.phases); err != nil {
			return err
		}
	}
	if o.json {
		err = benchbox.WriteJSON(os.Stdout, rep)
	} else {
		printMarkdown(os.Stdout, rep)
	}
	if r := rep.Ratios["cove/systemd-run"]; err == nil && o.check > 0 && r > o.check {
		return errOverBudget{r, o.check}
	}
	return err
}
