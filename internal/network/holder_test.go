package network

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// holderTest is a workload's holder file under a temporary root, with
// what is given back recorded and the runs that run set by the test.
type holderTest struct {
	t       *testing.T
	h       Holders
	given   []string
	running map[string]bool
	leased  bool
}

func newHolderTest(t *testing.T) *holderTest {
	ht := &holderTest{t: t, running: map[string]bool{}}
	ht.h = Holders{Root: t.TempDir(),
		give:  func(w string) error { ht.given, ht.leased = append(ht.given, w), false; return nil },
		holds: func(string) bool { return ht.leased }}
	return ht
}

// live is the runs' Live: run "" runs while any run does.
func (ht *holderTest) live(_, run string) (bool, error) {
	if run == "" {
		return slices.Contains(slices.Collect(maps.Values(ht.running)), true), nil
	}
	return ht.running[run], nil
}

func (ht *holderTest) release() {
	ht.t.Helper()
	if err := ht.h.ReleaseEnded("web", ht.live); err != nil {
		ht.t.Fatal(err)
	}
}

func (ht *holderTest) hold(run string) {
	ht.t.Helper()
	unlock, err := ht.h.Hold("web", run)
	if err != nil {
		ht.t.Fatal(err)
	}
	ht.leased = true // its Join leases
	unlock()
	ht.running[run] = true
}

func (ht *holderTest) expect(step string, want ...string) {
	ht.t.Helper()
	if !slices.Equal(ht.given, want) {
		ht.t.Errorf("%s: given back %v, want %v", step, ht.given, want)
	}
	ht.given = nil
}

func (ht *holderTest) noFile(step string) {
	ht.t.Helper()
	if _, err := os.Stat(filepath.Join(ht.h.Root, "web")); !os.IsNotExist(err) {
		ht.t.Errorf("%s: holder file: %v, want none", step, err)
	}
}

// TestHolders follows one workload's holder file through the runs of its
// unit: what gets given back, and when, as the release unit and the
// launcher's Join meet in either order.
func TestHolders(t *testing.T) {
	ht := newHolderTest(t)
	ht.release()
	ht.expect("a release before any run")
	ht.noFile("a release before any run")
	ht.hold("run1")
	ht.expect("the first run's Join")
	ht.release()
	ht.expect("a release while run1 runs")

	ht.running["run1"] = false
	ht.hold("run2") // a restart whose Join comes before run1's release
	ht.expect("run2's Join after run1 ended", "web")
	ht.release() // run1's release, late: run2 holds it now
	ht.expect("run1's late release while run2 runs")

	ht.running["run2"] = false
	ht.release() // run2's release, before any new Join
	ht.expect("run2's release after it ended", "web")
	ht.noFile("after run2's release")
	ht.hold("run3")
	ht.expect("run3's Join after run2's release")
	ht.hold("run3")
	ht.expect("run3's Join again (same run)")

	ht.running["run3"] = false
	if err := ht.h.Forget("web"); err != nil {
		t.Fatal(err)
	}
	ht.expect("cove rm after run3", "web")
	ht.noFile("after cove rm")
	ht.release()
	ht.expect("run3's release after cove rm")
	ht.noFile("after a release after cove rm")
}

// TestHoldersBeforeHolderFiles: a run that joined before holder files
// (no file, but leases) is given back by its release once its unit no
// longer runs.
func TestHoldersBeforeHolderFiles(t *testing.T) {
	ht := newHolderTest(t)
	ht.leased, ht.running["old"] = true, true
	ht.release()
	ht.expect("a release while the old run runs")
	ht.running["old"] = false
	ht.release()
	ht.expect("its release after it ended", "web")
	ht.noFile("after its release")
}

// TestForgetWithoutRun: Forget of a workload whose file names no run
// (one that never joined a network) neither asks whether it holds leases
// (every lease of every network read) nor leaves a file.
func TestForgetWithoutRun(t *testing.T) {
	h := Holders{Root: t.TempDir(),
		give:  func(string) error { t.Error("Forget gave back what no run holds"); return nil },
		holds: func(string) bool { t.Error("Forget asked whether a workload without a run holds leases"); return true }}
	if err := h.Forget("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.Root, "web")); !os.IsNotExist(err) {
		t.Errorf("holder file after Forget: %v, want none", err)
	}
}

// TestHoldersBusy: releaseIfFree leaves a workload whose holder file
// another holds (a Join under way) alone.
func TestHoldersBusy(t *testing.T) {
	ht := newHolderTest(t)
	ht.hold("run1")
	ht.running["run1"] = false
	unlock, err := ht.h.Lock("web")
	if err != nil {
		t.Fatal(err)
	}
	other := Holders{Root: ht.h.Root, give: ht.h.give, holds: ht.h.holds}
	if err := other.releaseIfFree("web", ht.live); err != nil {
		t.Fatal(err)
	}
	ht.expect("releaseIfFree while another holds the file")
	unlock()
	if err := other.releaseIfFree("web", ht.live); err != nil {
		t.Fatal(err)
	}
	ht.expect("releaseIfFree once it is free", "web")
}

// TestHoldersRefuseBadNames keeps holder files inside their directory.
func TestHoldersRefuseBadNames(t *testing.T) {
	h := Holders{Root: t.TempDir(), give: func(string) error { return nil }, holds: func(string) bool { return false }}
	for _, name := range []string{"", ".", "..", "../x", "a/b"} {
		if _, err := h.Hold(name, "r"); err == nil {
			t.Errorf("Hold(%q) succeeded", name)
		}
	}
}
