package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/internal/cgroup"
	"github.com/cove-project/cove/spec"
)

// ErrNotRunning is returned for a workload that must run and does not
// (pausing one, entering one: package enter); ErrPaused for one that must not be paused (an exec into
// it would freeze too).
var (
	ErrNotRunning = errors.New("is not running")
	ErrPaused     = errors.New("is paused: unpause it first")
)

// PausedDir holds an empty file per workload that Pause froze, removed
// by Unpause (and so by a stop): the index a list reads once, instead of
// every running workload's cgroup.freeze (about 10 µs each here). The
// cgroup says whether such a workload still is paused. A unit frozen
// otherwise (systemctl freeze) is not listed as paused, though exec
// refuses it (ProbeTarget.Paused asks its cgroup).
const PausedDir = "/run/cove/paused"

// pauseMark is workload name's file in PausedDir.
func pauseMark(name string) string { return filepath.Join(PausedDir, name) }

// pausedMarks are the workloads PausedDir names.
func pausedMarks() map[string]bool {
	entries, _ := os.ReadDir(PausedDir)
	marked := make(map[string]bool, len(entries))
	for _, e := range entries {
		marked[e.Name()] = true
	}
	return marked
}

// freezeWait bounds how long Pause waits for every process to freeze (a
// process in uninterruptible sleep freezes only when it wakes).
const freezeWait = 10 * time.Second

// Pause freezes every process of workload name (docker pause): they keep
// their state and stop running until Unpause. Where systemd freezes (a
// unified cgroup hierarchy) it asks systemd (FreezeUnit), so that
// systemctl shows the unit frozen and thaws it to stop it; on a hybrid
// layout, whose systemd 252 refuses, it freezes the unit's cgroup in the
// unified hierarchy mounted beside v1's itself (cgroup.Freeze). It
// returns once every process is frozen (see freezeRunning for when it
// thaws again and fails) and the workload is marked in PausedDir; a
// workload paused already is no error; one that is not active, or whose
// unit has a job pending (a stop, a restart), wraps ErrNotRunning.
func (c *Conn) Pause(ctx context.Context, name string) error {
	cg, err := c.runningCgroup(ctx, name)
	if err == nil && !cgroup.Frozen(cg) {
		err = c.freezeRunning(ctx, name, cg)
	}
	if err == nil {
		err = os.MkdirAll(PausedDir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(pauseMark(name), nil, 0o644)
	}
	if err != nil {
		return fmt.Errorf("pause %s: %w", name, err)
	}
	return nil
}

// freezeRunning freezes the running workload name, whose cgroup is cg,
// waiting at most freezeWait. Where it freezes the cgroup itself (systemd
// does not see it) it thaws it again when the freeze did not complete in
// time or the unit no longer runs with no job pending afterwards: a stop
// or restart that began meanwhile would wait for its stop timeout on the
// frozen processes.
func (c *Conn) freezeRunning(ctx context.Context, name, cg string) error {
	unit := spec.UnitName(name)
	ctx, cancel := context.WithTimeout(ctx, freezeWait)
	defer cancel()
	direct, err := c.setFrozen(ctx, unit, cg, true)
	if !direct {
		return err
	}
	if err == nil {
		_, err = c.runningCgroup(ctx, name)
	}
	if err != nil { // not frozen in time, or no longer running
		_, thawErr := c.setFrozen(context.WithoutCancel(ctx), unit, cg, false)
		return errors.Join(err, thawErr)
	}
	return nil
}

// Unpause thaws what Pause froze, whatever the unit's state, and drops
// its mark; a workload that is not paused is no error.
func (c *Conn) Unpause(ctx context.Context, name string) error {
	unit := spec.UnitName(name)
	if err := os.Remove(pauseMark(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unpause %s: %w", name, err)
	}
	cg, err := c.controlGroup(ctx, unit)
	if err != nil {
		return fmt.Errorf("unpause %s: %w", name, err)
	}
	if !cgroup.Frozen(cg) {
		return nil
	}
	if _, err := c.setFrozen(ctx, unit, cg, false); err != nil {
		return fmt.Errorf("unpause %s: %w", name, err)
	}
	return nil
}

// runningCgroup is the cgroup of workload name when its unit is active
// with no job pending; else an error wrapping ErrNotRunning (or
// ErrNotFound).
func (c *Conn) runningCgroup(ctx context.Context, name string) (string, error) {
	unit := spec.UnitName(name)
	us, err := c.listUnits(ctx, "ListUnitsByNames", []string{unit})
	if err != nil {
		return "", notFound("state of", unit, err)
	}
	if len(us) != 1 || us[0].LoadState != "loaded" {
		return "", fmt.Errorf("state of %s: %w", unit, ErrNotFound)
	}
	if u := us[0]; u.ActiveState != "active" || u.JobId != 0 {
		return "", fmt.Errorf("%s (%s, job %d) %w", unit, u.ActiveState, u.JobId, ErrNotRunning)
	}
	cg, err := c.controlGroup(ctx, unit)
	if err == nil && cg == "" {
		err = fmt.Errorf("%s has no cgroup: %w", unit, ErrNotRunning)
	}
	return cg, err
}

// setFrozen freezes or thaws unit, whose cgroup is cg: by systemd's
// FreezeUnit or ThawUnit, or, where systemd does not freeze, by cg's
// cgroup.freeze (direct).
func (c *Conn) setFrozen(ctx context.Context, unit, cg string, freeze bool) (direct bool, err error) {
	call := c.sd.ThawUnit
	if freeze {
		call = c.sd.FreezeUnit
	}
	err = call(ctx, unit)
	var de dbus.Error
	if errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.NotSupported" {
		return true, cgroup.Freeze(ctx, cg, freeze)
	}
	return false, err
}

// thawed unpauses workload name when it is paused, whatever its unit's
// state, so that a stop's or a kill's signal reaches its processes now
// (Docker delivers them to a paused container and resumes it). Before a
// job (job: a stop, a restart) it asks only about a workload marked in
// PausedDir, saving every stop a D-Bus round trip: systemd thaws a unit
// it froze itself (systemctl freeze) before it runs a job on it, and on a
// hybrid layout only cove freezes. Before a signal it reads the cgroup of
// any workload, which systemctl freeze may have frozen too.
func (c *Conn) thawed(ctx context.Context, name string, job bool) error {
	if job {
		if _, err := os.Stat(pauseMark(name)); err != nil {
			return nil
		}
	}
	if err := c.Unpause(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// controlGroup is unit's cgroup, as systemd's ControlGroup gives it.
func (c *Conn) controlGroup(ctx context.Context, unit string) (string, error) {
	p, err := c.sd.GetServicePropertyContext(ctx, unit, "ControlGroup")
	if err != nil {
		return "", notFound("cgroup of", unit, err)
	}
	cg, _ := p.Value.Value().(string)
	return cg, nil
}
