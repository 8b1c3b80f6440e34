package supervisor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/spec"
)

// Signal sends sig to workload name's main process only (systemd's
// KillUnit with whom "main"). What follows is the payload's and the
// unit's business: a payload that exits is handled by the unit's restart
// policy. A container's payload is PID 1 of its PID namespace, so signals
// other than SIGKILL and SIGSTOP reach it only if it handles them.
func (c *Conn) Signal(ctx context.Context, name string, sig syscall.Signal) error {
	unit := spec.UnitName(name)
	if err := c.sd.KillUnitWithTarget(ctx, unit, sd.Main, int32(sig)); err != nil {
		return notFound("send "+SignalName(sig)+" to", unit, err)
	}
	return nil
}

// Real-time signals as glibc numbers them (Docker's RTMIN+N, RTMAX-N).
const (
	sigRTMin = 34
	sigRTMax = 64
)

// sigAliases are the other names of signals Docker accepts.
var sigAliases = map[string]syscall.Signal{"IOT": unix.SIGABRT, "CLD": unix.SIGCHLD, "POLL": unix.SIGIO}

// ParseSignal reads a signal as Docker does: a number from 1 to 64 (as
// strconv.Atoi reads it), or a name with or without "SIG" in any case
// (KILL, sigterm, SIGHUP, RTMIN+3, RTMAX-1). Anything else is an error
// "Invalid signal: S", in Docker's words.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("Invalid signal: %.32s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	if sig, ok := sigAliases[name]; ok {
		return sig, nil
	}
	if sig, ok := realtime(name); ok {
		return sig, nil
	}
	return 0, fmt.Errorf("Invalid signal: %.32s", s)
}

// realtime reads RTMIN, RTMIN+N, RTMAX and RTMAX-N.
func realtime(name string) (syscall.Signal, bool) {
	base, sign, op := sigRTMin, 1, "+"
	rest, ok := strings.CutPrefix(name, "RTMIN")
	if !ok {
		base, sign, op = sigRTMax, -1, "-"
		if rest, ok = strings.CutPrefix(name, "RTMAX"); !ok {
			return 0, false
		}
	}
	n := 0
	if rest != "" {
		digits, ok := strings.CutPrefix(rest, op)
		var err error
		if n, err = strconv.Atoi(digits); !ok || err != nil || !isDigits(digits) {
			return 0, false
		}
	}
	sig := base + sign*n
	return syscall.Signal(sig), sig >= sigRTMin && sig <= sigRTMax
}

// SignalName is sig's name ("SIGTERM", "SIGRTMIN+3"), or its number.
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	switch {
	case sig == sigRTMin:
		return "SIGRTMIN"
	case sig > sigRTMin && sig <= sigRTMax:
		return fmt.Sprintf("SIGRTMIN+%d", sig-sigRTMin)
	}
	return "signal " + strconv.Itoa(int(sig))
}

// isDigits reports whether s is ASCII digits only.
func isDigits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}
