// Command vm measures what cove adds to booting a small VM: the time from
// the exec of `cove run --rm VMSPEC` until the guest's first console line
// (COVE-GUEST-BOOTED) reaches cove's stdout, and until cove exits after the
// guest powered off, next to the identical QEMU command run directly. Both
// run inside one private systemd booted by tests/sandbox, interleaved
// round-robin. Each run is also split where QEMU creates its QMP socket
// (inotify), which separates what cove adds before QEMU runs from the
// guest's boot. It then measures the resident memory of QEMU for a 256 MiB
// guest idling under `cove run -d` (/proc/PID/status, by mapping from
// /proc/PID/smaps, and the unit's MemoryCurrent), stops it with `cove
// stop`, and checks that no QEMU of its own is left.
//
// Usage (as root, from the repository root):
//
//	go run ./bench/vm -n 10
//	go run ./bench/vm -n 10 -json
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
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/tests/sandbox"
	"github.com/cove-project/cove/tests/vmguest"
	"github.com/cove-project/cove/units"
)

// guestCache is where the test guest is built (shared with the tests).
const guestCache = "/var/tmp/cove-vmguest"

// Workload names: distinctive, so that a QEMU of this program can be told
// from the integration tests' on the host.
const (
	bootName = "benchvm"
	idleName = "benchvmidle"
)

// bootTimeout bounds one boot (TCG on a busy 2-CPU machine can take long).
const bootTimeout = 3 * time.Minute

// idleSettle is how long the idle guest runs after COVE-GUEST-WAITING
// before its memory is sampled.
const idleSettle = 2 * time.Second

// bench is one way of booting the guest.
type bench struct {
	Key      string    `json:"key"`               // A, B
	Name     string    `json:"name"`              // cove run --rm, QEMU directly
	Argv     []string  `json:"argv"`              // of the first measured round
	QMPMs    []float64 `json:"qmp_samples_ms"`    // exec → qmp.sock created (QEMU is up)
	MarkerMs []float64 `json:"marker_samples_ms"` // exec → COVE-GUEST-BOOTED on stdout
	ExitMs   []float64 `json:"exit_samples_ms"`   // exec → exit
	QMP      stats     `json:"qmp"`
	Marker   stats     `json:"marker"`
	Exit     stats     `json:"exit"`
	sockDir  string    // B's socket directory in Argv
}

// add appends one run's sample.
func (b *bench) add(s sample) {
	b.QMPMs, b.MarkerMs, b.ExitMs = append(b.QMPMs, s.qmp), append(b.MarkerMs, s.marker), append(b.ExitMs, s.exit)
}

// phase is a part of a run, from one event to the next: medians of A and
// B and the median of the per-round differences A−B.
type phase struct {
	Name       string  `json:"name"`
	A          float64 `json:"a_median_ms"`
	B          float64 `json:"b_median_ms"`
	PairedDiff diff    `json:"paired_diff"`
}

// phases splits the runs at the QMP socket and the marker.
func phases(a, b *bench) []phase {
	// spans returns, per run of x, the three phases' durations.
	spans := func(x *bench) [3][]float64 {
		var d [3][]float64
		for i := range x.ExitMs {
			d[0] = append(d[0], x.QMPMs[i])
			d[1] = append(d[1], x.MarkerMs[i]-x.QMPMs[i])
			d[2] = append(d[2], x.ExitMs[i]-x.MarkerMs[i])
		}
		return d
	}
	sa, sb := spans(a), spans(b)
	names := [3]string{
		"exec → QEMU up (qmp.sock created)",
		"QEMU up → COVE-GUEST-BOOTED (guest boot)",
		"COVE-GUEST-BOOTED → exit (poweroff, teardown)",
	}
	var out []phase
	for k, name := range names {
		out = append(out, phase{Name: name, A: summarize(sa[k]).Median, B: summarize(sb[k]).Median, PairedDiff: pairedDiff(sa[k], sb[k])})
	}
	return out
}

// sample is one run: milliseconds from the exec until QEMU created its QMP
// socket, until the marker arrived, until the command exited.
type sample struct{ qmp, marker, exit float64 }

// stats summarise one series.
type stats struct {
	Median float64 `json:"median_ms"`
	P90    float64 `json:"p90_ms"`
	Min    float64 `json:"min_ms"`
	Mean   float64 `json:"mean_ms"`
}

