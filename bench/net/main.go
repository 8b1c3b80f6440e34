// Command net measures cove's container networking next to podman's
// bridge network (netavark) and the loopback floor, all inside one private
// systemd booted by tests/sandbox in a network namespace of its own (the
// closed world of shared docs/network-testing.md, asserted before, during
// and after the run):
//
//   - TCP request/response latency between two containers on one network;
//   - bulk TCP throughput between two containers;
//   - new connections per second through a published port;
//   - the start time that a network adds to `run --rm … /bin/true`.
//
// The traffic is made by a small static Go program (bench/net/echo)
// built into the busybox rootfs that both cove and podman run (podman
// with --rootfs, so no image is pulled). The systems run interleaved
// round-robin, so that the noise of a shared machine hits all of them
// alike; the report gives medians over the rounds.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/net -n 10
//	go run ./bench/net -n 10 -json
//
// See docs/benchmarks.md for what is measured and the results.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// options are the command-line flags.
type options struct {
	n, warmup     int
	rr, size      int           // round trips per round, bytes each way
	bulk          time.Duration // sending time per bulk sample
	conns         int           // connections per round
	json, verbose bool
	podman        bool // include podman if installed
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 10, "measured rounds")
	flag.IntVar(&o.warmup, "warmup", 2, "warm-up rounds (not counted)")
	flag.IntVar(&o.rr, "rr", 2000, "request/response round trips per round and system")
	flag.IntVar(&o.size, "size", 1, "bytes of each request and each response")
	flag.DurationVar(&o.bulk, "bulk", time.Second, "sending time of each bulk throughput sample")
	flag.IntVar(&o.conns, "conns", 500, "connections per round and system through the published port")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of markdown tables")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.BoolVar(&o.podman, "podman", true, "include podman if it is installed")
	flag.Parse()
	if o.n < 1 || o.warmup < 0 || o.rr < 1 || o.size < 1 || o.conns < 1 || o.bulk <= 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := benchmark(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchmark boots the sandbox, sets the systems up (setup.go), runs the
// rounds (measure.go) and prints the report (report.go).
func benchmark(o options) error {
	// On SIGINT or SIGTERM the running command is killed (box.Ctx ends)
	// and the sandbox harness shuts the sandbox down, taking its network
	// namespaces with it; benchbox.SweepStale removes the work directory
	// on the next run.
	box, err := benchbox.Setup(benchbox.Options{
		Verbose:        o.verbose,
		BootTimeout:    2 * time.Minute,
		Declared:       true, // /etc overlay for the network units; cove's generator
		PrivateNetwork: true,
	})
	if err != nil {
		return err
	}
	defer box.Close()
	f := &fixture{box: box, o: o}
	defer f.close()
	rep, err := f.setup()
	if err != nil {
		return err
	}
	if err := f.measure(rep); err != nil {
		return err
	}
	if err := f.teardown(rep); err != nil {
		return err
	}
	if o.json {
		return benchbox.WriteJSON(os.Stdout, rep)
	}
	printMarkdown(os.Stdout, rep)
	return nil
}
