package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/internal/cgroup"
	"github.com/cove-project/cove/spec"
)

// ErrNotRunning is returned for a workload that must run and does not
// (pausing one).
var ErrNotRunning = errors.New("is not running")

// Pause freezes every process of workload name (docker pause): they keep
// their state and stop running until Unpause. Where systemd freezes (a
// unified cgroup hierarchy) it asks systemd (FreezeUnit), so that
// systemctl shows the unit frozen and thaws it to stop it; on a hybrid
// layout, whose systemd 252 refuses, it freezes the unit's cgroup in the
// unified hierarchy mounted beside v1's itself (cgroup.Freeze). It
// returns once every process is frozen; a workload paused already is no
// error; one that is not active wraps ErrNotRunning.
func (c *Conn) Pause(ctx context.Context, name string) error { return c.freeze(ctx, name, true) }

// Unpause thaws what Pause froze; a workload that is not paused is no
// error.
func (c *Conn) Unpause(ctx context.Context, name string) error { return c.freeze(ctx, name, false) }

// freeze is Pause (freeze) or Unpause.
func (c *Conn) freeze(ctx context.Context, name string, freeze bool) error {
	unit, op := spec.UnitName(name), "unpause"
	if freeze {
		op = "pause"
	}
	w, err := c.Status(ctx, name)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	if w.ActiveState != "active" {
		return fmt.Errorf("%s %s: %s (%s) %w", op, name, unit, w.ActiveState, ErrNotRunning)
	}
	cg, err := c.controlGroup(ctx, unit)
	if err != nil || cgroup.Frozen(cg) == freeze {
		return err
	}
	call := c.sd.ThawUnit
	if freeze {
		call = c.sd.FreezeUnit
	}
	err = call(ctx, unit)
	var de dbus.Error
	if errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.NotSupported" {
		err = cgroup.Freeze(ctx, cg, freeze)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	return nil
}

// thawed unpauses workload name when it is paused, so that a stop's or a
// kill's signal reaches its processes now (Docker delivers them to a
// paused container and resumes it).
func (c *Conn) thawed(ctx context.Context, name string) error {
	cg, err := c.controlGroup(ctx, spec.UnitName(name))
	if err != nil || !cgroup.Frozen(cg) {
		return nil // not running, or not frozen: nothing to thaw
	}
	return c.freeze(ctx, name, false)
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