// memory is the idle guest's footprint.
type memory struct {
	GuestMiB       uint64            `json:"guest_mib"`
	MainPID        string            `json:"main_pid"`
	Exe            string            `json:"exe"`
	Status         map[string]string `json:"proc_status"`       // VmRSS, VmHWM, RssAnon, RssFile, RssShmem
	Breakdown      map[string]uint64 `json:"rss_breakdown_kib"` // from /proc/PID/smaps, see breakdown
	MemoryCurrent  string            `json:"memory_current"`
	MemoryMax      string            `json:"memory_max"`
	ArgvIdentical  bool              `json:"argv_identical"`
	ArgvDiff       string            `json:"argv_diff,omitempty"`
	WaitingAfterMs float64           `json:"waiting_after_ms"` // cove run -d exec → marker seen in the journal (polled)
	StopMs         float64           `json:"stop_ms"`          // cove stop
	ShutdownHook   bool              `json:"shutdown_hook"`    // the guest logged COVE-GUEST-SHUTDOWN-HOOK: it powered off on the ACPI button
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
	LeftoverQEMU         []string `json:"leftover_qemu,omitempty"`
	HostQEMUAfterCleanup []string `json:"host_qemu_after_cleanup,omitempty"`

	work string // the work directory, shown as $W
}

