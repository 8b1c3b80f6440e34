package supervisor

import (
	"errors"
	"fmt"

	"github.com/coreos/go-systemd/v22/machine1"
	"github.com/godbus/dbus/v5"
)

// Machine classes for RegisterMachine.
const (
	ClassContainer = "container"
	ClassVM        = "vm"
)

// ErrNoMachined is returned when systemd-machined is not installed.
var ErrNoMachined = errors.New("systemd-machined is not available")

// RegisterMachine registers a running workload with systemd-machined so
// that machinectl lists it. leader is its main process; machined takes the
// machine's unit from the leader's cgroup and forgets the machine when
// that unit stops.
func RegisterMachine(name, class string, leader int, root string) error {
	conn, err := machine1.New()
	if err != nil {
		return fmt.Errorf("register machine %s: %w", name, err)
	}
	err = conn.RegisterMachine(name, nil, "cove", class, leader, root)
	var de dbus.Error
	if errors.As(err, &de) && (de.Name == "org.freedesktop.DBus.Error.ServiceUnknown" || de.Name == "org.freedesktop.DBus.Error.NameHasNoOwner") {
		return fmt.Errorf("register machine %s: %w", name, ErrNoMachined)
	}
	if err != nil {
		return fmt.Errorf("register machine %s: %w", name, err)
	}
	return nil
}
