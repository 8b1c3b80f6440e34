package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// result is one run of a command: the client's JSON fields (p50_us,
// p99_us, mean_us, max_us, mb_per_s, per_s, …) or, for a start, "ms".
type result map[string]float64

// series is one system's command in one test and its results per round.
type series struct {
	Test    string   `json:"test"`   // start, rr, bulk, conn, conn-outside
	System  string   `json:"system"` // cove, podman, loopback floor, …
	Path    string   `json:"path,omitempty"`
	Argv    []string `json:"argv"` // run inside the sandbox
	Env     []string `json:"env,omitempty"`
	Results []result `json:"results"` // one per measured round
	Median  result   `json:"median"`  // of each field over the rounds
	Min     result   `json:"min"`
	Max     result   `json:"max"`
}

// report is the whole result, as printed with -json.
type report struct {
	Date        string             `json:"date"`
	Invocation  string             `json:"invocation"`
	Rounds      int                `json:"rounds"`
	Warmup      int                `json:"warmup_rounds"`
	RR          int                `json:"rr_round_trips"`
	Size        int                `json:"rr_bytes"`
	Bulk        string             `json:"bulk_duration"`
	Conns       int                `json:"connections"`
	Machine     map[string]string  `json:"machine"`
	Prefix      []string           `json:"nsenter_prefix"`
	Rootfs      string             `json:"rootfs"`
	Addrs       map[string]string  `json:"addresses"`
	Series      []*series          `json:"series"`
	Ratios      map[string]float64 `json:"ratios"`
	PodmanSkip  string             `json:"podman_skipped,omitempty"`
	PodmanSetup string             `json:"podman_setup,omitempty"`
	ClosedWorld []string           `json:"closed_world_held"` // when the check passed
	LinksLeft   []string           `json:"links_left"`        // in the sandbox after the teardown
}

// newReport starts the report of f's run.
func newReport(f *fixture) *report {
	m := benchbox.Machine(f.box.Ctx, f.box.SB)
	for _, v := range [][]string{{"podman", "--version"}, {"netavark", "--version"}, {"crun", "--version"}} {
		path := v[0]
		if v[0] == "netavark" {
			path = "/usr/lib/podman/netavark"
		}
		if out, err := exec.Command(path, v[1:]...).Output(); err == nil {
			m[v[0]] = benchbox.FirstLine(strings.TrimSpace(string(out)))
		}
	}
	m["load average at the start"] = loadavg()
	return &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Invocation: benchbox.Invocation("net"),
		Rounds:     f.o.n, Warmup: f.o.warmup,
		RR: f.o.rr, Size: f.o.size, Bulk: f.o.bulk.String(), Conns: f.o.conns,
		Machine: m,
		Prefix:  benchbox.NsenterPrefix(f.box.Ctx, f.box.SB),
		Rootfs:  f.box.Rootfs,
		Ratios:  map[string]float64{},
	}
}

// loadavg is the first three fields of /proc/loadavg: how busy the
// shared machine was.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// of returns the series of test, in the order they were added.
func (rep *report) of(test string) []*series {
	var ss []*series
	for _, s := range rep.Series {
		if s.Test == test {
			ss = append(ss, s)
		}
	}
	return ss
}

// find returns the series of test and system, or nil.
func (rep *report) find(test, system string) *series {
	for _, s := range rep.of(test) {
		if s.System == system {
			return s
		}
	}
	return nil
}

// printMarkdown writes the report as markdown tables with notes.
func printMarkdown(w io.Writer, rep *report) {
	fmt.Fprintf(w, "%d rounds after %d warm-up rounds; in each, every test's systems in turn, the first rotating every round; %s UTC\n\n",
		rep.Rounds, rep.Warmup, strings.Replace(rep.Date, "T", " ", 1))
	printLatency(w, rep)
	printRates(w, rep)
	printStart(w, rep)
	printTargets(w, rep)
	printCommands(w, rep)
	printNotes(w, rep)
}

