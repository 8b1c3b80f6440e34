package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// series is one timed command.
type series struct {
	Name    string    `json:"name"`
	Argv    []string  `json:"argv"`
	Samples []float64 `json:"samples_ms"`
	benchbox.Stats
	// The sandbox's systemd's CPU time (user + system, 10 ms ticks)
	// while the command ran.
	CPUSamples []float64 `json:"systemd_cpu_ms"`
	CPUMedian  float64   `json:"systemd_cpu_median_ms"`
}

// genPhase is phase 1's result.
type genPhase struct {
	Specs        int     `json:"specs"`
	Rounds       int     `json:"rounds"`
	GenFull      *series `json:"generator_full"`
	GenEmpty     *series `json:"generator_empty"`
	ReloadFull   *series `json:"daemon_reload_full"`
	ReloadEmpty  *series `json:"daemon_reload_empty"`
	Floor        *series `json:"nsenter_floor"`
	PerSpecMs    float64 `json:"generator_per_spec_ms"`
	LoadedAfter  int     `json:"cove_units_loaded_after_reload"`
	ReloadPerMs  float64 `json:"daemon_reload_per_spec_ms"`
	GeneratedOut int     `json:"units_generated"`
}

// kPhase is phase 2's result at one K.
type kPhase struct {
	K            int     `json:"k"`               // declared workloads besides the target
	Running      int     `json:"running"`         // cove units running during the rounds
	Declared     int     `json:"declared_files"`  // new specs applied to reach K
	DeclareMs    float64 `json:"declare_ms"`      // that apply's time
	Rounds       int     `json:"rounds"`          // measured rounds
	Apply        *series `json:"apply"`           // cove apply FILE (one changed spec: a limit, set live)
	ApplyRestart *series `json:"apply_restart"`   // cove apply FILE (one changed spec: an environment variable; the launcher's file, a restart)
	ApplyReload  *series `json:"apply_reload"`    // cove apply FILE (one changed spec: the stop timeout; a reload, a restart)
	Diff         *series `json:"diff"`            // cove diff FILE
	Reload       *series `json:"daemon_reload"`   // systemctl daemon-reload
	Settled      *series `json:"restart_settled"` // systemctl restart cove-target.service, systemd idle
	Restart      *series `json:"restart"`         // the same right after daemon-reload
	Gen          *series `json:"generator"`       // cove-generator OUTDIR
	Floor        *series `json:"nsenter_floor"`   // /bin/true
	PartsNetMs   float64 `json:"parts_net_ms"`    // diff + reload + restart medians, each net of the floor
	GeneratedOut int     `json:"units_generated"` // by the generator run
	// systemd's CPU time from the daemon-reload's reply until it is idle
	// again (including the restart right after the reload).
	AfterCPU       []float64 `json:"systemd_cpu_after_reload_ms"`
	AfterCPUMedian float64   `json:"systemd_cpu_after_reload_median_ms"`
	// systemd's CPU time from cove apply's exit until it is idle again.
	AfterApplyCPU       []float64 `json:"systemd_cpu_after_apply_ms"`
	AfterApplyCPUMedian float64   `json:"systemd_cpu_after_apply_median_ms"`
}

// cleanup is phase 3's result.
type cleanup struct {
	PruneMs        float64  `json:"prune_ms"`
	Pruned         int      `json:"pruned"`
	SleepsInside   int      `json:"sleep_1000_inside_after_prune"`
	SleepsLeft     int      `json:"sleep_1000_left_in_sandbox_pidns"`
	CgroupsLeft    []string `json:"sandbox_cgroups_left"`
	WorkDirRemoved bool     `json:"work_dir_removed"`
}

// report is the whole result, as printed with -json.
type report struct {
	Date       string            `json:"date"`
	Invocation string            `json:"invocation"`
	Warmup     int               `json:"warmup_rounds"`
	Machine    map[string]string `json:"machine"`
	LoadStart  string            `json:"loadavg_start"`
	LoadEnd    string            `json:"loadavg_end"`
	Prefix     []string          `json:"nsenter_prefix"`
	Work       string            `json:"work_dir"`
	SpecText   string            `json:"filler_spec"`
	Gen        *genPhase         `json:"generator"`
	Ks         []*kPhase         `json:"apply"`
	Cleanup    *cleanup          `json:"cleanup"`
}

// summarize fills a series' statistics.
func summarize(s *series) {
	s.Stats = benchbox.Summarize(s.Samples)
	s.CPUMedian = benchbox.Summarize(s.CPUSamples).Median
}

