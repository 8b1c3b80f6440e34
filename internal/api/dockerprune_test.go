package api

import (
	"testing"
	"time"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// TestUntilFilter: the until filter reads Docker's timestamps (a
// duration back from now, but "0", the epoch; Unix seconds with a
// fraction; a date with a time to the hour, minute, second or fraction,
// with a zone or in the local one); a bad one or two are a 400; none is
// the zero time.
func TestUntilFilter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Time
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.25", time.Unix(1700000000, 250000000)},
		{"2026-12-01T10:00:00Z", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
		{"2026-12-01T10:00:00+01:00", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},
		{"2026-12-01T10:00:00", time.Date(2026, 12, 1, 10, 0, 0, 0, time.Local)},
		{"2026-12-01", time.Date(2026, 12, 1, 0, 0, 0, 0, time.Local)},
		{"2026-12-01T10", time.Date(2026, 12, 1, 10, 0, 0, 0, time.Local)},
		{"2026-12-01T10:30", time.Date(2026, 12, 1, 10, 30, 0, 0, time.Local)},
		{"2026-12-01T10:30Z", time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)},
		{"2026-12-01T10:30+01:00", time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)},
		{"2026-12-01-07:00", time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)},
		{"2026-12-01T10:00:00.5", time.Date(2026, 12, 1, 10, 0, 0, 5e8, time.Local)},
		{"0", time.Unix(0, 0)},
		{"1.1234567890", time.Unix(1, 123456789)},
	} {
		got, err := untilFilter(filters{"until": {c.v}}, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("until %q: %v, %v; want %v", c.v, got, err, c.want)
		}
	}
	for _, bad := range [][]string{{"yesterday"}, {"-5"}, {"2026-13-01"}, {"1.x"}, {"1h", "2h"}} {
		if got, err := untilFilter(filters{"until": bad}, now); err == nil || err.Code != CodeBadRequest {
			t.Errorf("until %q: %v, %v; want a 400", bad, got, err)
		}
	}
	if got, err := untilFilter(nil, now); err != nil || !got.IsZero() {
		t.Errorf("no until filter: %v, %v; want the zero time", got, err)
	}
}

// TestPrunable: container prune takes stopped containers only (created,
// inactive, failed, exited and kept loaded; not one starting, running,
// paused, restarting or stopping), no VM, no declared workload nor an
// instance of a replicated one, with the filters' labels (a label! set
// leaves out only what has all of them, as Docker's), and with until
// only those created by then (a record's creation, else the last start;
// unknown: kept).
func TestPrunable(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	w := func(name, state string, started time.Time) Workload {
		return Workload{Workload: supervisor.Workload{Name: name, Kind: spec.KindContainer, ActiveState: state, Started: started}}
	}
	exited := w("kept", "active", now)
	exited.SubState = "exited"
	paused := w("paused", "active", now)
	paused.SubState, paused.Paused = "running", true
	restarting := w("again", "activating", now)
	restarting.SubState = "auto-restart"
	vm := w("vm1", "inactive", now)
	vm.Kind = spec.KindVM
	old := &containerRecord{Name: "made", Created: now.Add(-48 * time.Hour), Image: "r.example/web:1",
		Config: dockerCreate{Image: "r.example/web:1", Labels: map[string]string{"keep": "yes"}}}
	specs := specIndex{"web": "/etc/cove/web.toml"}
	for _, c := range []struct {
		w     Workload
		rec   *containerRecord
		f     filters
		until time.Time
		want  bool
	}{
		{w("ran", "inactive", now), nil, nil, time.Time{}, true},
		{w("ran", "failed", now), nil, nil, time.Time{}, true},
		{exited, nil, nil, time.Time{}, true},
		{w("made", createdState, time.Time{}), old, nil, time.Time{}, true},
		{w("up", "active", now), nil, nil, time.Time{}, false},
		{w("starting", "activating", time.Time{}), nil, nil, time.Time{}, false},
		{w("stopping", "deactivating", now), nil, nil, time.Time{}, false},
		{vm, nil, nil, time.Time{}, false},
		{w("web", "inactive", now), nil, nil, time.Time{}, false},
		{w("web@2", "failed", now), nil, nil, time.Time{}, false},
		{w("made", createdState, time.Time{}), old, nil, now.Add(-24 * time.Hour), true},
		{w("ran", "inactive", now), nil, nil, now.Add(-24 * time.Hour), false},
		{w("ran", "inactive", time.Time{}), nil, nil, now, false},
		{w("made", createdState, time.Time{}), old, filters{"label": {"keep=yes"}}, time.Time{}, true},
		{w("made", createdState, time.Time{}), old, filters{"label!": {"keep"}}, time.Time{}, false},
		{w("ran", "inactive", now), nil, filters{"label!": {"keep"}}, time.Time{}, true},
		{w("made", createdState, time.Time{}), old, filters{"label!": {"keep", "other"}}, time.Time{}, true},
		{w("made", createdState, time.Time{}), old, filters{"label!": {"keep=yes", "cove.kind=container"}}, time.Time{}, false},
		{paused, nil, nil, time.Time{}, false},
		{restarting, nil, nil, time.Time{}, false},
	} {
		if got := prunable(c.w, c.rec, specs, c.f, c.until); got != c.want {
			t.Errorf("%s (%s), record %v, filters %v, until %v: prunable %v, want %v", c.w.Name, c.w.ActiveState, c.rec != nil, c.f, c.until, got, c.want)
		}
	}
}