// printLatency writes the request/response table.
func printLatency(w io.Writer, rep *report) {
	fmt.Fprintf(w, "TCP request/response, %d-byte request and response, %d round trips per round on one connection (after 50 unmeasured); median over the rounds of each round's p50, p99 and mean:\n\n", rep.Size, rep.RR)
	fmt.Fprintln(w, "| | path | p50 | p99 | mean | p50 over rounds (min–max) |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, s := range rep.of(testRR) {
		fmt.Fprintf(w, "| %s | %s | %.1f µs | %.1f µs | %.1f µs | %.1f–%.1f µs |\n", s.System, s.Path,
			s.Median["p50_us"], s.Median["p99_us"], s.Median["mean_us"], s.Min["p50_us"], s.Max["p50_us"])
	}
	fmt.Fprintln(w)
}

// printRates writes the throughput and connection tables.
func printRates(w io.Writer, rep *report) {
	fmt.Fprintf(w, "Bulk TCP throughput, one connection, %s of sending per round until the server has counted every byte (MB = 10⁶ bytes):\n\n", rep.Bulk)
	fmt.Fprintln(w, "| | path | median | min | max |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|")
	for _, s := range rep.of(testBulk) {
		fmt.Fprintf(w, "| %s | %s | %.0f MB/s | %.0f MB/s | %.0f MB/s |\n", s.System, s.Path, s.Median["mb_per_s"], s.Min["mb_per_s"], s.Max["mb_per_s"])
	}
	fmt.Fprintf(w, "\nNew connections through a published port, %d per round one after the other (connect, a 1-byte exchange with the server, close with a reset); per connection: median over the rounds of each round's p50 and p99:\n\n", rep.Conns)
	fmt.Fprintln(w, "| | path | connections/s median | min | max | per connection p50 | p99 |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|")
	for _, test := range []string{testConn, testConnOutside} {
		for _, s := range rep.of(test) {
			fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.0f | %.1f µs | %.1f µs |\n", s.System, s.Path,
				s.Median["per_s"], s.Min["per_s"], s.Max["per_s"], s.Median["p50_us"], s.Median["p99_us"])
		}
	}
	fmt.Fprintln(w)
}

// printStart writes the start-time table.
func printStart(w io.Writer, rep *report) {
	fmt.Fprintln(w, "Start, `run --rm … /bin/true` (wall clock of the whole nsenter invocation from the host):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | median | min | max |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, s := range rep.of(testStart) {
		fmt.Fprintf(w, "| %s | %.1f ms | %.1f ms | %.1f ms |\n", s.System, s.Median["ms"], s.Min["ms"], s.Max["ms"])
	}
	if d, ok := rep.Ratios["release ms net of floor"]; ok {
		fmt.Fprintf(w, "| %s, net of the nsenter floor (a Go start of cove, the lease lock; no lease held) | %.1f ms | | |\n", releaseSeries, d)
	}
	for _, sys := range []string{"cove", "podman"} {
		if d, ok := rep.Ratios["start extra ms "+sys]; ok {
			fmt.Fprintf(w, "| **%s: the network's extra** (difference of the medians; median of the per-round differences) | **%.1f ms**; %.1f ms | | |\n",
				sys, d, rep.Ratios["start extra ms paired "+sys])
		}
	}
	fmt.Fprintln(w)
}

