// Command apply measures cove's declared-workload machinery inside one
// private systemd booted by tests/sandbox the way the integration tests
// boot it (/etc and /var/lib private overlays, cove installed as
// cove-generator in /etc/systemd/system-generators):
//
//  1. the generator: `cove-generator OUTDIR` with 0 and with S specs
//     (default 1000) in /etc/cove, and `systemctl daemon-reload` (which
//     runs it) with 0 and S specs present;
//  2. `cove apply FILE` of one changed spec on a host with K other
//     declared, running workloads (default K = 0, 100, 1000), three
//     times a round: its memory limit alternates (systemd sets it on the
//     loaded unit: no reload, no restart), then an environment variable
//     changes (the launcher's configuration file and a restart, no
//     reload), then its stop timeout alternates (a change of the unit: a
//     reload and a restart); next to `cove diff FILE`, `systemctl
//     daemon-reload`, `systemctl restart` of the same unit and the
//     generator at the same K, to show where apply's time goes;
//  3. cleanup: `cove apply --prune EMPTYDIR`, then the sandbox is shut
//     down and the program checks that nothing of it is left.
//
// Within each phase the commands run interleaved round-robin, so that the
// noise of a shared machine hits all of them alike. systemd goes on
// working for a while after it answers a daemon-reload (with many units
// loaded, up to a second here), so the program waits until the sandbox's
// systemd has used no CPU for 200 ms before a reload, an apply and the
// "idle" restart; the restart timed right after a reload shows what that
// leftover work costs the next job.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/apply
//	go run ./bench/apply -n 15 -gen-n 20 -specs 1000 -ks 0,100,1000 -json
//
// See docs/benchmarks.md for what is measured and the results.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// options are the command-line flags.
type options struct {
	n, genN, warmup, specs int
	ks                     []int
	json, verbose          bool
	jsonFile               string
	perfDir                string // profile systemd's daemon-reload at the last K into it ("": no)
}

func main() {
	var o options
	var ks string
	flag.IntVar(&o.n, "n", 15, "measured rounds of phase 2 at each K")
	flag.IntVar(&o.genN, "gen-n", 20, "measured rounds of phase 1 (generator, daemon-reload)")
	flag.IntVar(&o.warmup, "warmup", 2, "warm-up rounds before each measured series (not counted)")
	flag.IntVar(&o.specs, "specs", 1000, "specs in /etc/cove for phase 1")
	flag.StringVar(&ks, "ks", "0,100,1000", "numbers of other declared workloads for phase 2, ascending, at most -specs")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of markdown tables")
	flag.StringVar(&o.jsonFile, "json-file", "", "also write the results as JSON to this file")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.StringVar(&o.perfDir, "perf", "", "also record systemd with perf during one daemon-reload at the last K, reports into this directory")
	flag.Parse()
	var err error
	o.ks, err = parseKs(ks, o.specs)
	if err != nil || o.n < 1 || o.genN < 1 || o.warmup < 0 || o.specs < 1 || flag.NArg() > 0 {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		flag.Usage()
		os.Exit(2)
	}
	if err := benchmark(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseKs parses the -ks list.
func parseKs(s string, max int) ([]int, error) {
	var ks []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 0 || k > max || (len(ks) > 0 && k <= ks[len(ks)-1]) {
			return nil, fmt.Errorf("-ks %q: want ascending numbers from 0 to -specs (%d)", s, max)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// benchmark sets everything up (setup.go), runs the phases (generator.go,
// apply.go, cleanup.go), shuts the sandbox down and checks what is left
// (cleanup.go), and prints the report (report.go).
func benchmark(o options) error {
	box, err := benchbox.Setup(benchbox.Options{Verbose: o.verbose, BootTimeout: 3 * time.Minute, Declared: true})
	if err != nil {
		return err
	}
	defer box.Close() // Close is idempotent: teardown closes it first
	b, rep, err := setup(box, o)
	if err != nil {
		return err
	}
	if err := b.phases(rep); err != nil {
		return err
	}
	rep.LoadEnd = loadavg()
	b.teardown(rep.Cleanup)
	return output(o, rep)
}

// phases runs the three phases.
func (b *bench) phases(rep *report) (err error) {
	if rep.Gen, err = b.generatorPhase(); err != nil {
		return err
	}
	if err := b.declareTarget(); err != nil {
		return err
	}
	for i, k := range b.o.ks {
		prev := 0
		if i > 0 {
			prev = b.o.ks[i-1]
		}
		kp, err := b.applyPhase(prev, k)
		if err != nil {
			return err
		}
		rep.Ks = append(rep.Ks, kp)
	}
	if b.o.perfDir != "" {
		if err := b.profileReload(b.o.perfDir, b.o.ks[len(b.o.ks)-1]); err != nil {
			return err
		}
	}
	rep.Cleanup, err = b.prune()
	return err
}

// output writes the report: as JSON to -json-file if set, and as JSON or
// markdown to stdout.
func output(o options, rep *report) error {
	if o.jsonFile != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(o.jsonFile, append(data, '\n'), 0o644)
		}
		if err != nil {
			return err
		}
	}
	if o.json {
		return benchbox.WriteJSON(os.Stdout, rep)
	}
	printMarkdown(os.Stdout, rep)
	return nil
}
