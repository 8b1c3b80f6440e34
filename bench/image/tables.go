package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// printRunRatios writes the run ratios and the targets.
func printRunRatios(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| ratio of medians | as measured | net of the nsenter floor (D subtracted) | target |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	r := rep.Ratios["run cove/systemd-run"]
	fmt.Fprintf(w, "| cove / systemd-run | **%.2f×** | %.2f× | ≤ 1.5×: %s |\n",
		r, rep.Ratios["run cove/systemd-run net of floor"], verdict(r <= 1.5))
	if r, ok := rep.Ratios["run podman/cove"]; ok {
		fmt.Fprintf(w, "| podman / cove | **%.2f×** | %.2f× | ≥ 4×: %s |\n",
			r, rep.Ratios["run podman/cove net of floor"], verdict(r >= 4))
	}
	if r, ok := rep.Ratios["run cove image/cove rootfs"]; ok {
		fmt.Fprintf(w, "| cove IMAGE / cove --rootfs T | %.2f× | | — |\n", r)
	}
	if r, ok := rep.Ratios["run cove userns auto/host"]; ok {
		extra := find(rep.Run, "A").Median - find(rep.Run, "F").Median
		fmt.Fprintf(w, "| cove IMAGE (userns auto, %d idmapped layers) / --userns host | %.2f× (%+.1f ms) | | ≤ +5 ms: %s |\n",
			rep.ImageA.Layers, r, extra, verdict(extra <= 5))
	}
}

// printDisk writes the disk table.
func printDisk(w io.Writer, rep *report) {
	d := rep.Disk
	fmt.Fprintln(w, "| cove pull of | layer directories | du of the store |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, r := range d.Rows {
		fmt.Fprintf(w, "| %s | %d | %s |\n", r.What, r.LayerDirs, mib(r.Bytes))
	}
	a, b := d.Rows[0], d.Rows[1]
	fmt.Fprintf(w, "\nA and B share %d layer directories; the store with both holds %s less than A's and B's stores together (%s + %s).\n",
		d.SharedLayers, mib(d.SavedBytes), mib(a.Bytes), mib(b.Bytes))
}

// printNotes writes the notes below the tables.
func printNotes(w io.Writer, rep *report) {
	fmt.Fprintf(w, "- Each time is the wall clock of the whole `%s CMD` invocation from the host; "+
		"IMAGE = `%s`; $W = `%s`, the work directory; T = $W/tree, image A unpacked with tar.\n",
		strings.Join(rep.Prefix, " "), rep.ImageA.Ref, rep.Work)
	for _, s := range []string{rep.PodmanSkip, rep.PodmanRunSkip, rep.SkopeoSkip} {
		if s != "" {
			fmt.Fprintf(w, "- %s; left out.\n", s)
		}
	}
	if rep.PodmanSetup != "" {
		fmt.Fprintf(w, "- podman run: %s.\n", rep.PodmanSetup)
	}
	fmt.Fprintf(w, "- `cove run --rm` left %d entries in /var/lib/cove/containers.\n", rep.Leftovers)
	if rep.Writer {
		fmt.Fprintf(w, "- run part with -writer: a process rewrote 32 MiB of $W/writer over and over, never synced.\n")
	}
	fmt.Fprintf(w, "- machine: %s.\n", benchbox.MachineLine(rep.Machine))
	fmt.Fprintf(w, "- command: `%s`\n", rep.Invocation)
}

// display shortens argv for a table: the work directory as $W, image A's
// reference as IMAGE.
func display(rep *report, argv []string) string {
	s := strings.Join(argv, " ")
	s = strings.ReplaceAll(s, rep.Work+"/tree", "T")
	s = strings.ReplaceAll(s, rep.Work, "$W")
	return strings.ReplaceAll(s, rep.ImageA.Ref, "IMAGE")
}

// verdict says whether a target is met.
func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

// ms renders milliseconds with three significant digits or so.
func ms(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

// mib renders bytes in MiB.
func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
