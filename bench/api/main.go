// Command api measures cove's socket-activated API helper inside one
// private systemd booted by tests/sandbox: the first response after the
// helper has exited (cold), request latency with the helper running
// (warm), throughput with 50 concurrent clients, and `docker ps` against
// cove next to `docker ps` against `podman system service`, cold and
// warm, interleaved round-robin.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/api -n 30
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
	n         int           // rounds of each interleaved command measurement
	warm      int           // sequential warm requests per endpoint
	clients   int           // concurrent clients for throughput
	duration  time.Duration // of each throughput run
	workloads int           // running containers on each side
	podman    bool
	verbose   bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 20, "rounds of the cold and docker ps measurements")
	flag.IntVar(&o.warm, "warm", 2000, "sequential warm requests per endpoint")
	flag.IntVar(&o.clients, "clients", 50, "concurrent clients in the throughput runs")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each throughput run")
	flag.IntVar(&o.workloads, "workloads", 10, "running containers for cove (and podman) to list")
	flag.BoolVar(&o.podman, "podman", true, "compare docker ps against podman system service, if podman is installed")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.Parse()
	if o.n < 1 || o.warm < 1 || o.clients < 1 || o.workloads < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run sets everything up (setup.go), measures (measure.go) and prints the
// report (report.go).
func run(o options) error {
	box, err := benchbox.Setup(benchbox.Options{Declared: true, BootTimeout: 2 * time.Minute, Verbose: o.verbose})
	if err != nil {
		return err
	}
	defer box.Close()
	rep := &report{machine: benchbox.MachineLine(benchbox.Machine(box.Ctx, box.SB))}
	benchbox.Progress("installing cove-api.socket and starting containers")
	if err := setupCove(box, o.workloads); err != nil {
		return err
	}
	if err := measure(box, o, rep); err != nil {
		return err
	}
	printReport(os.Stdout, rep, o)
	return nil
}
