package isolate

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestOpenTargetRefusesTheHostsNamespace: a process in the caller's own
// mount namespace (a container's launcher before the payload runs) is no
// target; one in a mount namespace of its own is.
func TestOpenTargetRefusesTheHostsNamespace(t *testing.T) {
	if _, err := OpenTarget(os.Getpid(), nil); !errors.Is(err, ErrNotPayload) {
		t.Errorf("OpenTarget of the test itself: %v, want ErrNotPayload", err)
	}
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	tg, err := OpenTarget(cmd.Process.Pid, nil)
	if err != nil {
		t.Fatalf("OpenTarget of a process in a mount namespace of its own: %v", err)
	}
	tg.Close()
}
