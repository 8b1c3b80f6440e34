package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/internal/cgroup"
	"github.com/cove-project/cove/spec"
)

// ErrNotRunning is returned for a workload that must run and does not
// (pausing one); ErrPaused for one that must not be paused (an exec into
// it would freeze too).
var (
	ErrNotRunning = errors.New("is not running")
	ErrPaused     = errors.New("is paused: unpause it first")
)

// freezeWait bounds how long Pause waits for every process to freeze (a
// process in uninterruptible sleep freezes only when it wakes).
const freezeWait = 10 * time.Second

// Pause freezes every process of workload name (docker pause): they keep
// their state and stop running until Unpause. Where systemd freezes (a
// unified cgroup hierarchy) it asks systemd (FreezeUnit), so that
// systemctl shows the unit frozen and thaws it to stop it; on a hybrid
// layout, whose systemd 252 refuses, it freezes the unit's cgroup in the
// unified hierarchy mounted beside v1's itself (cgroup.Freeze). It
// returns once every process is frozen (or, after freezeWait, thaws it
// again and fails); a workload paused already is no error; one that is
// not active, or whose unit has a job pending (a stop, a restart),
// wraps ErrNotRunning.
func (c *Conn) Pause(ctx context.Context, name string) error {
	unit := spec.UnitName(name)
	cg, err := c.runningCgroup(ctx, name)
	if err != nil || cgroup.Frozen(cg) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, freezeWait)
	defer cancel()
	direct, err := c.setFrozen(ctx, unit, cg, true)
	if err == nil && direct {
		// systemd did not see it: a stop or restart that began meanwhile
		// would wait for its stop timeout on the frozen processes.
		if _, err = c.runningCgroup(ctx, name); err != nil {
			_, thawErr := c.setFrozen(context.WithoutCancel(ctx), unit, cg, false)
			err = errors.Join(err, thawErr)
		}
	}
	if err != nil {
		return fmt.Errorf("pause %s: %w", name, err)
	}
	return nil
}

// Unpause thaws what Pause froze, whatever the unit's state; a workload
// that is not paused is no error.
func (c *Conn) Unpause(ctx context.Context, name string) error {
	unit := spec.UnitName(name)
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
// (Docker delivers them to a paused container and resumes it).
func (c *Conn) thawed(ctx context.Context, name string) error {
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
