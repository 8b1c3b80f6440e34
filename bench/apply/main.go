// Command apply measures cove's declared-workload machinery inside one
// private systemd booted by tests/sandbox the way the integration tests
// boot it (/etc and /var/lib private overlays, cove installed as
// cove-generator in /etc/systemd/system-generators):
//
//  1. the generator: `cove-generator OUTDIR` with 0 and with S specs
//     (default 1000) in /etc/cove, and `systemctl daemon-reload` (which
//     runs it) with 0 and S specs present;
//  2. `cove apply FILE` of one changed spec (its memory limit alternates,
//     so every apply restarts it) on a host with K other declared, running
//     workloads (default K = 0, 100, 1000), next to `cove diff FILE`,
//     `systemctl daemon-reload`, `systemctl restart` of the same unit and
//     the generator at the same K, to show where apply's time goes;
//  3. cleanup: `cove apply --prune EMPTYDIR`, then the sandbox is shut
//     down and the program checks that nothing of it is left.
//
// Within each phase the commands run interleaved round-robin, so that the
// noise of a shared machine hits all of them alike. systemd goes on
// working for a while after it answers a daemon-reload (with many units
// loaded, up to a second here), so the program waits until the sandbox's
// systemd has used no CPU for 200 ms before a reload, an apply and the
// "idle" restart; the restart timed right after a reload shows what that
// leftover work costs the next job.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/apply
//	go run ./bench/apply -n 15 -gen-n 20 -specs 1000 -ks 0,100,1000 -json
//
// See docs/benchmarks.md for what is measured and the results.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/sandbox"
)

// Timeouts of single commands inside the sandbox.
const (
	cmdTimeout  = 2 * time.Minute  // a timed command or a check
	bulkTimeout = 20 * time.Minute // declaring or pruning many workloads
)

// tickMs is the length of a clock tick in /proc/PID/stat (USER_HZ = 100).
const tickMs = 10

// quiesce's idle window and bound.
const (
	quiesceWindow = 200 * time.Millisecond
	quiesceMax    = 15 * time.Second
)

// genOut is the generator's output directory inside the sandbox (a
// private /tmp).
const genOut = "/tmp/cove-bench-gen"

// offDir is where /etc/cove is renamed to while phase 1 measures "0 specs".
const offDir = "/etc/cove-bench-off"

// target is the workload whose spec changes.
const target = "target"

// memories alternate in the target's spec, so that every apply changes it.
var memories = []struct {
	spec  string
	bytes string
}{{"64M", "67108864"}, {"96M", "100663296"}}

