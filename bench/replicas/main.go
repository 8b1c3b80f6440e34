// Command replicas measures a replicated workload (service.replicas)
// inside one private systemd booted as bench/apply boots it: for each
// count K, `cove apply` of one spec with replicas = K (busybox `sleep`,
// read-only rootfs) until every instance runs, `cove ps` with the K
// running, `cove scale` down to K/2 and back up, and `cove apply
// --prune` of it; and what K running instances cost in memory: the
// machine's MemAvailable before and after, systemd's (the sandbox's PID 1)
// resident memory, the instances' cgroups against the RSS of their
// processes.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/replicas
//	go run ./bench/replicas -counts 10,100,200,1000
//
// See docs/benchmarks.md for the results.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

func main() {
	counts := flag.String("counts", "10,100,200", "replica counts to measure, in order")
	verbose := flag.Bool("v", false, "copy the sandbox's console output to stderr")
	flag.Parse()
	var ks []int
	for _, f := range strings.Split(*counts, ",") {
		k, err := strconv.Atoi(f)
		if err != nil || k < 2 || k > 1000 || flag.NArg() > 0 {
			fmt.Fprintf(os.Stderr, "bench: -counts %q: want numbers from 2 to 1000\n", *counts)
			os.Exit(2)
		}
		ks = append(ks, k)
	}
	if err := run(ks, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run boots the box, measures each count and prints the table.
func run(ks []int, verbose bool) error {
	box, err := benchbox.Setup(benchbox.Options{Verbose: verbose, BootTimeout: 3 * time.Minute, Declared: true})
	if err != nil {
		return err
	}
	defer box.Close()
	m := &meter{box: box, dir: filepath.Join(box.Work, "replicas"), empty: filepath.Join(box.Work, "empty")}
	for _, d := range []string{m.dir, m.empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	fmt.Printf("`go run ./bench/replicas -counts %s`, %s UTC\n\n", joinInts(ks), time.Now().UTC().Format("2006-01-02 15:04"))
	fmt.Println("| K | apply (all running) | per instance | cove ps | scale to K/2 | scale back to K | prune | MemAvailable drop per instance | systemd RSS per instance | cgroup memory per instance | payload RSS per instance |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, k := range ks {
		r, err := m.measure(k)
		if err != nil {
			return err
		}
		fmt.Println(r.row())
	}
	fmt.Printf("\n- machine: %s\n", benchbox.MachineLine(benchbox.Machine(box.Ctx, box.SB)))
	return nil
}

// joinInts writes ks as -counts takes them.
func joinInts(ks []int) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = strconv.Itoa(k)
	}
	return strings.Join(s, ",")
}