// printTargets writes the ratios against the targets, and the
// other ratios.
func printTargets(w io.Writer, rep *report) {
	r := rep.Ratios
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintln(w, "| target | ratio of medians | median of per-round ratios | |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	if d, ok := r["start extra ms cove"]; ok {
		fmt.Fprintf(w, "| start: network cove adds ≤ 10 ms over none | %.1f ms (difference) | %.1f ms (difference) | %s |\n",
			d, r["start extra ms paired cove"], verdict(d <= 10))
	}
	row := func(what, key string, ok func(float64) bool) {
		if v, found := r[key]; found {
			fmt.Fprintf(w, "| %s | %.2f× | %.2f× | %s |\n", what, v, r[key+" paired"], verdict(ok(v)))
		}
	}
	row("latency p50 cove / podman ≤ 1.10×", "rr p50 cove/podman", func(v float64) bool { return v <= 1.10 })
	row("latency p99 cove / podman ≤ 1.10×", "rr p99 cove/podman", func(v float64) bool { return v <= 1.10 })
	row("throughput cove / podman ≥ 0.90×", "bulk cove/podman", func(v float64) bool { return v >= 0.90 })
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| other ratio | of medians | median of per-round ratios |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, k := range []string{"conn cove/podman", "conn-outside cove/podman", "rr p50 cove/loopback floor", "rr p50 podman/loopback floor",
		"bulk cove/loopback floor", "bulk podman/loopback floor", "conn cove/loopback floor",
		"rr p50 cove/its container loopback", "rr p50 podman/its container loopback",
		"bulk cove/its container loopback", "bulk podman/its container loopback", "conn " + proxySeries + "/cove"} {
		if v, ok := r[k]; ok {
			fmt.Fprintf(w, "| %s | %.2f× | %.2f× |\n", k, v, r[k+" paired"])
		}
	}
	fmt.Fprintln(w)
}

// printCommands lists every command run inside the sandbox.
func printCommands(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| test | system | command (inside the sandbox) |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, s := range rep.Series {
		fmt.Fprintf(w, "| %s | %s | `%s` |\n", s.Test, s.System, display(rep, append(append([]string(nil), s.Env...), s.Argv...)))
	}
	fmt.Fprintln(w)
}

// printNotes writes the notes below the tables.
func printNotes(w io.Writer, rep *report) {
	fmt.Fprintf(w, "- R = `%s` (busybox rootfs from sandbox.Rootfs, with bench/net/echo built static as `%s`); cove = built by scripts/build, as shipped; podman runs R with `--rootfs` (no image).\n", rep.Rootfs, echoPath)
	servers := fmt.Sprintf("cove `%s` (port %s, published as %s)", rep.Addrs["cove server"], serverPort, covePub)
	if a := rep.Addrs["podman server"]; a != "" {
		servers += fmt.Sprintf(", podman `%s` (port %s, published as %s)", a, serverPort, podmanPub)
	}
	fmt.Fprintf(w, "- Servers: %s, floor `%s` in the namespace %s, each client container `%s`.\n", servers, floorAddr, floorNS, clientLoop)
	if rep.PodmanSkip != "" {
		fmt.Fprintf(w, "- %s; its rows are left out.\n", rep.PodmanSkip)
	} else {
		fmt.Fprintf(w, "- podman: %s.\n", rep.PodmanSetup)
	}
	fmt.Fprintf(w, "- Closed world (the sandbox's own network namespace, links only lo, %s, cove's and podman's; every route through them; the default route to %s) held: %s. Links left after the teardown: %s.\n",
		benchbox.UplinkLink, benchbox.OutsideNS, strings.Join(rep.ClosedWorld, "; "), strings.Join(rep.LinksLeft, ", "))
	fmt.Fprintf(w, "- A start's time is the whole `%s CMD` invocation.\n", strings.Join(rep.Prefix, " "))
	fmt.Fprintf(w, "- machine: %s.\n", benchbox.MachineLine(rep.Machine))
	fmt.Fprintf(w, "- command: `%s`\n", rep.Invocation)
}

// display shortens argv for the tables: the rootfs as R, the work
// directory as $W.
func display(rep *report, argv []string) string {
	s := strings.Join(argv, " ")
	s = strings.ReplaceAll(s, rep.Rootfs, "R")
	return strings.ReplaceAll(s, filepath.Dir(rep.Rootfs), "$W")
}
