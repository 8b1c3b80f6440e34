package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// runningCove counts the cove services running inside.
const runningCove = "systemctl list-units --type=service --state=running --no-legend --plain 'cove-*' | wc -l"

// declareTarget declares the target, before phase 2.
func (b *bench) declareTarget() error {
	benchbox.Progress("phase 2: declaring the target")
	if out, err := b.sh(b.box.Cove + " apply " + b.tfile); err != nil || strings.TrimSpace(out) != "added "+target {
		return fmt.Errorf("declare the target: %v\n%s", err, out)
	}
	return nil
}

// applyPhase: phase 2 at K = k, with prev fillers declared already.
func (b *bench) applyPhase(prev, k int) (*kPhase, error) {
	o := b.o
	kp := b.newKPhase(prev, k)
	if k > prev {
		if err := b.declare(kp, prev, k); err != nil {
			return nil, err
		}
	}
	running, err := b.count(runningCove)
	if err != nil {
		return nil, err
	}
	if running != k+1 {
		return nil, fmt.Errorf("%d cove units running, want %d", running, k+1)
	}
	kp.Running = running
	benchbox.Progress(fmt.Sprintf("phase 2: K = %d (%d running); %d rounds of apply, diff, daemon-reload, restart, generator", k, running, o.n))
	err = benchbox.Rounds(o.warmup, o.n, false, func(_ int, measure bool) error {
		return b.applyRound(kp, measure)
	})
	if err != nil {
		return nil, err
	}
	kp.summarize()
	if n, err := b.count(runningCove); err != nil || n != k+1 {
		return nil, fmt.Errorf("after the rounds: %d cove units running, want %d (%v)", n, k+1, err)
	}
	return kp, nil
}

// newKPhase lists phase 2's series at K = k.
func (b *bench) newKPhase(prev, k int) *kPhase {
	kp := &kPhase{K: k, Rounds: b.o.n, Declared: k - prev}
	kp.Apply = &series{Name: "cove apply (one changed spec: a limit)", Argv: []string{b.box.Cove, "apply", b.tfile}}
	kp.ApplyRestart = &series{Name: "cove apply (one changed spec: an environment variable)", Argv: kp.Apply.Argv}
	kp.ApplyReload = &series{Name: "cove apply (one changed spec: the stop timeout)", Argv: kp.Apply.Argv}
	kp.Diff = &series{Name: "cove diff", Argv: []string{b.box.Cove, "diff", b.tfile}}
	kp.Reload = &series{Name: "systemctl daemon-reload", Argv: []string{"systemctl", "daemon-reload"}}
	kp.Settled = &series{Name: "systemctl restart, systemd idle", Argv: []string{"systemctl", "restart", "cove-" + target + ".service"}}
	kp.Restart = &series{Name: "systemctl restart, right after daemon-reload", Argv: kp.Settled.Argv}
	kp.Gen = &series{Name: "cove-generator", Argv: []string{b.box.Generator, genOut}}
	kp.Floor = &series{Name: "nsenter floor", Argv: []string{"/bin/true"}}
	return kp
}

// declare applies the specs of fillers prev to k-1 in one cove apply,
// which starts them, and times it.
func (b *bench) declare(kp *kPhase, prev, k int) error {
	benchbox.Progress(fmt.Sprintf("phase 2: declaring %d more workloads (cove apply of %d new specs; starts them)", k-prev, k-prev))
	argv := []string{b.box.Cove, "apply"}
	for i := prev; i < k; i++ {
		argv = append(argv, filepath.Join(b.specs, fillName(i)+".toml"))
	}
	ms, out, err := b.timed(bulkTimeout, argv...)
	if err != nil {
		return err
	}
	if got := strings.Count(out, "\nadded ") + boolInt(strings.HasPrefix(out, "added ")); got != k-prev {
		return fmt.Errorf("apply of %d new specs added %d:\n%s", k-prev, got, benchbox.Tail(out, 10))
	}
	kp.DeclareMs = ms
	benchbox.Progress(fmt.Sprintf("phase 2: declared %d workloads in %.1f s", k-prev, ms/1000))
	return nil
}

// applyRound changes the target's spec and times, in this order, the
// generator, the idle restart and cove diff (systemd idle), cove apply
// (systemd idle), then daemon-reload, the restart right after it and the
// floor.
func (b *bench) applyRound(kp *kPhase, measure bool) error {
	b.flip++
	mem := memories[b.flip%2]
	if err := b.setTarget(b.flip%2, b.env, b.stop); err != nil {
		return err
	}
	if err := b.quiesce(); err != nil {
		return err
	}
	if err := b.beforeApply(kp, measure); err != nil {
		return err
	}
	if err := b.quiesce(); err != nil {
		return err
	}
	if err := b.applyTarget(kp, mem.bytes, measure); err != nil {
		return err
	}
	// An environment variable: the launcher's file and a restart, no
	// reload; then the stop timeout: a reload and a restart.
	if err := b.applyRestart(kp.ApplyRestart, b.stop, measure); err != nil {
		return err
	}
	if err := b.applyRestart(kp.ApplyReload, 1-b.stop, measure); err != nil {
		return err
	}
	return b.reloadRestart(kp, measure)
}