// printMarkdown writes the report as markdown tables with notes.
func printMarkdown(w io.Writer, rep *report) {
	fmt.Fprintf(w, "%s UTC; `%s`\n\n", strings.Replace(rep.Date, "T", " ", 1), rep.Invocation)
	printGenerator(w, rep)
	printTimes(w, rep)
	printCPU(w, rep)
	printRatios(w, rep)
	printBulk(w, rep)
	printNotes(w, rep)
}

// printGenerator writes phase 1's table and what was generated.
func printGenerator(w io.Writer, rep *report) {
	g := rep.Gen
	fmt.Fprintf(w, "**Generator and daemon-reload** (%d rounds after %d warm-up rounds, interleaved; median (p90)):\n\n", g.Rounds, rep.Warmup)
	fmt.Fprintf(w, "| command (inside the sandbox) | 0 specs | %d specs | difference per spec |\n", g.Specs)
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	fmt.Fprintf(w, "| `cove-generator %s` | %s | %s | %.3f ms |\n", genOut, ms(g.GenEmpty), ms(g.GenFull), g.PerSpecMs)
	fmt.Fprintf(w, "| `systemctl daemon-reload` | %s | %s | %.3f ms |\n", ms(g.ReloadEmpty), ms(g.ReloadFull), g.ReloadPerMs)
	fmt.Fprintf(w, "| systemd's own CPU time during the reload | %s | %s | |\n", dur(g.ReloadEmpty.CPUMedian), dur(g.ReloadFull.CPUMedian))
	fmt.Fprintf(w, "| `/bin/true` (nsenter floor) | %s | | |\n\n", ms(g.Floor))
	fmt.Fprintf(w, "With %d specs present the generator wrote %d units, and %d cove units were loaded after the reload", g.Specs, g.GeneratedOut, g.LoadedAfter)
	if g.LoadedAfter == 0 {
		fmt.Fprint(w, " (nothing refers to them, so systemd does not load them)")
	}
	fmt.Fprint(w, ".\n\n")
}

// kRow is a row of phase 2's tables of times: a series at each K.
type kRow struct {
	label string
	get   func(*kPhase) *series
}

// kRows are phase 2's timed commands; the ratio table shows all but the
// floor (the last).
var kRows = []kRow{
	{"`cove apply target.toml`, a memory limit changed (set live)", func(k *kPhase) *series { return k.Apply }},
	{"`cove apply target.toml`, an environment variable changed (restart)", func(k *kPhase) *series { return k.ApplyRestart }},
	{"`cove apply target.toml`, the stop timeout changed (reload, restart)", func(k *kPhase) *series { return k.ApplyReload }},
	{"`cove diff target.toml`", func(k *kPhase) *series { return k.Diff }},
	{"`systemctl daemon-reload`", func(k *kPhase) *series { return k.Reload }},
	{"`systemctl restart cove-target.service`, systemd idle", func(k *kPhase) *series { return k.Settled }},
	{"the same, right after `systemctl daemon-reload`", func(k *kPhase) *series { return k.Restart }},
	{"`cove-generator " + genOut + "`", func(k *kPhase) *series { return k.Gen }},
	{"`/bin/true` (nsenter floor)", func(k *kPhase) *series { return k.Floor }},
}

// printTimes writes phase 2's table of times, with the sums net of the
// floor and the running units.
func printTimes(w io.Writer, rep *report) {
	n := 0
	if len(rep.Ks) > 0 {
		n = rep.Ks[0].Rounds
	}
	fmt.Fprintf(w, "**One changed spec at K other declared, running workloads** (%d rounds after %d warm-up rounds at each K, interleaved; median (p90)):\n\n", n, rep.Warmup)
	kHeader(w, "command (inside the sandbox)", rep.Ks)
	for _, r := range kRows {
		kLine(w, r.label, rep.Ks, func(k *kPhase) string { return ms(r.get(k)) })
	}
	kLine(w, "apply of a limit, net of the floor", rep.Ks, func(k *kPhase) string { return dur(k.Apply.Median - k.Floor.Median) })
	kLine(w, "apply of an environment variable, net of the floor", rep.Ks, func(k *kPhase) string { return dur(k.ApplyRestart.Median - k.Floor.Median) })
	kLine(w, "apply of the stop timeout, net of the floor", rep.Ks, func(k *kPhase) string { return dur(k.ApplyReload.Median - k.Floor.Median) })
	kLine(w, "diff + daemon-reload + restart right after it, each net of the floor", rep.Ks, func(k *kPhase) string { return dur(k.PartsNetMs) })
	kLine(w, "cove units running", rep.Ks, func(k *kPhase) string { return fmt.Sprint(k.Running) })
	fmt.Fprintln(w)
}