type options struct {
	n, warmup     int
	json, verbose bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 10, "measured rounds")
	flag.IntVar(&o.warmup, "warmup", 2, "warm-up rounds (not counted)")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of a markdown table")
	flag.BoolVar(&o.verbose, "v", false, "copy the sandbox's console output to stderr")
	flag.Parse()
	if o.n < 1 || o.warmup < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	rep, err := benchmark(o)
	if rep != nil {
		// Checked after the sandbox is gone: no QEMU of ours may be left.
		rep.HostQEMUAfterCleanup = ourQEMUs()
		if len(rep.HostQEMUAfterCleanup) > 0 {
			err = errors.Join(err, fmt.Errorf("QEMU left running on the host after cleanup:\n%s",
				strings.Join(rep.HostQEMUAfterCleanup, "\n")))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	printMarkdown(os.Stdout, rep)
}

// benchmark sets everything up, runs the rounds and the memory sample, and
// shuts the sandbox down before it returns.
func benchmark(o options) (*report, error) {
	if _, err := lookPath("qemu-system-x86_64"); err != nil {
		return nil, errors.New("qemu-system-x86_64 missing: apt-get install qemu-system-x86")
	}
	benchbox.Progress("building the test guest in " + guestCache)
	g, err := vmguest.Build(guestCache)
	if err != nil {
		return nil, fmt.Errorf("build the test guest: %w", err)
	}
	box, err := benchbox.Setup(benchbox.Options{Declared: true, Verbose: o.verbose, BootTimeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	defer box.Close()
	ctx, sb := box.Ctx, box.SB

	rep := &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Invocation: "go run ./bench/vm " + strings.Join(os.Args[1:], " "),
		Rounds:     o.n,
		Warmup:     o.warmup,
		Machine:    benchbox.Machine(ctx, sb),
		Prefix:     benchbox.NsenterPrefix(ctx, sb),
		Guest:      g,
		TSCkHz:     hostcheck.HostTSCkHz(),
		work:       box.Work,
	}
	if out, err := benchbox.Inside(ctx, sb, benchbox.CmdTimeout, nil, "qemu-system-x86_64", "--version"); err == nil {
		rep.Machine["qemu"], _, _ = strings.Cut(strings.TrimSpace(out), "\n")
	}

	specDir := filepath.Join(box.Work, "vms")
	bootSpec, err := writeSpec(specDir, bootName, g, "poweroff")
	if err != nil {
		return rep, err
	}
	rep.Spec = specText(g, "poweroff")
	idleSpec, err := writeSpec(specDir, idleName, g, "wait")
	if err != nil {
		return rep, err
	}
	conf, err := directConfig(bootSpec, rep.TSCkHz)
	if err != nil {
		return rep, err
	}

	a := &bench{Key: "A", Name: "cove run --rm", Argv: []string{box.Cove, "run", "--rm", bootSpec}}
	b := &bench{Key: "B", Name: "QEMU directly"}
	rep.Benches = []*bench{a, b}
	aDir := fmt.Sprintf("/proc/%d/root%s", sb.PID(), filepath.Dir(launch.QMPSocket(bootName)))
	sockets := filepath.Join(box.Work, "sockets")
	if err := os.MkdirAll(sockets, 0o755); err != nil {
		return rep, err
	}
	for round := 0; round < o.warmup+o.n; round++ {
		if round == o.warmup {
			benchbox.Progress(fmt.Sprintf("warm-up done (%d rounds); measuring %d rounds", o.warmup, o.n))
		}
		measure := round >= o.warmup
		// A: through cove. QEMU creates its sockets in the VM's
		// directory in the sandbox's /run, which the launcher creates and
		// leaves behind (made here if no run made it yet).
		if err := os.MkdirAll(aDir, 0o700); err != nil {
			return rep, err
		}
		sA, err := timeBoot(ctx, sb, a.Argv, aDir)
		if err != nil {
			return rep, fmt.Errorf("round %d, A: %w", round+1, err)
		}
		// B: the same QEMU command, with a fresh socket directory.
		dir, err := os.MkdirTemp(sockets, "b-")
		if err != nil {
			return rep, err
		}
		c := conf
		c.QMPSocket, c.ConsoleSocket = filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "console.sock")
		argv, err := isolate.QEMUArgv(c)
		if err != nil {
			return rep, err
		}
		sB, err := timeBoot(ctx, sb, argv, dir)
		os.RemoveAll(dir)
		if err != nil {
			return rep, fmt.Errorf("round %d, B: %w", round+1, err)
		}
		tag := "warm-up"
		if measure {
			tag = "measured"
			a.add(sA)
			b.add(sB)
			if b.Argv == nil {
				b.Argv, b.sockDir = argv, dir
			}
		}
		benchbox.Progress(fmt.Sprintf("round %d/%d (%s): A qmp %.0f, marker %.0f, exit %.0f ms; B qmp %.0f, marker %.0f, exit %.0f ms",
			round+1, o.warmup+o.n, tag, sA.qmp, sA.marker, sA.exit, sB.qmp, sB.marker, sB.exit))
	}
	for _, x := range rep.Benches {
		x.QMP, x.Marker, x.Exit = summarize(x.QMPMs), summarize(x.MarkerMs), summarize(x.ExitMs)
	}
	rep.MarkerOverhead = (a.Marker.Median/b.Marker.Median - 1) * 100
	rep.ExitOverhead = (a.Exit.Median/b.Exit.Median - 1) * 100
	rep.MarkerPairedDiff = pairedDiff(a.MarkerMs, b.MarkerMs)
	rep.ExitPairedDiff = pairedDiff(a.ExitMs, b.ExitMs)
	rep.Phases = phases(a, b)

	benchbox.Progress("memory: booting an idle 256 MiB guest with cove run -d")
	rep.Memory, err = measureMemory(ctx, sb, box.Cove, idleSpec, rep.TSCkHz)
	if err != nil {
		return rep, fmt.Errorf("memory: %w", err)
	}

	// Nothing of ours may be left inside: the sandbox's PID namespace holds
	// every QEMU started here (A's in the units, B's through nsenter).
	out, _, _, _ := sb.Run(ctx, "pgrep", "-a", "qemu")
	if s := strings.TrimSpace(out); s != "" {
		rep.LeftoverQEMU = strings.Split(s, "\n")
		return rep, fmt.Errorf("QEMU still running inside the sandbox:\n%s", s)
	}
	benchbox.Progress("shutting the sandbox down")
	box.Close()
	return rep, nil
}

// specText is the VM spec booting g in mode: microvm, TCG, 1 vCPU, 256 MiB,
// as the integration tests write it.
func specText(g vmguest.Guest, mode string) string {
	return fmt.Sprintf(`version = 1
kind = "vm"
[vm]
kernel = %q
initrd = %q
cmdline = %q
machine = "microvm"
cpus = 1
memory = "256M"
accel = "tcg"
[service]
stop_timeout = "10s"
`, g.Kernel, g.Initrd, vmguest.Cmdline(mode))
}

// writeSpec writes dir/name.toml and returns its path.
func writeSpec(dir, name string, g vmguest.Guest, mode string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+".toml")
	return p, os.WriteFile(p, []byte(specText(g, mode)), 0o644)
}

// directConfig is what cove's launcher would exec for the spec at path:
// the unit's launcher configuration (PrepareVM, units.VMConfig), accel
// resolved to tcg and the TSC hint added. Only the sockets differ per run.
func directConfig(path string, khz uint64) (launch.VMConfig, error) {
	s, err := spec.Load(path, "")
	if err != nil {
		return launch.VMConfig{}, err
	}
	if err := hostcheck.PrepareVM(s); err != nil {
		return launch.VMConfig{}, err
	}
	c := units.VMConfig(s)
	c.Accel = spec.AccelTCG
	return isolate.TSCHint(c, khz), nil
}

