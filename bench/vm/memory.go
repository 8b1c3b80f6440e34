package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/tests/sandbox"
	"github.com/cove-project/cove/tests/vmguest"
)

// idleSettle is how long the idle guest runs after COVE-GUEST-WAITING
// before its memory is sampled.
const idleSettle = 2 * time.Second

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

// measureMemory starts the idle guest with cove run -d, waits for
// COVE-GUEST-WAITING in its journal plus idleSettle, samples QEMU's
// /proc/PID/status and the unit's MemoryCurrent, checks that QEMU's
// command line is the one B runs (sockets aside), then stops it with cove
// stop and removes the unit.
func measureMemory(ctx context.Context, sb *sandbox.Sandbox, cove, specPath string, khz uint64) (*memory, error) {
	v := &idleVM{ctx: ctx, sb: sb, cove: cove, unit: "cove-" + idleName + ".service"}
	m := &memory{GuestMiB: 256, Status: map[string]string{}}
	start := time.Now()
	if _, err := v.in(cove, "run", "-d", specPath); err != nil {
		return nil, err
	}
	err := v.waitWaiting(m, start)
	if err == nil {
		time.Sleep(idleSettle)
		err = v.sample(m, specPath)
	}
	if err == nil {
		err = v.compareArgv(m, specPath, khz)
	}
	if err == nil {
		err = v.stop(m)
	}
	if err != nil {
		v.cleanup()
		return nil, err
	}
	return m, v.finish(m)
}

// idleVM is the idle guest under cove run -d.
type idleVM struct {
	ctx  context.Context
	sb   *sandbox.Sandbox
	cove string // the cove binary
	unit string // the guest's unit
}

// in runs argv inside and returns its output, trimmed.
func (v *idleVM) in(argv ...string) (string, error) {
	out, err := benchbox.Inside(v.ctx, v.sb, benchbox.CmdTimeout, nil, argv...)
	return strings.TrimSpace(out), err
}

// show returns a property of the unit.
func (v *idleVM) show(prop string) string {
	out, _ := v.in("systemctl", "show", "-p", prop, "--value", v.unit)
	return out
}

// cleanup stops and removes the guest, best effort; the sandbox's
// shutdown ends whatever is left.
func (v *idleVM) cleanup() {
	v.in(v.cove, "stop", idleName)
	v.in(v.cove, "rm", idleName)
}

// waitWaiting polls the guest's journal until COVE-GUEST-WAITING, and
// records how long after start it was seen.
func (v *idleVM) waitWaiting(m *memory, start time.Time) error {
	deadline := time.Now().Add(bootTimeout)
	for {
		logs, _ := v.in(v.cove, "logs", idleName)
		if strings.Contains(logs, vmguest.MarkerWaiting) {
			m.WaitingAfterMs = benchbox.Millis(time.Since(start))
			return nil
		}
		if time.Now().After(deadline) || v.ctx.Err() != nil {
			return fmt.Errorf("no %s within %v; logs:\n%s", vmguest.MarkerWaiting, bootTimeout, benchbox.Tail(logs, 20))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// sample reads QEMU's executable, /proc/PID/status and smaps, and the
// unit's MemoryCurrent and MemoryMax.
func (v *idleVM) sample(m *memory, specPath string) error {
	m.MainPID = v.show("MainPID")
	m.Exe, _ = v.in("readlink", "/proc/"+m.MainPID+"/exe")
	status, err := v.in("cat", "/proc/"+m.MainPID+"/status")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(status, "\n") {
		k, val, ok := strings.Cut(line, ":")
		switch k {
		case "VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem":
			if ok {
				m.Status[k] = strings.TrimSpace(val)
			}
		}
	}
	if smaps, err := v.in("cat", "/proc/"+m.MainPID+"/smaps"); err == nil {
		m.Breakdown = breakdown(smaps, m.GuestMiB, specKernel(specPath))
	}
	m.MemoryCurrent = v.show("MemoryCurrent")
	m.MemoryMax = v.show("MemoryMax")
	return nil
}

// compareArgv compares the QEMU command line cove exec'd with what B
// builds (with the unit's sockets: only those differ in B).
func (v *idleVM) compareArgv(m *memory, specPath string, khz uint64) error {
	cmdline, err := v.in("cat", "/proc/"+m.MainPID+"/cmdline")
	if err != nil {
		return nil // not compared
	}
	got := strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00")
	c, err := directConfig(specPath, khz)
	if err != nil {
		return err
	}
	want, err := isolate.QEMUArgv(c)
	if err != nil {
		return err
	}
	m.ArgvIdentical = strings.Join(got, "\x00") == strings.Join(want, "\x00")
	if !m.ArgvIdentical {
		m.ArgvDiff = fmt.Sprintf("cove: %q\nB:    %q", got, want)
	}
	return nil
}

// stop times cove stop.
func (v *idleVM) stop(m *memory) error {
	t := time.Now()
	if _, err := v.in(v.cove, "stop", idleName); err != nil {
		return err
	}
	m.StopMs = benchbox.Millis(time.Since(t))
	return nil
}

// finish checks the journal for the guest's shutdown hook, removes the
// unit if it is still loaded, and fails if it is still active.
func (v *idleVM) finish(m *memory) error {
	logs, _ := v.in(v.cove, "logs", idleName)
	m.ShutdownHook = strings.Contains(logs, vmguest.MarkerShutdownHook)
	// A stopped transient unit is usually unloaded at once; remove it if
	// it is still there.
	if v.show("LoadState") == "loaded" {
		if _, err := v.in(v.cove, "rm", idleName); err != nil {
			benchbox.Progress("cove rm " + idleName + ": " + err.Error())
		}
	}
	if st := v.show("ActiveState"); st == "active" || st == "activating" || st == "deactivating" {
		return fmt.Errorf("%s still %s after cove stop", v.unit, st)
	}
	return nil
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
