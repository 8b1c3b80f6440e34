package api

import (
	"testing"
)

// TestWaited: when each wait condition holds, for a container seen first
// as created, running or exited, and now in another state, with or
// without a run of this helper that started since.
func TestWaited(t *testing.T) {
	old, fresh, over := &run{done: make(chan struct{})}, &run{done: make(chan struct{})}, &run{done: make(chan struct{})}
	close(old.done)
	close(over.done)
	created := sighting{state: "created"}
	for _, tc := range []struct {
		cond        string
		first, cur  sighting
		wasUp, want bool
	}{
		{waitNotRunning, created, created, false, true},
		{waitNotRunning, sighting{state: "running"}, sighting{state: "running"}, true, false},
		{waitNotRunning, sighting{state: "running"}, sighting{state: "restarting"}, true, false},
		{waitNotRunning, sighting{state: "running"}, sighting{state: "exited"}, true, true},
		{waitNextExit, created, created, false, false},
		{waitNextExit, created, sighting{state: "running", run: fresh}, true, false},
		{waitNextExit, created, sighting{state: "exited", run: fresh}, false, false}, // its watcher has not seen the end yet
		{waitNextExit, created, sighting{state: "exited", run: over}, false, true},   // a short run, never seen running
		{waitNextExit, created, sighting{run: fresh}, false, true},                   // gone
		{waitNextExit, sighting{state: "exited", run: old}, sighting{state: "exited", run: old}, false, false},
		{waitNextExit, sighting{state: "running"}, sighting{state: "exited"}, true, true}, // started elsewhere
		{waitRemoved, created, sighting{state: "exited", run: over}, true, false},
		{waitRemoved, created, sighting{run: over}, true, true},
	} {
		if got := waited(tc.cond, tc.first, tc.cur, tc.wasUp); got != tc.want {
			t.Errorf("waited(%s, first %+v, now %+v, was up %v) = %v", tc.cond, tc.first, tc.cur, tc.wasUp, got)
		}
	}
}