// timeBoot runs argv inside the sandbox with stdout on a pipe and stdin on
// /dev/null, and returns the milliseconds from the exec until qmp.sock
// appeared in sockDir (inotify), until COVE-GUEST-BOOTED arrived on the
// pipe and until the command exited. It fails unless the command exits 0
// and printed the marker.
func timeBoot(ctx context.Context, sb *sandbox.Sandbox, argv []string, sockDir string) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return sample{}, fmt.Errorf("inotify: %w", err)
	}
	watch := os.NewFile(uintptr(ifd), "inotify") // non-blocking: Close ends a Read
	defer watch.Close()
	if _, err := unix.InotifyAddWatch(ifd, sockDir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return sample{}, fmt.Errorf("inotify %s: %w", sockDir, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return sample{}, err
	}
	defer r.Close()
	cmd := sb.Command(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	var (
		mu      sync.Mutex
		out     bytes.Buffer
		qmp     time.Duration = -1
		marker  time.Duration = -1
		copied                = make(chan struct{})
		watched               = make(chan struct{})
	)
	start := time.Now()
	go func() {
		defer close(watched)
		buf := make([]byte, 16<<10)
		for {
			n, err := watch.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if name == "qmp.sock" {
					mu.Lock()
					if qmp < 0 {
						qmp = time.Since(start)
					}
					mu.Unlock()
				}
			}
		}
	}()
	go func() {
		defer close(copied)
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			if marker < 0 && bytes.Contains(out.Bytes(), []byte(vmguest.MarkerBooted)) {
				marker = time.Since(start)
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if err := cmd.Start(); err != nil {
		w.Close()
		return sample{}, err
	}
	w.Close()
	err = cmd.Wait()
	done := time.Since(start)
	// The pipe ends once the last writer (QEMU, cove, nsenter) is gone;
	// bound the wait in case a stray holder keeps it open.
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}
	watch.Close()
	<-watched
	mu.Lock()
	defer mu.Unlock()
	switch {
	case err != nil:
		return sample{}, fmt.Errorf("%v\nstderr: %s\nstdout (end): %s", err, tail(stderr.String(), 10), tail(out.String(), 20))
	case marker < 0:
		return sample{}, fmt.Errorf("no %s on stdout\nstderr: %s\nstdout (end): %s", vmguest.MarkerBooted, tail(stderr.String(), 10), tail(out.String(), 20))
	case qmp < 0:
		return sample{}, fmt.Errorf("QEMU created no qmp.sock in %s", sockDir)
	}
	return sample{benchbox.Millis(qmp), benchbox.Millis(marker), benchbox.Millis(done)}, nil
}

// measureMemory starts the idle guest with cove run -d, waits for
// COVE-GUEST-WAITING in its journal plus idleSettle, samples QEMU's
// /proc/PID/status and the unit's MemoryCurrent, checks that QEMU's
// command line is the one B runs (sockets aside), then stops it with cove
// stop and removes the unit.
func measureMemory(ctx context.Context, sb *sandbox.Sandbox, cove, specPath string, khz uint64) (*memory, error) {
	m := &memory{GuestMiB: 256, Status: map[string]string{}}
	unit := "cove-" + idleName + ".service"
	in := func(argv ...string) (string, error) {
		out, err := benchbox.Inside(ctx, sb, benchbox.CmdTimeout, nil, argv...)
		return strings.TrimSpace(out), err
	}
	show := func(prop string) string {
		out, _ := in("systemctl", "show", "-p", prop, "--value", unit)
		return out
	}
	start := time.Now()
	if _, err := in(cove, "run", "-d", specPath); err != nil {
		return nil, err
	}
	cleanup := func() {
		// Best effort; the sandbox's shutdown ends whatever is left.
		in(cove, "stop", idleName)
		in(cove, "rm", idleName)
	}
	deadline := time.Now().Add(bootTimeout)
	for {
		logs, _ := in(cove, "logs", idleName)
		if strings.Contains(logs, vmguest.MarkerWaiting) {
			m.WaitingAfterMs = benchbox.Millis(time.Since(start))
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			cleanup()
			return nil, fmt.Errorf("no %s within %v; logs:\n%s", vmguest.MarkerWaiting, bootTimeout, tail(logs, 20))
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(idleSettle)
	m.MainPID = show("MainPID")
	m.Exe, _ = in("readlink", "/proc/"+m.MainPID+"/exe")
	status, err := in("cat", "/proc/"+m.MainPID+"/status")
	if err != nil {
		cleanup()
		return nil, err
	}
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		switch k {
		case "VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem":
			if ok {
				m.Status[k] = strings.TrimSpace(v)
			}
		}
	}
	if smaps, err := in("cat", "/proc/"+m.MainPID+"/smaps"); err == nil {
		m.Breakdown = breakdown(smaps, m.GuestMiB, specKernel(specPath))
	}
	m.MemoryCurrent = show("MemoryCurrent")
	m.MemoryMax = show("MemoryMax")

	// The QEMU command line cove exec'd, against what B builds.
	cmdline, err := in("cat", "/proc/"+m.MainPID+"/cmdline")
	if err == nil {
		got := strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00")
		c, err := directConfig(specPath, khz)
		if err != nil {
			cleanup()
			return nil, err
		}
		want, err := isolate.QEMUArgv(c) // the unit's sockets: only those differ in B
		if err != nil {
			cleanup()
			return nil, err
		}
		m.ArgvIdentical = strings.Join(got, "\x00") == strings.Join(want, "\x00")
		if !m.ArgvIdentical {
			m.ArgvDiff = fmt.Sprintf("cove: %q\nB:    %q", got, want)
		}
	}

	t := time.Now()
	if _, err := in(cove, "stop", idleName); err != nil {
		cleanup()
		return nil, err
	}
	m.StopMs = benchbox.Millis(time.Since(t))
	logs, _ := in(cove, "logs", idleName)
	m.ShutdownHook = strings.Contains(logs, vmguest.MarkerShutdownHook)
	// A stopped transient unit is usually unloaded at once; remove it if
	// it is still there.
	if show("LoadState") == "loaded" {
		if _, err := in(cove, "rm", idleName); err != nil {
			benchbox.Progress("cove rm " + idleName + ": " + err.Error())
		}
	}
	if st := show("ActiveState"); st == "active" || st == "activating" || st == "deactivating" {
		return m, fmt.Errorf("%s still %s after cove stop", unit, st)
	}
	return m, nil
}

// Parts of QEMU's resident memory, by mapping (see breakdown).
const (
	partGuest  = "guest RAM"
	partTCG    = "TCG code buffer"
	partKernel = "kernel image"
	partFiles  = "other files"
	partOther  = "other anonymous"
)

// breakdown sums the Rss of QEMU's mappings in smaps by what they are: the
// guest's RAM (the anonymous private mapping of exactly guestMiB), TCG's
// translated-code buffer (anonymous rwx), the kernel file (QEMU maps the
// ELF it loads), other files (QEMU's binary, libraries, the initrd) and
// other anonymous memory (QEMU's heap and arenas, stacks).
func breakdown(smaps string, guestMiB uint64, kernel string) map[string]uint64 {
	parts := map[string]uint64{}
	var part string
	var size uint64
	for _, line := range strings.Split(smaps, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			path := ""
			if len(f) >= 6 {
				path = f[5]
			}
			part, size = partOther, 0
			switch {
			case path == kernel:
				part = partKernel
			case strings.HasPrefix(path, "/"):
				part = partFiles
			case path == "" && f[1] == "rwxp":
				part = partTCG
			case path == "" && f[1] == "rw-p":
				part = "anon" // guest RAM if the size matches
			}
			continue
		}
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Size:":
			size = n
			if part == "anon" {
				if size == guestMiB<<10 {
					part = partGuest
				} else {
					part = partOther
				}
			}
		case "Rss:":
			parts[part] += n
		}
	}
	return parts
}