// series is one timed command.
type series struct {
	Name    string    `json:"name"`
	Argv    []string  `json:"argv"`
	Samples []float64 `json:"samples_ms"`
	Median  float64   `json:"median_ms"`
	P90     float64   `json:"p90_ms"`
	Min     float64   `json:"min_ms"`
	Mean    float64   `json:"mean_ms"`
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
	Apply        *series `json:"apply"`           // cove apply FILE (one changed spec)
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

// options are the command-line flags.
type options struct {
	n, genN, warmup, specs int
	ks                     []int
	json, verbose          bool
	jsonFile               string
}

func main() {
	var o options
	var ks string
	flag.IntVar(&o.n, "n", 15, "measured rounds of phase 2 at each K")
	flag.IntVar(&o.genN, "gen-n", 20, "measured rounds of phase 1 (generator, daemon-reload)")
	flag.IntVar(&o.warmup, "warmup", 2, "warm-up rounds before each measured series (not counted)")
	flag.IntVar(&o.specs, "specs", 1000, "specs in /etc/cove for phase 1")
	flag.StringVar(&ks, "ks", "0,100,1000", "numbers of other declared workloads for phase 2, ascending, at most -specs")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of markdown tables")
	flag.StringVar(&o.jsonFile, "json-file", "", "also write the results as JSON to this file")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.Parse()
	var err error
	o.ks, err = parseKs(ks, o.specs)
	if err != nil || o.n < 1 || o.genN < 1 || o.warmup < 0 || o.specs < 1 || flag.NArg() > 0 {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		flag.Usage()
		os.Exit(2)
	}
	if err := benchmark(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseKs parses the -ks list.
func parseKs(s string, max int) ([]int, error) {
	var ks []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 0 || k > max || (len(ks) > 0 && k <= ks[len(ks)-1]) {
			return nil, fmt.Errorf("-ks %q: want ascending numbers from 0 to -specs (%d)", s, max)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// bench runs commands in the box.
type bench struct {
	o     options
	box   *benchbox.Box
	ctx   context.Context
	sb    *sandbox.Sandbox
	specs string // host dir with the filler specs (visible inside)
	tfile string // the target's spec file (host, visible inside)
	flip  int    // how often the target's spec was changed
	ticks int64  // systemd's CPU ticks after the last command add timed
}

// benchmark sets everything up, runs the phases and prints the report.
func benchmark(o options) (err error) {
	box, err := benchbox.Setup(benchbox.Options{Verbose: o.verbose, BootTimeout: 3 * time.Minute, Declared: true})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			box.Close()
		}
	}()
	b := &bench{o: o, box: box, ctx: box.Ctx, sb: box.SB}
	rep := &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Invocation: "go run ./bench/apply " + strings.Join(os.Args[1:], " "),
		Warmup:     o.warmup,
		Machine:    benchbox.Machine(b.ctx, b.sb),
		LoadStart:  loadavg(),
		Prefix:     benchbox.NsenterPrefix(b.ctx, b.sb),
		Work:       box.Work,
		SpecText:   specText(box.Rootfs, "", false),
	}
	if mem := memTotal(); mem != "" {
		rep.Machine["memory"] = mem
	}
	if err := b.writeSpecs(); err != nil {
		return err
	}
	if rep.Gen, err = b.generatorPhase(); err != nil {
		return err
	}
	benchbox.Progress("phase 2: declaring the target")
	if out, err := b.sh(box.Cove + " apply " + b.tfile); err != nil || strings.TrimSpace(out) != "added "+target {
		return fmt.Errorf("declare the target: %v\n%s", err, out)
	}
	for i, k := range o.ks {
		prev := 0
		if i > 0 {
			prev = o.ks[i-1]
		}
		kp, err := b.applyPhase(prev, k)
		if err != nil {
			return err
		}
		rep.Ks = append(rep.Ks, kp)
	}
	if rep.Cleanup, err = b.prune(); err != nil {
		return err
	}
	rep.LoadEnd = loadavg()

	benchbox.Progress("shutting the sandbox down")
	pidNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", b.sb.PID()))
	cgroups := b.sb.CgroupDirs()
	closed = true
	box.Close()
	rep.Cleanup.SleepsLeft = sleepsIn(pidNS)
	for _, d := range cgroups {
		if _, err := os.Stat(d); err == nil {
			rep.Cleanup.CgroupsLeft = append(rep.Cleanup.CgroupsLeft, d)
		}
	}
	_, err = os.Stat(box.Work)
	rep.Cleanup.WorkDirRemoved = errors.Is(err, os.ErrNotExist)
	benchbox.Progress(fmt.Sprintf("left behind: %d 'sleep 1000' processes of the sandbox, %d sandbox cgroups, work directory removed: %v",
		rep.Cleanup.SleepsLeft, len(rep.Cleanup.CgroupsLeft), rep.Cleanup.WorkDirRemoved))

	if o.jsonFile != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(o.jsonFile, append(data, '\n'), 0o644)
		}
		if err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printMarkdown(os.Stdout, rep)
	return nil
}

// specText is a spec whose payload sleeps. Its shell handles SIGTERM: a
// PID 1 without a handler ignores it, so every stop would last
// stop_timeout. The target gets a memory limit and no start limit (it is
// restarted more often than systemd's default 5 starts in 10 s allow).
func specText(rootfs, memory string, isTarget bool) string {
	s := fmt.Sprintf(`version = 1
kind = "container"
description = "cove bench/apply"
[container]
rootfs = %q
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
[service]
stop_timeout = "2s"
`, rootfs)
	if isTarget {
		s += "start_limit = { burst = 1000000 }\n"
	}
	if memory != "" {
		s += fmt.Sprintf("[resources]\nmemory = %q\n", memory)
	}
	return s
}

// fillName is the name of filler workload i.
func fillName(i int) string { return fmt.Sprintf("fill%04d", i) }

// writeSpecs writes the filler specs and the target's spec on the host.
func (b *bench) writeSpecs() error {
	b.specs = filepath.Join(b.box.Work, "specs")
	if err := os.MkdirAll(b.specs, 0o755); err != nil {
		return err
	}
	for i := 0; i < b.o.specs; i++ {
		p := filepath.Join(b.specs, fillName(i)+".toml")
		if err := os.WriteFile(p, []byte(specText(b.box.Rootfs, "", false)), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(b.box.Work, "empty"), 0o755); err != nil {
		return err
	}
	tdir := filepath.Join(b.box.Work, "target")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return err
	}
	b.tfile = filepath.Join(tdir, target+".toml")
	return b.setTarget(0)
}

// setTarget writes the target's spec with memories[i].
func (b *bench) setTarget(i int) error {
	return os.WriteFile(b.tfile, []byte(specText(b.box.Rootfs, memories[i].spec, true)), 0o644)
}

// sh runs a shell command inside (not timed) and returns its output.
func (b *bench) sh(script string) (string, error) {
	return benchbox.Inside(b.ctx, b.sb, cmdTimeout, nil, "sh", "-c", script)
}

// count runs a shell command that prints a number.
func (b *bench) count(script string) (int, error) {
	out, err := b.sh(script)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// timed runs argv inside, bounded by timeout, and returns its wall-clock
// time (of the whole nsenter invocation) in ms and its stdout; it fails
// unless argv exits 0.
func (b *bench) timed(timeout time.Duration, argv ...string) (float64, string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	cmd := b.sb.Command(ctx, argv[0], argv[1:]...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if b.ctx.Err() != nil {
		return 0, "", errors.New("interrupted")
	}
	if err != nil {
		return 0, out.String(), fmt.Errorf("%s: %v\nstdout: %s\nstderr: %s", strings.Join(argv, " "), err,
			tail(out.String(), 20), tail(errOut.String(), 20))
	}
	return benchbox.Millis(d), out.String(), nil
}

// add times argv once and appends the sample, and systemd's CPU time
// meanwhile, to s if measuring. It leaves systemd's CPU ticks at the end
// in b.ticks.
func (b *bench) add(s *series, measure bool) (string, error) {
	before, err := cpuTicks(b.sb.PID())
	if err != nil {
		return "", err
	}
	ms, out, err := b.timed(cmdTimeout, s.Argv...)
	if err != nil {
		return out, err
	}
	if b.ticks, err = cpuTicks(b.sb.PID()); err != nil {
		return "", err
	}
	if measure {
		s.Samples = append(s.Samples, ms)
		s.CPUSamples = append(s.CPUSamples, float64(b.ticks-before)*tickMs)
	}
	return out, nil
}

// timeGenerator empties the output directory (not timed), times the
// generator into it and returns how many services it wrote.
func (b *bench) timeGenerator(s *series, measure bool) (int, error) {
	if _, err := b.sh("rm -rf " + genOut + " && mkdir " + genOut); err != nil {
		return 0, err
	}
	if _, err := b.add(s, measure); err != nil {
		return 0, err
	}
	return b.count("ls " + genOut + " | grep -c '^cove-.*\\.service$' || true")
}

// generatorPhase: phase 1.
func (b *bench) generatorPhase() (*genPhase, error) {
	o := b.o
	benchbox.Progress(fmt.Sprintf("phase 1: %d specs in /etc/cove; generator and daemon-reload with %d and 0 specs, %d rounds", o.specs, o.specs, o.genN))
	if _, err := b.sh(fmt.Sprintf("mkdir -p /etc/cove && cp %s/*.toml /etc/cove/ && ls /etc/cove | grep -c toml", b.specs)); err != nil {
		return nil, err
	}
	n := strconv.Itoa(o.specs)
	g := &genPhase{
		Specs:       o.specs,
		Rounds:      o.genN,
		GenFull:     &series{Name: "cove-generator, " + n + " specs", Argv: []string{b.box.Generator, genOut}},
		GenEmpty:    &series{Name: "cove-generator, 0 specs", Argv: []string{b.box.Generator, genOut}},
		ReloadFull:  &series{Name: "systemctl daemon-reload, " + n + " specs", Argv: []string{"systemctl", "daemon-reload"}},
		ReloadEmpty: &series{Name: "systemctl daemon-reload, 0 specs", Argv: []string{"systemctl", "daemon-reload"}},
		Floor:       &series{Name: "nsenter floor", Argv: []string{"/bin/true"}},
	}
	on := "mv " + offDir + " /etc/cove"
	off := "mv /etc/cove " + offDir
	for round := 0; round < o.warmup+o.genN; round++ {
		measure := round >= o.warmup
		// Alternate which state comes first in a round.
		for i := 0; i < 2; i++ {
			full := (round+i)%2 == 0
			if full {
				if _, err := b.sh("test -d /etc/cove || " + on); err != nil {
					return nil, err
				}
				got, err := b.timeGenerator(g.GenFull, measure)
				if err != nil {
					return nil, err
				}
				if got != o.specs {
					return nil, fmt.Errorf("generator wrote %d services from %d specs", got, o.specs)
				}
				g.GeneratedOut = got
				if err := b.quiesce(); err != nil {
					return nil, err
				}
				if _, err := b.add(g.ReloadFull, measure); err != nil {
					return nil, err
				}
				if got, err := b.count("ls /run/systemd/generator | grep -c '^cove-.*\\.service$' || true"); err != nil || got != o.specs {
					return nil, fmt.Errorf("daemon-reload generated %d of %d units (%v)", got, o.specs, err)
				}
				if g.LoadedAfter, err = b.count("systemctl list-units --all --no-legend --plain 'cove-*' | wc -l"); err != nil {
					return nil, err
				}
			} else {
				if _, err := b.sh("test ! -d /etc/cove || " + off); err != nil {
					return nil, err
				}
				got, err := b.timeGenerator(g.GenEmpty, measure)
				if err != nil {
					return nil, err
				}
				if got != 0 {
					return nil, fmt.Errorf("generator wrote %d services from no specs", got)
				}
				if err := b.quiesce(); err != nil {
					return nil, err
				}
				if _, err := b.add(g.ReloadEmpty, measure); err != nil {
					return nil, err
				}
			}
		}
		if _, err := b.add(g.Floor, measure); err != nil {
			return nil, err
		}
	}
	for _, s := range []*series{g.GenFull, g.GenEmpty, g.ReloadFull, g.ReloadEmpty, g.Floor} {
		summarize(s)
	}
	g.PerSpecMs = (g.GenFull.Median - g.GenEmpty.Median) / float64(o.specs)
	g.ReloadPerMs = (g.ReloadFull.Median - g.ReloadEmpty.Median) / float64(o.specs)
	// Leave no specs behind for phase 2.
	if _, err := b.sh("rm -rf /etc/cove " + offDir + " && systemctl daemon-reload"); err != nil {
		return nil, err
	}
	return g, nil
}

// applyPhase: phase 2 at K = k, with prev fillers declared already.
func (b *bench) applyPhase(prev, k int) (*kPhase, error) {
	o := b.o
	kp := &kPhase{K: k, Rounds: o.n, Declared: k - prev}
	if k > prev {
		benchbox.Progress(fmt.Sprintf("phase 2: declaring %d more workloads (cove apply of %d new specs; starts them)", k-prev, k-prev))
		argv := []string{b.box.Cove, "apply"}
		for i := prev; i < k; i++ {
			argv = append(argv, filepath.Join(b.specs, fillName(i)+".toml"))
		}
		ms, out, err := b.timed(bulkTimeout, argv...)
		if err != nil {
			return nil, err
		}
		if got := strings.Count(out, "\nadded ") + boolInt(strings.HasPrefix(out, "added ")); got != k-prev {
			return nil, fmt.Errorf("apply of %d new specs added %d:\n%s", k-prev, got, tail(out, 10))
		}
		kp.DeclareMs = ms
		benchbox.Progress(fmt.Sprintf("phase 2: declared %d workloads in %.1f s", k-prev, ms/1000))
	}
	running, err := b.count("systemctl list-units --type=service --state=running --no-legend --plain 'cove-*' | wc -l")
	if err != nil {
		return nil, err
	}
	if running != k+1 {
		return nil, fmt.Errorf("%d cove units running, want %d", running, k+1)
	}
	kp.Running = running
	benchbox.Progress(fmt.Sprintf("phase 2: K = %d (%d running); %d rounds of apply, diff, daemon-reload, restart, generator", k, running, o.n))

	kp.Apply = &series{Name: "cove apply (one changed spec)", Argv: []string{b.box.Cove, "apply", b.tfile}}
	kp.Diff = &series{Name: "cove diff", Argv: []string{b.box.Cove, "diff", b.tfile}}
	kp.Reload = &series{Name: "systemctl daemon-reload", Argv: []string{"systemctl", "daemon-reload"}}
	kp.Settled = &series{Name: "systemctl restart, systemd idle", Argv: []string{"systemctl", "restart", "cove-" + target + ".service"}}
	kp.Restart = &series{Name: "systemctl restart, right after daemon-reload", Argv: kp.Settled.Argv}
	kp.Gen = &series{Name: "cove-generator", Argv: []string{b.box.Generator, genOut}}
	kp.Floor = &series{Name: "nsenter floor", Argv: []string{"/bin/true"}}
	for round := 0; round < o.warmup+o.n; round++ {
		measure := round >= o.warmup
		b.flip++
		mem := memories[b.flip%2]
		if err := b.setTarget(b.flip % 2); err != nil {
			return nil, err
		}
		if err := b.quiesce(); err != nil {
			return nil, err
		}
		if kp.GeneratedOut, err = b.timeGenerator(kp.Gen, measure); err != nil {
			return nil, err
		}
		if kp.GeneratedOut != k+1 {
			return nil, fmt.Errorf("generator wrote %d services, want %d", kp.GeneratedOut, k+1)
		}
		if _, err := b.add(kp.Settled, measure); err != nil {
			return nil, err
		}
		out, err := b.add(kp.Diff, measure)
		if err != nil {
			return nil, err
		}
		if !strings.Contains(out, "changed   "+target+" (resources.memory)") || strings.Count(out, "\n") != k+1 {
			return nil, fmt.Errorf("cove diff at K = %d:\n%s", k, tail(out, 5))
		}
		if err := b.quiesce(); err != nil {
			return nil, err
		}
		if out, err = b.add(kp.Apply, measure); err != nil {
			return nil, err
		}
		applied := b.ticks
		if strings.TrimSpace(out) != "changed "+target {
			return nil, fmt.Errorf("cove apply: %q", out)
		}
		if got, err := b.sh("systemctl show -p MemoryMax --value cove-" + target + ".service"); err != nil || strings.TrimSpace(got) != mem.bytes {
			return nil, fmt.Errorf("MemoryMax after apply = %q, want %s (%v)", strings.TrimSpace(got), mem.bytes, err)
		}
		idle, err := b.idleTicks()
		if err != nil {
			return nil, err
		}
		if measure {
			kp.AfterApplyCPU = append(kp.AfterApplyCPU, float64(idle-applied)*tickMs)
		}
		if _, err := b.add(kp.Reload, measure); err != nil {
			return nil, err
		}
		reply := b.ticks
		if _, err := b.add(kp.Restart, measure); err != nil {
			return nil, err
		}
		if _, err := b.add(kp.Floor, measure); err != nil {
			return nil, err
		}
		if idle, err = b.idleTicks(); err != nil {
			return nil, err
		}
		if measure {
			kp.AfterCPU = append(kp.AfterCPU, float64(idle-reply)*tickMs)
		}
	}
	kp.AfterCPUMedian = benchbox.Summarize(kp.AfterCPU).Median
	kp.AfterApplyCPUMedian = benchbox.Summarize(kp.AfterApplyCPU).Median
	for _, s := range []*series{kp.Apply, kp.Diff, kp.Reload, kp.Settled, kp.Restart, kp.Gen, kp.Floor} {
		summarize(s)
	}
	f := kp.Floor.Median
	kp.PartsNetMs = (kp.Diff.Median - f) + (kp.Reload.Median - f) + (kp.Restart.Median - f)
	if n, err := b.count("systemctl list-units --type=service --state=running --no-legend --plain 'cove-*' | wc -l"); err != nil || n != k+1 {
		return nil, fmt.Errorf("after the rounds: %d cove units running, want %d (%v)", n, k+1, err)
	}
	return kp, nil
}

// quiesce waits (at most quiesceMax) until the sandbox's systemd is idle:
// it used no CPU time for a whole quiesceWindow. After a daemon-reload
// systemd goes on working (cgroup realisation, D-Bus signals) after its
// reply; commands timed after quiesce do not pay for that.
func (b *bench) quiesce() error {
	_, err := b.idleTicks()
	return err
}

// idleTicks is quiesce, returning systemd's CPU ticks once idle.
func (b *bench) idleTicks() (int64, error) {
	deadline := time.Now().Add(quiesceMax)
	last, err := cpuTicks(b.sb.PID())
	if err != nil {
		return 0, err
	}
	for time.Now().Before(deadline) {
		select {
		case <-b.ctx.Done():
			return 0, errors.New("interrupted")
		case <-time.After(quiesceWindow):
		}
		now, err := cpuTicks(b.sb.PID())
		if err != nil {
			return 0, err
		}
		if now == last {
			return now, nil
		}
		last = now
	}
	benchbox.Progress(fmt.Sprintf("systemd not idle after %v; going on", quiesceMax))
	return last, nil
}

// cpuTicks returns the user plus system CPU time of process pid in clock
// ticks.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// After the command: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return ut + st, nil
}

// prune: phase 3, inside the sandbox.
func (b *bench) prune() (*cleanup, error) {
	all := b.o.ks[len(b.o.ks)-1] + 1
	benchbox.Progress(fmt.Sprintf("cleanup: cove apply --prune EMPTYDIR (%d workloads)", all))
	applied := "ls /var/lib/cove/applied 2>/dev/null | grep -c '\\.toml$' || true"
	before, err := b.count(applied)
	if err != nil || before != all {
		return nil, fmt.Errorf("before prune: %d applied specs, want %d (%v)", before, all, err)
	}
	// apply prints nothing for removed workloads.
	ms, _, err := b.timed(bulkTimeout, b.box.Cove, "apply", "--prune", filepath.Join(b.box.Work, "empty"))
	if err != nil {
		return nil, err
	}
	c := &cleanup{PruneMs: ms, Pruned: before}
	if c.SleepsInside, err = b.count("ps -eo args | grep -c '^sleep 1000' || true"); err != nil {
		return nil, err
	}
	if n, err := b.count("{ ls /etc/cove; ls /var/lib/cove/applied; } 2>/dev/null | grep -c toml || true"); err != nil || n != 0 {
		return nil, fmt.Errorf("after prune: %d specs left (%v)", n, err)
	}
	if n, err := b.count("systemctl list-units --all --no-legend --plain 'cove-*' | wc -l"); err != nil || n != 0 {
		return nil, fmt.Errorf("after prune: %d cove units still loaded (%v)", n, err)
	}
	benchbox.Progress(fmt.Sprintf("cleanup: pruned %d in %.1f s; %d 'sleep 1000' left inside", c.Pruned, ms/1000, c.SleepsInside))
	return c, nil
}

// sleepsIn counts host processes running "sleep 1000" in PID namespace ns.
func sleepsIn(ns string) int {
	if ns == "" {
		return 0
	}
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || string(cmdline) != "sleep\x001000\x00" {
			continue
		}
		// A process that has left the namespace (it cannot) or whose
		// namespace is unreadable counts only if it is ours.
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			n++
		}
	}
	return n
}

