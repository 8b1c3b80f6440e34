package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/vmguest"
)

// bench is one way of booting the guest.
type bench struct {
	Key      string         `json:"key"`               // A, B
	Name     string         `json:"name"`              // cove run --rm, QEMU directly
	Argv     []string       `json:"argv"`              // of the first measured round
	QMPMs    []float64      `json:"qmp_samples_ms"`    // exec → qmp.sock created (QEMU is up)
	MarkerMs []float64      `json:"marker_samples_ms"` // exec → COVE-GUEST-BOOTED on stdout
	ExitMs   []float64      `json:"exit_samples_ms"`   // exec → exit
	QMP      benchbox.Stats `json:"qmp"`
	Marker   benchbox.Stats `json:"marker"`
	Exit     benchbox.Stats `json:"exit"`
	sockDir  string         // B's socket directory in Argv
}

// add appends one run's sample.
func (b *bench) add(s sample) {
	b.QMPMs, b.MarkerMs, b.ExitMs = append(b.QMPMs, s.qmp), append(b.MarkerMs, s.marker), append(b.ExitMs, s.exit)
}

// report is the whole result, as printed with -json.
type report struct {
	Date       string            `json:"date"`
	Invocation string            `json:"invocation"`
	Rounds     int               `json:"rounds"`
	Warmup     int               `json:"warmup_rounds"`
	Machine    map[string]string `json:"machine"`
	Prefix     []string          `json:"nsenter_prefix"`
	Guest      vmguest.Guest     `json:"guest"`
	TSCkHz     uint64            `json:"tsc_khz"`
	Spec       string            `json:"spec"`
	Benches    []*bench          `json:"benches"`
	// Overheads in percent: A's median over B's, minus 1; and the median
	// of the per-round differences A−B, over B's median.
	MarkerOverhead       float64  `json:"marker_overhead_pct"`
	ExitOverhead         float64  `json:"exit_overhead_pct"`
	MarkerPairedDiff     diff     `json:"marker_paired_diff"`
	ExitPairedDiff       diff     `json:"exit_paired_diff"`
	Phases               []phase  `json:"phases"`
	Memory               *memory  `json:"memory"`
	Fleet                *fleet   `json:"fleet,omitempty"`
	LeftoverQEMU         []string `json:"leftover_qemu,omitempty"`
	HostQEMUAfterCleanup []string `json:"host_qemu_after_cleanup,omitempty"`

	work string // the work directory, shown as $W
}

// printMarkdown writes the report as markdown tables with notes.
func printMarkdown(w io.Writer, rep *report) {
	date := rep.Date
	if t, err := time.Parse(time.RFC3339, rep.Date); err == nil {
		date = t.Format("2006-01-02 15:04")
	}
	fmt.Fprintf(w, "%d rounds after %d warm-up rounds, interleaved A B …; %s UTC\n\n", rep.Rounds, rep.Warmup, date)
	printTimes(w, rep)
	printOverhead(w, rep)
	printPhases(w, rep)
	if rep.Memory != nil {
		printMemory(w, rep.Memory)
	}
	if rep.Fleet != nil {
		printFleet(w, rep.Fleet)
	}
	printNotes(w, rep)
}

