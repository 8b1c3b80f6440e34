package api

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestRecordUpdates: concurrent updates of one record each see the others'
// changes (none is lost), an update of a container without a record fails
// with errNoRecord, and one that says not to write leaves the record.
func TestRecordUpdates(t *testing.T) {
	rs := containerRecords{dir: t.TempDir() + "/created"}
	if err := rs.create(&containerRecord{Name: "c1", Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			err := rs.update("c1", func(r *containerRecord) (bool, error) {
				if r.Config.Labels == nil {
					r.Config.Labels = map[string]string{}
				}
				r.Config.Labels[fmt.Sprint(i)] = "x"
				time.Sleep(time.Millisecond) // between the read and the write
				return true, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if r, err := rs.read("c1"); err != nil || len(r.Config.Labels) != 20 {
		t.Fatalf("after 20 concurrent updates: %d labels, %v; want 20", len(r.Config.Labels), err)
	}
	if err := rs.update("c1", func(r *containerRecord) (bool, error) { r.ExitCode = 9; return false, nil }); err != nil {
		t.Fatal(err)
	}
	if r, _ := rs.read("c1"); r.ExitCode != 0 {
		t.Error("an update that did not want to write wrote")
	}
	if err := rs.update("c1", func(*containerRecord) (bool, error) { return false, errRemove }); err != nil {
		t.Fatal(err)
	}
	if r, err := rs.read("c1"); r != nil || err != nil {
		t.Errorf("after an update that removes it, the record is %+v, %v", r, err)
	}
	if err := rs.update("nosuch", func(*containerRecord) (bool, error) { return true, nil }); !errors.Is(err, errNoRecord) {
		t.Errorf("update without a record: %v", err)
	}
}

// TestRecordRename: a rename moves the record, keeps the old name's ID
// among its former IDs (once), and refuses a name that has a record, a
// container that has none and one that has started.
func TestRecordRename(t *testing.T) {
	rs := containerRecords{dir: t.TempDir() + "/created"}
	for _, n := range []string{"tmp", "other"} {
		if err := rs.create(&containerRecord{Name: n, Created: time.Unix(1, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.rename("tmp", "web"); err != nil {
		t.Fatal(err)
	}
	if r, err := rs.read("web"); err != nil || r == nil || r.Name != "web" || !slices.Equal(r.FormerIDs, []string{dockerID("tmp")}) {
		t.Errorf("the renamed record: %+v, %v", r, err)
	}
	if r, err := rs.read("tmp"); r != nil || err != nil {
		t.Errorf("the old name's record after the rename: %+v, %v", r, err)
	}
	if err := rs.rename("web", "other"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("rename onto a name with a record: %v, want fs.ErrExist", err)
	}
	if err := rs.rename("tmp", "x"); !errors.Is(err, errNoRecord) {
		t.Errorf("rename of a name without a record: %v, want errNoRecord", err)
	}
	if r, _ := rs.read("web"); r == nil {
		t.Error("a refused rename removed the record")
	}
	rs.update("other", func(r *containerRecord) (bool, error) { r.Started = true; return true, nil })
	if err := rs.rename("other", "y"); !errors.Is(err, errStarted) {
		t.Errorf("rename of a container that has started: %v, want errStarted", err)
	}
	for _, step := range [][2]string{{"web", "x"}, {"x", "web"}, {"web", "x"}} {
		if err := rs.rename(step[0], step[1]); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := rs.read("x"); r == nil || !slices.Equal(r.FormerIDs, []string{dockerID("tmp"), dockerID("web"), dockerID("x")}) {
		t.Errorf("former IDs after web, x, web, x: %v", r)
	}
	// A rename killed after its move, before the rewrite: one record,
	// under the new name, which read finishes.
	if err := os.Rename(rs.path("x"), rs.path("moved")); err != nil {
		t.Fatal(err)
	}
	if r, err := rs.read("moved"); err != nil || r == nil || r.Name != "moved" || !slices.Contains(r.FormerIDs, dockerID("x")) {
		t.Errorf("a half-done rename's record: %+v, %v", r, err)
	}
	if all := rs.list(); all["moved"] == nil || all["x"] != nil {
		t.Errorf("records after a half-done rename: %v", all)
	}
}
