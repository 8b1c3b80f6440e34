package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// Real-time signals as glibc numbers them (Docker's RTMIN+N, RTMAX-N).
const (
	sigRTMin = 34
	sigRTMax = 64
)

// The signals cove itself names (in units: the stop signal's default,
// the exits that count as clean), by Linux's numbers.
const (
	SignalHUP  = 1
	SignalINT  = 2
	SignalKILL = 9
	SignalPIPE = 13
	SignalTERM = 15
)

// signalNumbers are Linux's standard signals (the numbers of x86, arm and
// most others), by name without "SIG", and the other names Docker accepts
// (IOT, CLD, POLL).
var signalNumbers = map[string]int{
	"HUP": SignalHUP, "INT": SignalINT, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
	"KILL": SignalKILL, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": SignalPIPE, "ALRM": 14, "TERM": SignalTERM,
	"STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
	"URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
	"PWR": 30, "SYS": 31, "IOT": 6, "CLD": 17, "POLL": 29,
}

// ParseSignal reads a signal as Docker does (docker kill -s, STOPSIGNAL,
// --stop-signal): a number from 1 to 64, or a name with or without "SIG"
// in any case (KILL, sigterm, SIGHUP, RTMIN+3, RTMAX-1). Anything else is
// an error "Invalid signal: S", in Docker's words.
func ParseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("Invalid signal: %.32s", s)
		}
		return n, nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if n, ok := signalNumbers[name]; ok {
		return n, nil
	}
	if n, ok := realtime(name); ok {
		return n, nil
	}
	return 0, fmt.Errorf("Invalid signal: %.32s", s)
}

// realtime reads RTMIN, RTMIN+N, RTMAX and RTMAX-N.
func realtime(name string) (int, bool) {
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
		if n, err = strconv.Atoi(digits); !ok || err != nil || strings.Trim(digits, "0123456789") != "" {
			return 0, false
		}
	}
	sig := base + sign*n
	return sig, sig >= sigRTMin && sig <= sigRTMax
}

// SignalName is signal n's name as systemd and kill(1) write it
// ("SIGTERM", "SIGRTMIN+3"), or "signal N".
func SignalName(n int) string {
	for name, m := range signalNumbers {
		if m == n && name != "IOT" && name != "CLD" && name != "POLL" {
			return "SIG" + name
		}
	}
	switch {
	case n == sigRTMin:
		return "SIGRTMIN"
	case n > sigRTMin && n <= sigRTMax:
		return fmt.Sprintf("SIGRTMIN+%d", n-sigRTMin)
	}
	return "signal " + strconv.Itoa(n)
}
