package main

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// report collects the results.
type report struct {
	rows    []row
	notes   []string
	machine string
}

// row is one line of the results table.
type row struct {
	what, how string
	samples   []float64 // milliseconds
	extra     string    // e.g. throughput
}

// printReport writes the results as a markdown table.
func printReport(w io.Writer, rep *report, o options) {
	fmt.Fprintf(w, "%s UTC; %d running containers on each side; cold and docker ps: %d rounds after 2 warm-up rounds, interleaved; warm: %d sequential requests after 50\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), o.workloads, o.n, o.warm)
	fmt.Fprintln(w, "| measurement | how | n | p50 | p90 | p99 | max | |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---|")
	for _, r := range rep.rows {
		s := append([]float64(nil), r.samples...)
		sort.Float64s(s)
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", r.what, r.how, len(s),
			ms(percentile(s, 50)), ms(percentile(s, 90)), ms(percentile(s, 99)), ms(percentile(s, 100)), r.extra)
	}
	fmt.Fprintln(w)
	for _, n := range rep.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintf(w, "- machine: %s.\n", rep.machine)
	fmt.Fprintf(w, "- command: `%s`\n", benchbox.Invocation("api"))
}

// percentile is the nearest-rank percentile p (0..100) of sorted s.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// ms formats milliseconds.
func ms(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

// display shortens argv for the table.
func display(box *benchbox.Box, argv []string) string {
	s := strings.Join(argv, " ")
	s = strings.ReplaceAll(s, box.Cove, "cove")
	return strings.ReplaceAll(s, filepath.Dir(argv[0])+"/docker", "docker")
}
