package supervisor

import (
	"context"
	"syscall"

	sd "github.com/coreos/go-systemd/v22/dbus"

	"github.com/cove-project/cove/spec"
)

// Signal sends sig to workload name's main process only (systemd's
// KillUnit with whom "main"). What follows is the payload's and the
// unit's business: a payload that exits is handled by the unit's restart
// policy. A container's payload is PID 1 of its PID namespace, so signals
// other than SIGKILL and SIGSTOP reach it only if it handles them. A
// paused workload is unpaused first, as Docker resumes a paused container
// it signals.
func (c *Conn) Signal(ctx context.Context, name string, sig syscall.Signal) error {
	unit := spec.UnitName(name)
	if err := c.thawed(ctx, name, false); err != nil {
		return err
	}
	if err := c.sd.KillUnitWithTarget(ctx, unit, sd.Main, int32(sig)); err != nil {
		return notFound("send "+SignalName(sig)+" to", unit, err)
	}
	return nil
}

// ParseSignal reads a signal as Docker does (see spec.ParseSignal).
func ParseSignal(s string) (syscall.Signal, error) {
	n, err := spec.ParseSignal(s)
	return syscall.Signal(n), err
}

// SignalName is sig's name ("SIGTERM", "SIGRTMIN+3"), or its number.
func SignalName(sig syscall.Signal) string { return spec.SignalName(int(sig)) }
