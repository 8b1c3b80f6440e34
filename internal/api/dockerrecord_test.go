package api

import (
	"errors"
	"fmt"
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
