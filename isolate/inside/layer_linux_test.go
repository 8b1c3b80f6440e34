package inside

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-project/cove/launch"
)

// TestReadyLayer: a throwaway writable layer starts empty, whatever an
// earlier mount left; a kept layer that a volatile mount marked is
// refused with what to do, not left to the kernel's bare EINVAL.
func TestReadyLayer(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, launch.WorkDir, "work", "incompat", "volatile")
	left := filepath.Join(dir, launch.UpperDir, "etc", "left")
	for _, d := range []string{marker, filepath.Dir(left)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(left, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadyLayer(dir, false); err == nil || !strings.Contains(err.Error(), "cove rm") {
		t.Errorf("a kept layer with the volatile marker: %v, want a refusal saying cove rm", err)
	}
	if err := ReadyLayer(dir, true); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{launch.UpperDir, launch.WorkDir} {
		if _, err := os.Lstat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("after ReadyLayer of a throwaway layer, %s is still there (%v)", d, err)
		}
	}
	if err := ReadyLayer(dir, false); err != nil {
		t.Errorf("an unmarked layer: %v", err)
	}
}