// applyRestart changes the target's environment and sets its stop
// timeout to stopTimeouts[stop] (both need a restart), and adds cove
// apply of it (systemd idle) to s, checking that it restarted the target.
func (b *bench) applyRestart(s *series, stop int, measure bool) error {
	b.env++
	b.stop = stop
	if err := b.setTarget(b.flip%2, b.env, stop); err != nil {
		return err
	}
	if err := b.quiesce(); err != nil {
		return err
	}
	before, err := b.sh("systemctl show -p InvocationID --value cove-" + target + ".service")
	if err != nil {
		return err
	}
	out, err := b.add(s, measure)
	if err != nil {
		return err
	}
	after, err := b.sh("systemctl show -p InvocationID --value cove-" + target + ".service")
	if err != nil || strings.TrimSpace(out) != "changed "+target || after == before {
		return fmt.Errorf("%s: %q, invocation %s → %s (%v)", s.Name, out, before, after, err)
	}
	return nil
}

// beforeApply times the generator, the idle restart and cove diff, and
// checks what the generator wrote and what diff found.
func (b *bench) beforeApply(kp *kPhase, measure bool) error {
	k := kp.K
	var err error
	if kp.GeneratedOut, err = b.timeGenerator(kp.Gen, measure); err != nil {
		return err
	}
	if kp.GeneratedOut != k+1 {
		return fmt.Errorf("generator wrote %d services, want %d", kp.GeneratedOut, k+1)
	}
	if _, err := b.add(kp.Settled, measure); err != nil {
		return err
	}
	out, err := b.add(kp.Diff, measure)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "changed   "+target+" (resources.memory)") || strings.Count(out, "\n") != k+1 {
		return fmt.Errorf("cove diff at K = %d:\n%s", k, benchbox.Tail(out, 5))
	}
	return nil
}

// applyTarget times cove apply of the changed spec, checks the new
// MemoryMax (memBytes), and measures systemd's CPU time from apply's
// exit until it is idle.
func (b *bench) applyTarget(kp *kPhase, memBytes string, measure bool) error {
	out, err := b.add(kp.Apply, measure)
	if err != nil {
		return err
	}
	applied := b.ticks
	if strings.TrimSpace(out) != "changed "+target {
		return fmt.Errorf("cove apply: %q", out)
	}
	if got, err := b.sh("systemctl show -p MemoryMax --value cove-" + target + ".service"); err != nil || strings.TrimSpace(got) != memBytes {
		return fmt.Errorf("MemoryMax after apply = %q, want %s (%v)", strings.TrimSpace(got), memBytes, err)
	}
	idle, err := b.idleTicks()
	if err != nil {
		return err
	}
	if measure {
		kp.AfterApplyCPU = append(kp.AfterApplyCPU, float64(idle-applied)*tickMs)
	}
	return nil
}

// reloadRestart times daemon-reload, the restart right after it and the
// floor, and measures systemd's CPU time from the reload's reply until
// it is idle.
func (b *bench) reloadRestart(kp *kPhase, measure bool) error {
	if _, err := b.add(kp.Reload, measure); err != nil {
		return err
	}
	reply := b.ticks
	if _, err := b.add(kp.Restart, measure); err != nil {
		return err
	}
	if _, err := b.add(kp.Floor, measure); err != nil {
		return err
	}
	idle, err := b.idleTicks()
	if err != nil {
		return err
	}
	if measure {
		kp.AfterCPU = append(kp.AfterCPU, float64(idle-reply)*tickMs)
	}
	return nil
}

// summarize fills phase 2's statistics at one K.
func (kp *kPhase) summarize() {
	kp.AfterCPUMedian = benchbox.Summarize(kp.AfterCPU).Median
	kp.AfterApplyCPUMedian = benchbox.Summarize(kp.AfterApplyCPU).Median
	for _, s := range []*series{kp.Apply, kp.ApplyRestart, kp.ApplyReload, kp.Diff, kp.Reload, kp.Settled, kp.Restart, kp.Gen, kp.Floor} {
		summarize(s)
	}
	f := kp.Floor.Median
	kp.PartsNetMs = (kp.Diff.Median - f) + (kp.Reload.Median - f) + (kp.Restart.Median - f)
}

// boolInt is 1 for true.
func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}
