package tests

import (
	"path/filepath"
	"testing"
)

// TestReboot: after the machine restarts (the private systemd is stopped
// and a new one boots over the same /etc and /var/lib), exactly the
// workloads whose spec has [install] wanted_by run again. Between the
// shutdown and the check the test runs no cove command: the generator and
// systemd alone bring them back.
func TestReboot(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "reboot")
	on := declared(t, dir, "atboot", "[install]\nwanted_by = [\"multi-user.target\"]\n")
	off := declared(t, dir, "notatboot", "")
	mustCove(t, "apply", on, off)
	reboot(t)
	waitActive(t, "cove-atboot.service")
	if st := show(t, "cove-notatboot.service", "ActiveState"); st != "inactive" {
		t.Errorf("notatboot is %s after reboot, want inactive", st)
	}
}