// specKernel returns the kernel path of the spec at path, or "".
func specKernel(path string) string {
	s, err := spec.Load(path, "")
	if err != nil || s.VM == nil {
		return ""
	}
	return s.VM.Kernel
}

// ourQEMUs lists QEMU processes on the host that run one of this
// program's guests (by their -name).
func ourQEMUs() []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("qemu-system")) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for i, a := range args {
			if a == "-name" && i+1 < len(args) &&
				(args[i+1] == "guest="+bootName || args[i+1] == "guest="+idleName) {
				found = append(found, filepath.Base(filepath.Dir(p))+" "+strings.Join(args, " "))
			}
		}
	}
	return found
}

// summarize wraps benchbox.Summarize.
func summarize(samples []float64) stats {
	st := benchbox.Summarize(samples)
	return stats{Median: st.Median, P90: st.P90, Min: st.Min, Mean: st.Mean}
}

// diff is the median of per-round differences A−B with a 95 % bootstrap
// confidence interval of that median.
type diff struct {
	Median float64 `json:"median_ms"`
	Lo     float64 `json:"ci95_lo_ms"`
	Hi     float64 `json:"ci95_hi_ms"`
}

// pairedDiff is the median of the per-round differences a[i] − b[i], with
// a percentile bootstrap interval (fixed seed: the same samples give the
// same interval).
func pairedDiff(a, b []float64) diff {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	if len(d) == 0 {
		return diff{}
	}
	const resamples = 5000
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, resamples)
	re := make([]float64, len(d))
	for k := range meds {
		for i := range re {
			re[i] = d[rng.IntN(len(d))]
		}
		meds[k] = summarize(re).Median
	}
	sort.Float64s(meds)
	return diff{Median: summarize(d).Median, Lo: meds[resamples*25/1000], Hi: meds[resamples*975/1000-1]}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lookPath finds name in the sandbox's PATH order on the host.
