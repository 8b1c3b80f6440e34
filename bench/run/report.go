package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// bench is one command that is timed.
type bench struct {
	Key     string    `json:"key"`           // A, B, C, D
	Name    string    `json:"name"`          // cove, systemd-run, podman, nsenter floor
	Argv    []string  `json:"argv"`          // the command run inside the sandbox
	Env     []string  `json:"env,omitempty"` // added to the environment
	Samples []float64 `json:"samples_ms"`
	benchbox.Stats
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
	// -phases: each start split at its processes' exec, fork and exit
	CovePhases       []*phase `json:"cove_phases,omitempty"`
	SystemdRunPhases []*phase `json:"systemd_run_phases,omitempty"`
}

// printMarkdown writes the report as a markdown table with notes.
func printMarkdown(w io.Writer, rep *report) {
	fmt.Fprintf(w, "%d rounds after %d warm-up rounds, interleaved %s; %s UTC\n\n",
		rep.Rounds, rep.Warmup, order(rep), strings.Replace(rep.Date, "T", " ", 1))
	printTimes(w, rep)
	fmt.Fprintln(w)
	printRatios(w, rep)
	printPhases(w, rep)
	fmt.Fprintln(w)
	printNotes(w, rep)
}

// printTimes writes the table of times.
func printTimes(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| | command (inside the sandbox) | median | p90 | min |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|")
	for _, b := range rep.Benches {
		fmt.Fprintf(w, "| %s %s | `%s` | %.1f ms | %.1f ms | %.1f ms |\n",
			b.Key, b.Name, display(rep, append(append([]string(nil), b.Env...), b.Argv...)), b.Median, b.P90, b.Min)
	}
}

// printRatios writes the table of ratios.
func printRatios(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| ratio of medians | as measured | net of the nsenter floor (D subtracted) |")
	fmt.Fprintln(w, "|---|---:|---:|")
	fmt.Fprintf(w, "| cove / systemd-run | %.2f× | %.2f× |\n",
		rep.Ratios["cove/systemd-run"], rep.Ratios["cove/systemd-run net of floor"])
	if r, ok := rep.Ratios["cove userns=auto/cove"]; ok {
		a, e := find(rep, "A"), find(rep, "E")
		fmt.Fprintf(w, "| cove userns=auto / cove | %.2f× (%+.1f ms) | |\n", r, e.Median-a.Median)
	}
	if _, ok := rep.Ratios["podman/cove"]; ok {
		fmt.Fprintf(w, "| podman / cove | %.2f× | %.2f× |\n",
			rep.Ratios["podman/cove"], rep.Ratios["podman/cove net of floor"])
	}
}

// printNotes writes the notes below the tables.
func printNotes(w io.Writer, rep *report) {
	fmt.Fprintf(w, "- Each time is the wall clock of the whole `%s CMD` invocation from the host.\n",
		strings.Join(rep.Prefix, " "))
	fmt.Fprintf(w, "- R = `%s` (busybox rootfs from sandbox.Rootfs); cove = built by scripts/build, as shipped; IMAGE = `%s`, imported from R.\n",
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