// cpuRows are phase 2's rows of systemd's CPU time.
var cpuRows = []struct {
	label string
	get   func(*kPhase) float64
}{
	{"`cove apply target.toml` ran", func(k *kPhase) float64 { return k.Apply.CPUMedian }},
	{"after `cove apply` exited, until idle", func(k *kPhase) float64 { return k.AfterApplyCPUMedian }},
	{"`systemctl daemon-reload` ran", func(k *kPhase) float64 { return k.Reload.CPUMedian }},
	{"after the daemon-reload's reply, until idle (with one restart)", func(k *kPhase) float64 { return k.AfterCPUMedian }},
	{"`systemctl restart`, systemd idle, ran", func(k *kPhase) float64 { return k.Settled.CPUMedian }},
}

// printCPU writes phase 2's table of systemd's CPU time.
func printCPU(w io.Writer, rep *report) {
	fmt.Fprintln(w, "systemd's own CPU time (median; user + system of the sandbox's PID 1, 10 ms ticks):")
	fmt.Fprintln(w)
	kHeader(w, "while …", rep.Ks)
	for _, r := range cpuRows {
		kLine(w, r.label, rep.Ks, func(k *kPhase) string { return dur(r.get(k)) })
	}
	fmt.Fprintln(w)
}

// printRatios writes the medians at each K over those at K = 0, if K = 0
// was measured and another K.
func printRatios(w io.Writer, rep *report) {
	if len(rep.Ks) <= 1 || rep.Ks[0].K != 0 {
		return
	}
	base := rep.Ks[0]
	kHeader(w, "ratio of medians to K = 0", rep.Ks[1:])
	for _, r := range kRows[:len(kRows)-1] {
		kLine(w, r.label, rep.Ks[1:], func(k *kPhase) string { return ratio(r.get(k).Median, r.get(base).Median) })
	}
	fmt.Fprintln(w)
}

// printBulk writes the table of the bulk applies and the prune.
func printBulk(w io.Writer, rep *report) {
	fmt.Fprintln(w, "**Bulk applies** (one run each):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| command | workloads | time | per workload |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, k := range rep.Ks {
		if k.Declared > 0 {
			fmt.Fprintf(w, "| `cove apply` of %d new specs (starts them), to K = %d | %d | %s | %.1f ms |\n",
				k.Declared, k.K, k.Declared, dur(k.DeclareMs), k.DeclareMs/float64(k.Declared))
		}
	}
	c := rep.Cleanup
	fmt.Fprintf(w, "| `cove apply --prune EMPTYDIR` (stops and deletes all) | %d | %s | %.1f ms |\n\n",
		c.Pruned, dur(c.PruneMs), c.PruneMs/float64(c.Pruned))
}

// printNotes writes the notes below the tables.
func printNotes(w io.Writer, rep *report) {
	c := rep.Cleanup
	fmt.Fprintf(w, "- Each time is the wall clock of the whole `%s CMD` invocation from the host.\n",
		strings.Join(rep.Prefix, " "))
	fmt.Fprintf(w, "- Every spec (filler `fillNNNN` and `target`): busybox rootfs, `command = [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; sleep 1000 & wait\"]`, `stop_timeout = \"2s\"`; the target alternates `memory = \"64M\"`/`\"96M\"` and has `start_limit = { burst = 1000000 }`.\n")
	fmt.Fprintf(w, "- Cleanup: %d `sleep 1000` inside after the prune; after shutdown %d left in the sandbox's PID namespace, %d sandbox cgroups left, work directory removed: %v.\n",
		c.SleepsInside, c.SleepsLeft, len(c.CgroupsLeft), c.WorkDirRemoved)
	fmt.Fprintf(w, "- machine: %s; load average at start %s, at end %s.\n", benchbox.MachineLine(rep.Machine), rep.LoadStart, rep.LoadEnd)
}

// kLine writes a table row: label, then cell(k) for each K.
func kLine(w io.Writer, label string, ks []*kPhase, cell func(*kPhase) string) {
	fmt.Fprintf(w, "| %s |", label)
	for _, k := range ks {
		fmt.Fprintf(w, " %s |", cell(k))
	}
	fmt.Fprintln(w)
}

// ms formats a median and p90.
func ms(s *series) string {
	return fmt.Sprintf("%s (%s)", dur(s.Median), dur(s.P90))
}

// dur formats milliseconds.
func dur(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f s", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

// ratio formats a / b.
func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// kHeader writes a markdown table header: label, then one column per K.
func kHeader(w io.Writer, label string, ks []*kPhase) {
	fmt.Fprintf(w, "| %s |", label)
	for _, k := range ks {
		fmt.Fprintf(w, " K = %d |", k.K)
	}
	fmt.Fprint(w, "\n|---|")
	for range ks {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
}