// summarize fills a series' statistics.
func summarize(s *series) {
	st := benchbox.Summarize(s.Samples)
	s.Median, s.P90, s.Min, s.Mean = st.Median, st.P90, st.Min, st.Mean
	s.CPUMedian = benchbox.Summarize(s.CPUSamples).Median
}

// boolInt is 1 for true.
func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// loadavg returns the host's load averages.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// memTotal returns the host's memory in GiB.
func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err == nil {
				return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return ""
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

// printMarkdown writes the report as markdown tables with notes.
func printMarkdown(w io.Writer, rep *report) {
	g := rep.Gen
	fmt.Fprintf(w, "%s UTC; `%s`\n\n", strings.Replace(rep.Date, "T", " ", 1), rep.Invocation)
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

	n := 0
	if len(rep.Ks) > 0 {
		n = rep.Ks[0].Rounds
	}
	fmt.Fprintf(w, "**One changed spec at K other declared, running workloads** (%d rounds after %d warm-up rounds at each K, interleaved; median (p90)):\n\n", n, rep.Warmup)
	kHeader(w, "command (inside the sandbox)", rep.Ks)
	rows := []struct {
		label string
		get   func(*kPhase) *series
	}{
		{"`cove apply target.toml` (restarts it)", func(k *kPhase) *series { return k.Apply }},
		{"`cove diff target.toml`", func(k *kPhase) *series { return k.Diff }},
		{"`systemctl daemon-reload`", func(k *kPhase) *series { return k.Reload }},
		{"`systemctl restart cove-target.service`, systemd idle", func(k *kPhase) *series { return k.Settled }},
		{"the same, right after `systemctl daemon-reload`", func(k *kPhase) *series { return k.Restart }},
		{"`cove-generator " + genOut + "`", func(k *kPhase) *series { return k.Gen }},
		{"`/bin/true` (nsenter floor)", func(k *kPhase) *series { return k.Floor }},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |", r.label)
		for _, k := range rep.Ks {
			fmt.Fprintf(w, " %s |", ms(r.get(k)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "| apply, net of the floor |")
	for _, k := range rep.Ks {
		fmt.Fprintf(w, " %s |", dur(k.Apply.Median-k.Floor.Median))
	}
	fmt.Fprint(w, "\n| diff + daemon-reload + restart right after it, each net of the floor |")
	for _, k := range rep.Ks {
		fmt.Fprintf(w, " %s |", dur(k.PartsNetMs))
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "| cove units running |")
	for _, k := range rep.Ks {
		fmt.Fprintf(w, " %d |", k.Running)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)

	fmt.Fprintln(w, "systemd's own CPU time (median; user + system of the sandbox's PID 1, 10 ms ticks):")
	fmt.Fprintln(w)
	kHeader(w, "while …", rep.Ks)
	cpuRows := []struct {
		label string
		get   func(*kPhase) float64
	}{
		{"`cove apply target.toml` ran", func(k *kPhase) float64 { return k.Apply.CPUMedian }},
		{"after `cove apply` exited, until idle", func(k *kPhase) float64 { return k.AfterApplyCPUMedian }},
		{"`systemctl daemon-reload` ran", func(k *kPhase) float64 { return k.Reload.CPUMedian }},
		{"after the daemon-reload's reply, until idle (with one restart)", func(k *kPhase) float64 { return k.AfterCPUMedian }},
		{"`systemctl restart`, systemd idle, ran", func(k *kPhase) float64 { return k.Settled.CPUMedian }},
	}
	for _, r := range cpuRows {
		fmt.Fprintf(w, "| %s |", r.label)
		for _, k := range rep.Ks {
			fmt.Fprintf(w, " %s |", dur(r.get(k)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)

	if len(rep.Ks) > 1 && rep.Ks[0].K == 0 {
		base := rep.Ks[0]
		kHeader(w, "ratio of medians to K = 0", rep.Ks[1:])
		for _, r := range rows[:6] {
			fmt.Fprintf(w, "| %s |", r.label)
			for _, k := range rep.Ks[1:] {
				fmt.Fprintf(w, " %s |", ratio(r.get(k).Median, r.get(base).Median))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}

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

	fmt.Fprintf(w, "- Each time is the wall clock of the whole `%s CMD` invocation from the host.\n",
		strings.Join(rep.Prefix, " "))
	fmt.Fprintf(w, "- Every spec (filler `fillNNNN` and `target`): busybox rootfs, `command = [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; sleep 1000 & wait\"]`, `stop_timeout = \"2s\"`; the target alternates `memory = \"64M\"`/`\"96M\"` and has `start_limit = { burst = 1000000 }`.\n")
	fmt.Fprintf(w, "- Cleanup: %d `sleep 1000` inside after the prune; after shutdown %d left in the sandbox's PID namespace, %d sandbox cgroups left, work directory removed: %v.\n",
		c.SleepsInside, c.SleepsLeft, len(c.CgroupsLeft), c.WorkDirRemoved)
	fmt.Fprintf(w, "- machine: %s; load average at start %s, at end %s.\n", benchbox.MachineLine(rep.Machine), rep.LoadStart, rep.LoadEnd)
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
