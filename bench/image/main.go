// Command image measures cove's OCI images next to skopeo and podman, all
// inside one private systemd booted by tests/sandbox, against a registry
// (tests/registry, Debian's docker-registry) on 127.0.0.1:
//
//   - pull: a multi-layer image with cove pull, podman pull and skopeo
//     copy, each into an empty store every round;
//   - run: a container of that image running /bin/true with cove run --rm,
//     podman run --rm, and systemd-run with RootDirectory= on an unpacked
//     copy of the image's tree;
//   - push: that image from the store to an empty repository of the
//     registry with cove push, podman push and skopeo copy (from a dir:
//     copy of its compressed blobs);
//   - disk: what cove's store holds for two images that share layers.
//
// The commands of the pull and of the run part run interleaved
// round-robin, so that the noise of a shared machine hits all of them
// alike.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/image -n 10
//	go run ./bench/image -n 10 -json
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
	n, warmup        int
	json, verbose    bool
	podman           bool // include podman if installed
	layers, layerMiB int  // the test image's random layers and their size
	writer           bool // a process writes beside the containers' layers during the run part
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 10, "measured rounds (of the pull and of the run part)")
	flag.IntVar(&o.warmup, "warmup", 3, "warm-up rounds (not counted)")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of markdown tables")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.BoolVar(&o.podman, "podman", true, "include podman if it is installed")
	flag.IntVar(&o.layers, "layers", 4, "random-data layers above the busybox layer")
	flag.IntVar(&o.layerMiB, "layer-mib", 8, "MiB of random data in each of those layers (files of 1 MiB)")
	flag.BoolVar(&o.writer, "writer", false, "during the run part, keep writing (without syncing) to a file on the containers' file system, as a busy host does")
	flag.Parse()
	if o.n < 1 || o.warmup < 0 || o.layers < 1 || o.layerMiB < 1 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := benchmark(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchmark sets everything up (setup.go, images.go, podman.go), runs the
// four parts (measure.go, phases.go, push.go, disk.go) and prints the report
// (report.go).
func benchmark(o options) error {
	// On SIGINT or SIGTERM the running command is killed (box.Ctx ends),
	// the registry is stopped, and the sandbox harness's own handler shuts
	// the sandbox down; benchbox.SweepStale removes the work directory
	// (with the registry's data) on the next run.
	box, err := benchbox.Setup(benchbox.Options{
		Verbose:     o.verbose,
		BootTimeout: 2 * time.Minute,
		Overlays:    []string{"/etc", "/var/lib"},
		Dirs:        []string{storeDir, containersDir},
	})
	if err != nil {
		return err
	}
	defer box.Close()
	f, rep, err := setup(box, o)
	if err != nil {
		return err
	}
	defer f.close()
	if err := measure(f, rep); err != nil {
		return err
	}
	if o.json {
		return benchbox.WriteJSON(os.Stdout, rep)
	}
	printMarkdown(os.Stdout, rep)
	return nil
}

// measure runs the four parts.
func measure(f *fixture, rep *report) error {
	if err := measurePull(f, rep); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if err := measureRun(f, rep); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if err := measurePush(f, rep); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if err := measureDisk(f, rep); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	return nil
}
