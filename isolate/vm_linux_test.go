package isolate

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemoveStaleSocket checks what LaunchVM does with leftovers at its
// socket paths.
func TestRemoveStaleSocket(t *testing.T) {
	dir := t.TempDir()
	if err := removeStaleSocket(filepath.Join(dir, "none.sock")); err != nil {
		t.Errorf("missing: %v", err)
	}

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := removeStaleSocket(stale); err != nil {
		t.Errorf("stale: %v", err)
	}
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("stale socket not removed: %v", err)
	}

	live := filepath.Join(dir, "live.sock")
	l, err = net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := removeStaleSocket(live); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("live: %v", err)
	}

	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if err := removeStaleSocket(file); err == nil {
		t.Error("regular file: no error")
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("regular file removed: %v", err)
	}
}

// TestStopVMWithoutQMP checks StopVM's fallback when QMP is unreachable:
// SIGTERM at once, without waiting for the timeout.
func TestStopVMWithoutQMP(t *testing.T) {
	if err := StopVM("/nonexistent/qmp.sock", 0, time.Second); err != nil {
		t.Errorf("pid 0: %v", err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	start := time.Now()
	if err := StopVM(filepath.Join(t.TempDir(), "qmp.sock"), cmd.Process.Pid, time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("StopVM took %v", d)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("process still running after StopVM")
	}
}
