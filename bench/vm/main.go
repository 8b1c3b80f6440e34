// Command vm measures what cove adds to booting a small VM: the time from
// the exec of `cove run --rm VMSPEC` until the guest's first console line
// (COVE-GUEST-BOOTED) reaches cove's stdout, and until cove exits after the
// guest powered off, next to the identical QEMU command run directly. Both
// run inside one private systemd booted by tests/sandbox, interleaved
// round-robin. Each run is also split where QEMU creates its QMP socket
// (inotify), which separates what cove adds before QEMU runs from the
// guest's boot. It then measures the resident memory of QEMU for a 256 MiB
// guest idling under `cove run -d` (/proc/PID/status, by mapping from
// /proc/PID/smaps, and the unit's MemoryCurrent), stops it with `cove
// stop`, then starts -fleet VMs from one base image and as many from
// full copies of it (fleet.go), and checks that no QEMU of its own is
// left.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/vm -n 10
//	go run ./bench/vm -n 10 -json
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

type options struct {
	n, warmup       int
	fleet, fleetMiB int
	json, verbose   bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 10, "measured rounds")
	flag.IntVar(&o.warmup, "warmup", 2, "warm-up rounds (not counted)")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of a markdown table")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.IntVar(&o.fleet, "fleet", 10, "VMs started from one base image, and from full copies of it (0: skip)")
	flag.IntVar(&o.fleetMiB, "fleet-base", 256, "MiB of data written into the fleet's base image")
	flag.Parse()
	if o.n < 1 || o.warmup < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	rep, err := benchmark(o)
	if rep != nil {
		err = errors.Join(err, checkHost(rep))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if o.json {
		benchbox.WriteJSON(os.Stdout, rep)
		return
	}
	printMarkdown(os.Stdout, rep)
}

// benchmark sets everything up (setup.go), runs the rounds (boot.go) and
// the memory sample (memory.go), checks that no QEMU is left inside
// (leftovers.go), and shuts the sandbox down before it returns. The
// report (report.go) is nil if the sandbox did not boot.
func benchmark(o options) (*report, error) {
	g, err := buildGuest()
	if err != nil {
		return nil, err
	}
	box, err := benchbox.Setup(benchbox.Options{Declared: true, Verbose: o.verbose, BootTimeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	defer box.Close()
	rep := newReport(box, g, o)
	p, err := plan(box, rep)
	if err != nil {
		return rep, err
	}
	if err := measureBoots(box, p, rep); err != nil {
		return rep, err
	}
	benchbox.Progress("memory: booting an idle 256 MiB guest with cove run -d")
	rep.Memory, err = measureMemory(box.Ctx, box.SB, box.Cove, p.idleSpec, rep.TSCkHz)
	if err != nil {
		return rep, fmt.Errorf("memory: %w", err)
	}
	if o.fleet > 0 {
		if rep.Fleet, err = measureFleet(box, rep.Guest, o.fleet, o.fleetMiB); err != nil {
			return rep, fmt.Errorf("fleet: %w", err)
		}
	}
	if err := checkInside(box, rep); err != nil {
		return rep, err
	}
	benchbox.Progress("shutting the sandbox down")
	box.Close()
	return rep, nil
}
