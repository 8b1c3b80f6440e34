package network

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestHolders follows one workload's holder file through the runs of its
// unit: what gets given back, and when, as the release unit and the
// launcher's Join meet in either order.
func TestHolders(t *testing.T) {
	var given []string
	h := Holders{Root: t.TempDir(), give: func(w string) error { given = append(given, w); return nil }}
	running := map[string]bool{}
	live := func(run string) (bool, error) { return running[run], nil }
	release := func() {
		t.Helper()
		if err := h.ReleaseEnded("web", live); err != nil {
			t.Fatal(err)
		}
	}
	hold := func(run string) {
		t.Helper()
		unlock, err := h.Hold("web", run)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
		running[run] = true
	}
	expect := func(step string, want ...string) {
		t.Helper()
		if !slices.Equal(given, want) {
			t.Errorf("%s: given back %v, want %v", step, given, want)
		}
		given = nil
	}

	release()
	expect("a release before any run (no file)")
	if _, err := os.Stat(filepath.Join(h.Root, "web")); !os.IsNotExist(err) {
		t.Errorf("a release made the holder file: %v", err)
	}
	hold("run1")
	expect("the first run's Join")
	release()
	expect("a release while run1 runs")

	running["run1"] = false
	hold("run2") // a restart whose Join comes before run1's release
	expect("run2's Join after run1 ended", "web")
	release() // run1's release, late: run2 holds it now
	expect("run1's late release while run2 runs")

	running["run2"] = false
	release() // run2's release, before any new Join
	expect("run2's release after it ended", "web")
	hold("run3")
	expect("run3's Join after run2's release")
	hold("run3")
	expect("run3's Join again (same run)")

	running["run3"] = false
	if err := h.Forget("web"); err != nil {
		t.Fatal(err)
	}
	expect("cove rm after run3", "web")
	if _, err := os.Stat(filepath.Join(h.Root, "web")); !os.IsNotExist(err) {
		t.Errorf("Forget left the holder file: %v", err)
	}
	release()
	expect("run3's release after cove rm")
}

// TestHoldersRefuseBadNames keeps holder files inside their directory.
func TestHoldersRefuseBadNames(t *testing.T) {
	h := Holders{Root: t.TempDir(), give: func(string) error { return nil }}
	for _, name := range []string{"", ".", "..", "../x", "a/b"} {
		if _, err := h.Hold(name, "r"); err == nil {
			t.Errorf("Hold(%q) succeeded", name)
		}
	}
}