// printFleet writes the table of the fleet's start and disk.
func printFleet(w io.Writer, f *fleet) {
	fmt.Fprintf(w, "\n%d VMs (microvm, TCG, 256 MiB each) with a disk from one qcow2 base image holding %d MiB of data (%s allocated), started one after the other with `cove run -d`; time until every guest is waiting:\n\n", f.N, f.BaseMiB, kibN(f.BaseKiB))
	fmt.Fprintln(w, "| | all waiting | of which copying | disk of the VMs' images (du) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	fmt.Fprintf(w, "| overlays of the base (`base =`; the launcher creates each) | %s | — | %s (+ the base once) |\n", msList(f.OverlayMs), kibN(f.OverlayKiB))
	fmt.Fprintf(w, "| full copies (`cp` of the base each, then `path =`) | %s | %s | %s |\n", msList(f.CopyMs), msList(f.CopyOnlyMs), kibN(f.CopiesKiB))
	fmt.Fprintf(w, "\nRounds alternate overlays, copies, overlays, copies (times listed per round). Disk: copies / overlays %.0f×.\n", float64(f.CopiesKiB)/float64(max(f.OverlayKiB, 1)))
}

// printTimes writes the table of A's and B's times.
func printTimes(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| | command (inside the sandbox) | exec → COVE-GUEST-BOOTED median | p90 | min | exec → exit median | p90 | min |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, x := range rep.Benches {
		cmd := "`" + display(rep, strings.Join(x.Argv, " ")) + "`"
		if x.Key == "B" {
			cmd = "QARGV (below)"
		}
		fmt.Fprintf(w, "| %s %s | %s | %s | %s | %s | %s | %s | %s |\n", x.Key, x.Name, cmd,
			ms(x.Marker.Median), ms(x.Marker.P90), ms(x.Marker.Min), ms(x.Exit.Median), ms(x.Exit.P90), ms(x.Exit.Min))
	}
	fmt.Fprintln(w)
}

// printOverhead writes the table of cove's overhead, A against B.
func printOverhead(w io.Writer, rep *report) {
	a, b := rep.Benches[0], rep.Benches[1]
	fmt.Fprintln(w, "| cove overhead (A vs B) | to COVE-GUEST-BOOTED | to exit |")
	fmt.Fprintln(w, "|---|---:|---:|")
	fmt.Fprintf(w, "| ratio of medians A / B | %.3f× (%+.1f %%) | %.3f× (%+.1f %%) |\n",
		a.Marker.Median/b.Marker.Median, rep.MarkerOverhead, a.Exit.Median/b.Exit.Median, rep.ExitOverhead)
	pct := func(d diff, base float64) string {
		return fmt.Sprintf("%+.0f ms (%+.1f %%), 95 %% CI [%+.1f %%, %+.1f %%]", d.Median, 100*d.Median/base, 100*d.Lo/base, 100*d.Hi/base)
	}
	fmt.Fprintf(w, "| median of per-round A − B (of B's median) | %s | %s |\n",
		pct(rep.MarkerPairedDiff, b.Marker.Median), pct(rep.ExitPairedDiff, b.Exit.Median))
	fmt.Fprintln(w)
}

// printPhases writes the table of the phases of a run.
func printPhases(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| phase | A median | B median | median of per-round A − B | 95 % CI |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, p := range rep.Phases {
		fmt.Fprintf(w, "| %s | %.0f ms | %.0f ms | %+.0f ms | [%+.0f, %+.0f] ms |\n", p.Name, p.A, p.B, p.PairedDiff.Median, p.PairedDiff.Lo, p.PairedDiff.Hi)
	}
	fmt.Fprintln(w)
}

// printMemory writes the idle guest's tables and notes.
func printMemory(w io.Writer, m *memory) {
	fmt.Fprintf(w, "Idle %d MiB guest (mode wait) under `cove run -d`, sampled %v after COVE-GUEST-WAITING (seen in the journal %.1f s after the exec):\n\n",
		m.GuestMiB, idleSettle, m.WaitingAfterMs/1000)
	fmt.Fprintln(w, "| QEMU (MainPID) VmRSS | VmHWM | RssAnon | RssFile | RssShmem | unit MemoryCurrent | unit MemoryMax |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", kib(m.Status["VmRSS"]), kib(m.Status["VmHWM"]),
		kib(m.Status["RssAnon"]), kib(m.Status["RssFile"]), kib(m.Status["RssShmem"]), bytesMiB(m.MemoryCurrent), bytesMiB(m.MemoryMax))
	fmt.Fprintln(w)
	if len(m.Breakdown) > 0 {
		printBreakdown(w, m.Breakdown)
	}
	fmt.Fprintf(w, "- MainPID runs `%s`; its command line is identical to B's built by this program (sockets aside): %t.\n", m.Exe, m.ArgvIdentical)
	if m.ArgvDiff != "" {
		fmt.Fprintf(w, "  ```\n  %s\n  ```\n", strings.ReplaceAll(m.ArgvDiff, "\n", "\n  "))
	}
	fmt.Fprintf(w, "- `cove stop`: %.0f ms; the guest ran its ACPI power-button hook (%s in the journal): %t.\n",
		m.StopMs, vmguest.MarkerShutdownHook, m.ShutdownHook)
}

// printBreakdown writes the table of QEMU's resident memory by mapping.
func printBreakdown(w io.Writer, parts map[string]uint64) {
	var total uint64
	for _, v := range parts {
		total += v
	}
	fmt.Fprintf(w, "| VmRSS by mapping (smaps) | %s | %s | %s | %s | %s | total |\n", partGuest, partTCG, partKernel, partFiles, partOther)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| resident | %s | %s | %s | %s | %s | %s |\n", kibN(parts[partGuest]), kibN(parts[partTCG]),
		kibN(parts[partKernel]), kibN(parts[partFiles]), kibN(parts[partOther]), kibN(total))
	fmt.Fprintln(w)
}

