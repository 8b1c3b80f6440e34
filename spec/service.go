package spec

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// MaxStartBurst is the largest service.start_limit.burst.
const MaxStartBurst = math.MaxInt32

// Defaults of a start_limit that sets only one of burst and interval:
// systemd's defaults (DefaultStartLimitBurst=, DefaultStartLimitIntervalSec=).
const (
	defaultStartBurst    = 5
	defaultStartInterval = 10 * time.Second
)

// serviceDefaults returns the default Service.
func serviceDefaults() Service {
	return Service{Restart: RestartNo, RestartDelay: time.Second, StopTimeout: 10 * time.Second, Ready: ReadyStarted}
}

// readService fills s from the [service] table t.
func readService(t table, s *Service) {
	t.read("restart", &s.Restart)
	t.read("restart_delay", &s.RestartDelay)
	t.read("stop_timeout", &s.StopTimeout)
	t.read("stop_signal", &s.StopSignal)
	t.read("init", &s.Init)
	t.read("replicas", &s.Replicas)
	if l, ok := t.table("start_limit"); ok {
		// A key left out gets systemd's default.
		s.StartLimit = StartLimit{Burst: defaultStartBurst, Interval: defaultStartInterval}
		l.read("burst", &s.StartLimit.Burst)
		l.read("interval", &s.StartLimit.Interval)
	}
	var ready string
	if t.read("ready", &ready) {
		mode, port, err := ParseReady(ready)
		if err != nil {
			t.fail("ready", err.Error())
		} else {
			s.Ready, s.ReadyPort = mode, port
		}
	}
}

// ParseReady parses a readiness mode as written in service.ready:
// "started", "notify", "healthy" or "tcp:PORT" with PORT from 1 to 65535.
// It returns the mode (a Ready* constant) and, for "tcp:PORT", the port.
func ParseReady(s string) (mode string, port int, err error) {
	switch s {
	case ReadyStarted, ReadyNotify, ReadyHealthy:
		return s, 0, nil
	}
	if p, ok := strings.CutPrefix(s, ReadyTCP+":"); ok {
		n, msg := parsePort(p)
		if msg != "" {
			return "", 0, fmt.Errorf("invalid readiness %q: port %s", s, msg)
		}
		return ReadyTCP, n, nil
	}
	return "", 0, fmt.Errorf(`invalid readiness %q; allowed: %s (PORT from 1 to 65535)`, s, allowed("service.ready"))
}

func (v *validator) service(s *Service) {
	v.oneOf("service.restart", "restart policy", s.Restart, "")
	if s.RestartDelay < 0 || s.RestartDelay > MaxDuration {
		v.add("service.restart_delay", fmt.Sprintf("%v is out of range; must be >= 0s and <= 1h", s.RestartDelay))
	}
	if s.StopTimeout <= 0 || s.StopTimeout > MaxDuration {
		v.add("service.stop_timeout", fmt.Sprintf("%v is out of range; must be > 0s and <= 1h", s.StopTimeout))
	}
	if _, err := ParseSignal(s.StopSignal); s.StopSignal != "" && err != nil {
		v.add("service.stop_signal", fmt.Sprintf("%q is not a signal; write a name such as %s, SIGINT or RTMIN+3, or a number from 1 to 64", s.StopSignal, example("service.stop_signal")))
	}
	v.startLimit(s.StartLimit)
}

// startLimit checks l; the zero value means systemd's default, unless the
// file sets it.
func (v *validator) startLimit(l StartLimit) {
	if !v.set("service.start_limit", l != StartLimit{}) {
		return
	}
	v.inRange("service.start_limit.burst", l.Burst)
	if msg := durationIn(l.Interval, 0, MaxDuration, true); msg != "" {
		v.add("service.start_limit.interval", msg)
	}
}

// readyModes are the values of Service.Ready: those of service.ready,
// with "tcp:PORT" as ReadyTCP and a ReadyPort.
func readyModes() []string {
	modes := make([]string, len(readyValues))
	for i, r := range readyValues {
		modes[i], _, _ = strings.Cut(r, ":")
	}
	return modes
}

// ready checks the readiness mode of s.
func (v *validator) ready(s *Spec) {
	const k = "service.ready"
	r, port := s.Service.Ready, s.Service.ReadyPort
	if r != "" && !slices.Contains(readyModes(), r) {
		v.add(k, fmt.Sprintf(`invalid readiness %q; allowed: %s (with ReadyPort)`, r, joinQuoted(readyModes(), ", ")))
		return
	}
	if r == ReadyTCP {
		if msg := checkPort(port); msg != "" {
			v.add(k, "tcp port "+msg)
			return
		}
	} else if port != 0 {
		v.add(k, fmt.Sprintf("ReadyPort %d is set, but readiness is %q; a port goes with %q only", port, r, ReadyTCP))
		return
	}
	switch {
	case s.Kind == KindVM && r == ReadyNotify:
		v.add(k, `ready = "notify" is not supported for kind vm (QEMU does not send READY=1); allowed: "started", "tcp:PORT"`)
	case s.Kind == KindVM && r == ReadyHealthy:
		v.add(k, `ready = "healthy" is not supported for kind vm (its [health] check does not gate the start yet); allowed: "started", "tcp:PORT"`)
	case r == ReadyHealthy && s.Health == nil:
		v.add(k, `ready = "healthy" needs a [health] table with the command that checks health`)
	case s.Kind == KindVM && r == ReadyTCP && s.VM != nil && !forwardsTCP(s.VM.Network.Forwards, port):
		v.add(k, fmt.Sprintf(`for kind vm, PORT is a host port and must be the host port of a tcp forward in [vm.network] (such as forward = ["127.0.0.1:%d:80/tcp"]); no forward has host port %d/tcp`, port, port))
	}
}

// forwardsTCP reports whether a tcp forward has host port port.
func forwardsTCP(fs []Forward, port int) bool {
	return slices.ContainsFunc(fs, func(f Forward) bool { return f.Proto == ProtoTCP && f.HostPort == port })
}