func lookPath(name string) (string, error) {
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// printMarkdown writes the report as markdown tables with notes.
func printMarkdown(w io.Writer, rep *report) {
	a, b := rep.Benches[0], rep.Benches[1]
	date := rep.Date
	if t, err := time.Parse(time.RFC3339, rep.Date); err == nil {
		date = t.Format("2006-01-02 15:04")
	}
	fmt.Fprintf(w, "%d rounds after %d warm-up rounds, interleaved A B …; %s UTC\n\n", rep.Rounds, rep.Warmup, date)
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
	fmt.Fprintln(w, "| phase | A median | B median | median of per-round A − B | 95 % CI |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, p := range rep.Phases {
		fmt.Fprintf(w, "| %s | %.0f ms | %.0f ms | %+.0f ms | [%+.0f, %+.0f] ms |\n", p.Name, p.A, p.B, p.PairedDiff.Median, p.PairedDiff.Lo, p.PairedDiff.Hi)
	}
	fmt.Fprintln(w)
	if m := rep.Memory; m != nil {
		fmt.Fprintf(w, "Idle %d MiB guest (mode wait) under `cove run -d`, sampled %v after COVE-GUEST-WAITING (seen in the journal %.1f s after the exec):\n\n",
			m.GuestMiB, idleSettle, m.WaitingAfterMs/1000)
		fmt.Fprintln(w, "| QEMU (MainPID) VmRSS | VmHWM | RssAnon | RssFile | RssShmem | unit MemoryCurrent | unit MemoryMax |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", kib(m.Status["VmRSS"]), kib(m.Status["VmHWM"]),
			kib(m.Status["RssAnon"]), kib(m.Status["RssFile"]), kib(m.Status["RssShmem"]), bytesMiB(m.MemoryCurrent), bytesMiB(m.MemoryMax))
		fmt.Fprintln(w)
		if len(m.Breakdown) > 0 {
			var total uint64
			for _, v := range m.Breakdown {
				total += v
			}
			fmt.Fprintf(w, "| VmRSS by mapping (smaps) | %s | %s | %s | %s | %s | total |\n", partGuest, partTCG, partKernel, partFiles, partOther)
			fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
			fmt.Fprintf(w, "| resident | %s | %s | %s | %s | %s | %s |\n", kibN(m.Breakdown[partGuest]), kibN(m.Breakdown[partTCG]),
				kibN(m.Breakdown[partKernel]), kibN(m.Breakdown[partFiles]), kibN(m.Breakdown[partOther]), kibN(total))
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "- MainPID runs `%s`; its command line is identical to B's built by this program (sockets aside): %t.\n", m.Exe, m.ArgvIdentical)
		if m.ArgvDiff != "" {
			fmt.Fprintf(w, "  ```\n  %s\n  ```\n", strings.ReplaceAll(m.ArgvDiff, "\n", "\n  "))
		}
		fmt.Fprintf(w, "- `cove stop`: %.0f ms; the guest ran its ACPI power-button hook (%s in the journal): %t.\n",
			m.StopMs, vmguest.MarkerShutdownHook, m.ShutdownHook)
	}
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