// printNotes writes the notes below the tables.
func printNotes(w io.Writer, rep *report) {
	b := rep.Benches[1]
	fmt.Fprintf(w, "- QARGV = `%s` (S: a fresh directory under $W per run).\n",
		display(rep, strings.ReplaceAll(strings.Join(b.Argv, " "), b.sockDir, "S")))
	fmt.Fprintf(w, "- Each time runs from the exec of `%s CMD` on the host; the marker time is when the line arrived on CMD's stdout (a pipe read by this program).\n",
		strings.Join(rep.Prefix, " "))
	fmt.Fprintf(w, "- VMSPEC = `%s`: microvm, TCG, 1 vCPU, 256M, kernel `%s` (%s), busybox initramfs, cmdline `%s`; B adds `tsc_early_khz=%d` as the launcher does.\n",
		filepath.Join("$W", "vms", bootName+".toml"), rep.Guest.Kernel, rep.Guest.Version, vmguest.Cmdline("poweroff"), rep.TSCkHz)
	fmt.Fprintf(w, "- machine: %s.\n", benchbox.MachineLine(rep.Machine))
	fmt.Fprintf(w, "- QEMU of this run left inside the sandbox before shutdown: %d; on the host after cleanup: %d.\n",
		len(rep.LeftoverQEMU), len(rep.HostQEMUAfterCleanup))
	fmt.Fprintf(w, "- command: `%s`\n", rep.Invocation)
}

// display shortens a command line for the table: the work directory as
// $W, the guest's files as KERNEL and INITRD.
func display(rep *report, s string) string {
	s = strings.ReplaceAll(s, rep.Guest.Kernel, "KERNEL")
	s = strings.ReplaceAll(s, rep.Guest.Initrd, "INITRD")
	return strings.ReplaceAll(s, rep.work, "$W")
}

func ms(v float64) string { return fmt.Sprintf("%.0f ms", v) }

// msList is each of vs as ms writes it, comma-separated.
func msList(vs []float64) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = ms(v)
	}
	return strings.Join(out, ", ")
}

// kib renders "123456 kB" as MiB.
func kib(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return "?"
	}
	n, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s
	}
	return fmt.Sprintf("%.1f MiB", n/1024)
}

// kibN renders a KiB count as MiB.
func kibN(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/1024) }

// bytesMiB renders a byte count from systemctl show as MiB.
func bytesMiB(s string) string {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return "`" + s + "`"
	}
	return fmt.Sprintf("%.1f MiB", n/(1<<20))
}
