package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// checkInside fails if a QEMU is still running inside the sandbox, whose
// PID namespace holds every QEMU started here (A's in the units, B's
// through nsenter), and lists them in the report.
func checkInside(box *benchbox.Box, rep *report) error {
	out, _, _, _ := box.SB.Run(box.Ctx, "pgrep", "-a", "qemu")
	if s := strings.TrimSpace(out); s != "" {
		rep.LeftoverQEMU = strings.Split(s, "\n")
		return fmt.Errorf("QEMU still running inside the sandbox:\n%s", s)
	}
	return nil
}

// checkHost, run after the sandbox is gone, fails if a QEMU of ours is
// left on the host, and lists them in the report.
func checkHost(rep *report) error {
	rep.HostQEMUAfterCleanup = ourQEMUs()
	if len(rep.HostQEMUAfterCleanup) > 0 {
		return fmt.Errorf("QEMU left running on the host after cleanup:\n%s",
			strings.Join(rep.HostQEMUAfterCleanup, "\n"))
	}
	return nil
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
