package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/vmguest"
)

// fleet is the start of N VMs from one base image against N VMs from full
// copies of it: the wall time from the first command until every guest is
// waiting (overlays: cove run -d of each, whose launcher creates the
// overlay; copies: cp of the base for each, then cove run -d of each), and
// the disk the VMs' images take (du, allocated blocks).
type fleet struct {
	N          int       `json:"n"`
	BaseMiB    int       `json:"base_data_mib"` // data written into the base image
	BaseKiB    uint64    `json:"base_kib"`      // the base's allocated size
	OverlayMs  []float64 `json:"overlays_ms"`   // per round: N VMs from the base, all waiting
	CopyMs     []float64 `json:"copies_ms"`     // per round: N copies made, then N VMs, all waiting
	CopyOnlyMs []float64 `json:"copy_only_ms"`  // per round, of CopyMs: the copies
	OverlayKiB uint64    `json:"overlays_kib"`  // the N overlays together
	CopiesKiB  uint64    `json:"copies_kib"`    // the N copies together
}

// fleetName is the workload name of VM i of the fleet set (such as
// "o1", overlays in round 1): a name of its own, so that the journal's
// markers of earlier sets do not count.
func fleetName(set string, i int) string { return "benchfleet-" + set + "-" + strconv.Itoa(i) }

// measureFleet boots n VMs from one base of baseMiB of data, then n from
// copies of it, one after the other, removing each set when measured.
func measureFleet(box *benchbox.Box, g vmguest.Guest, n, baseMiB int) (*fleet, error) {
	f := &fleet{N: n, BaseMiB: baseMiB}
	dir := filepath.Join(box.Work, "fleet")
	base := filepath.Join(dir, "base.qcow2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := inside(box, "qemu-img", "create", "-q", "-f", "qcow2", base, "1G"); err != nil {
		return nil, err
	}
	if _, err := inside(box, "qemu-io", "-f", "qcow2", "-c", fmt.Sprintf("write -P 0x5a 0 %dM", baseMiB), base); err != nil {
		return nil, err
	}
	var err error
	if f.BaseKiB, err = du(box, base); err != nil {
		return nil, err
	}
	// Two rounds, alternating, so that neither way is always the first.
	for round := 1; round <= fleetRounds; round++ {
		oSet, cSet := fmt.Sprintf("o%d", round), fmt.Sprintf("c%d", round)
		overlays, copies := make([]string, n), make([]string, n)
		for i := range overlays {
			overlays[i] = fmt.Sprintf("/var/lib/cove/vms/%s/disk1.qcow2", fleetName(oSet, i))
			copies[i] = filepath.Join(dir, fleetName(cSet, i)+".qcow2")
		}
		benchbox.Progress(fmt.Sprintf("fleet round %d: %d VMs from one base image", round, n))
		ms, kib, err := startFleet(box, g, dir, oSet, "base", base, nil, overlays)
		if err != nil {
			return f, err
		}
		f.OverlayMs, f.OverlayKiB = append(f.OverlayMs, ms), kib
		benchbox.Progress(fmt.Sprintf("fleet round %d: %d VMs from full copies", round, n))
		start := time.Now()
		for _, c := range copies {
			if _, err := inside(box, "cp", base, c); err != nil {
				return f, err
			}
		}
		copyMs := benchbox.Millis(time.Since(start))
		ms, kib, err = startFleet(box, g, dir, cSet, "path", "", copies, copies)
		if err != nil {
			return f, err
		}
		f.CopyMs, f.CopyOnlyMs, f.CopiesKiB = append(f.CopyMs, copyMs+ms), append(f.CopyOnlyMs, copyMs), kib
		for _, c := range copies {
			os.Remove(c)
		}
	}
	return f, nil
}

// fleetRounds is how many times each way is measured.
const fleetRounds = 2

// startFleet writes one spec per VM of set whose disk is key = image (the base,
// or images[i]), starts them all with cove run -d and waits until every
// guest is waiting; it returns the time that took and the disk the files
// measured take, then removes the VMs.
func startFleet(box *benchbox.Box, g vmguest.Guest, dir, set, key, image string, images, measured []string) (float64, uint64, error) {
	names := make([]string, len(measured))
	specs := make([]string, len(measured))
	for i := range names {
		names[i] = fleetName(set, i)
		if images != nil {
			image = images[i]
		}
		specs[i] = filepath.Join(dir, names[i]+".toml")
		text := strings.Replace(specText(g, "wait"), "[service]", fmt.Sprintf("[[vm.disk]]\n%s = %q\nformat = \"qcow2\"\n[service]", key, image), 1)
		if err := os.WriteFile(specs[i], []byte(text), 0o644); err != nil {
			return 0, 0, err
		}
	}
	defer func() {
		inside(box, append([]string{box.Cove, "rm"}, names...)...)
	}()
	start := time.Now()
	for _, p := range specs {
		if _, err := inside(box, box.Cove, "run", "-d", p); err != nil {
			return 0, 0, err
		}
	}
	benchbox.Progress(fmt.Sprintf("fleet: %d cove run -d returned after %.0f ms", len(specs), benchbox.Millis(time.Since(start))))
	if err := waitAllWaiting(box, names, 5*time.Minute); err != nil {
		return 0, 0, err
	}
	ms := benchbox.Millis(time.Since(start))
	var total uint64
	for _, m := range measured {
		kib, err := du(box, m)
		if err != nil {
			return ms, 0, err
		}
		total += kib
	}
	return ms, total, nil
}

// waitAllWaiting polls the journal until every VM of names has printed
// COVE-GUEST-WAITING.
func waitAllWaiting(box *benchbox.Box, names []string, timeout time.Duration) error {
	script := `n=0; for u in "$@"; do journalctl -q -o cat -u "cove-$u.service" | grep -q ` + vmguest.MarkerWaiting + ` && n=$((n+1)); done; echo $n`
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		out, err := inside(box, append([]string{"sh", "-c", script, "sh"}, names...)...)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == strconv.Itoa(len(names)) {
			return nil
		}
	}
	return fmt.Errorf("fleet: not every guest was waiting within %v", timeout)
}

// du is the allocated size of the file at p inside the sandbox, in KiB.
func du(box *benchbox.Box, p string) (uint64, error) {
	out, err := inside(box, "du", "-k", p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.Fields(out)[0], 10, 64)
}

// inside runs argv in the sandbox.
func inside(box *benchbox.Box, argv ...string) (string, error) {
	return benchbox.Inside(box.Ctx, box.SB, benchbox.CmdTimeout, nil, argv...)
}
