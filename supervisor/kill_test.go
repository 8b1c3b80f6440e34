package supervisor

import (
	"syscall"
	"testing"
)

// TestParseSignal: names in any case with or without SIG, Docker's
// aliases and real-time names, and numbers 1 to 64; anything else is
// Docker's "Invalid signal".
func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"KILL": syscall.SIGKILL, "SIGKILL": syscall.SIGKILL, "9": syscall.SIGKILL, "term": syscall.SIGTERM,
		"SigHup": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "SIGWINCH": syscall.SIGWINCH, "IOT": syscall.SIGABRT,
		"CLD": syscall.SIGCHLD, "POLL": syscall.SIGIO, "RTMIN": 34, "SIGRTMIN+3": 37, "RTMAX": 64, "RTMAX-2": 62, "64": 64, "1": 1,
	} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "65", "NOPE", "SIG", "SIGSIGKILL", "RTMIN+31", "RTMAX-31", "RTMIN-1", "RTMIN+", "RTMIN3", "RTMAX+1", "9.0"} {
		if got, err := ParseSignal(in); err == nil || err.Error() != "Invalid signal: "+in {
			t.Errorf("ParseSignal(%q) = %d, %v; want Invalid signal", in, got, err)
		}
	}
}

// TestSignalName: names as in Go's and Linux's tables, real-time signals
// by offset.
func TestSignalName(t *testing.T) {
	for sig, want := range map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL", 34: "SIGRTMIN", 40: "SIGRTMIN+6", 99: "signal 99"} {
		if got := SignalName(sig); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", sig, got, want)
		}
	}
}
