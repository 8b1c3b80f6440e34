package spec

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of dependencies, health checks and start limits.
const (
	MaxUnitNameLen    = 255                    // bytes in a unit name (systemd's UNIT_NAME_MAX - 1)
	MinHealthInterval = 100 * time.Millisecond // shortest health.interval
	MaxHealthRetries  = 100                    // largest health.retries
	MaxStartBurst     = math.MaxInt32          // largest service.start_limit.burst
)

// Defaults of a start_limit that sets only one of burst and interval:
// systemd's defaults (DefaultStartLimitBurst=, DefaultStartLimitIntervalSec=).
const (
	defaultStartBurst    = 5
	defaultStartInterval = 10 * time.Second
)

// DefaultHealth returns a health check running command with the defaults:
// interval 30s, timeout 5s, 3 retries, no start period, on failure restart.
func DefaultHealth(command []string) *Health {
	return &Health{Command: command, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3, OnFailure: HealthRestart}
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
	return "", 0, fmt.Errorf(`invalid readiness %q; allowed: %q, %q, %q, "tcp:PORT" (PORT from 1 to 65535)`, s, ReadyStarted, ReadyNotify, ReadyHealthy)
}

// startLimit converts the service.start_limit table t; a key left out
// gets systemd's default.
func (p *parser) startLimit(t map[string]any) StartLimit {
	l := StartLimit{Burst: defaultStartBurst, Interval: defaultStartInterval}
	p.checkKeys(key("service", "start_limit"), t, startLimitKeys)
	if v, ok := t["burst"]; ok {
		if n, ok := p.intIn(key("service", "start_limit", "burst"), v, 1, MaxStartBurst); ok {
			l.Burst = n
		}
	}
	if v, ok := t["interval"]; ok {
		if d, ok := p.duration(key("service", "start_limit", "interval"), v); ok {
			l.Interval = d
		}
	}
	return l
}

// depends fills d from the [depends] table t.
func (p *parser) depends(t map[string]any, d *Depends) {
	p.checkKeys(key("depends"), t, dependsKeys)
	for _, l := range dependLists(d) {
		if v, ok := t[l.key]; ok {
			*l.names, _ = p.strings(key("depends", l.key), v, `["db", "network-online.target"]`)
		}
	}
}

// dependList is one list of Depends and its key in [depends].
type dependList struct {
	key   string
	names *[]string
}

// dependLists returns the lists of d in file order.
func dependLists(d *Depends) []dependList {
	return []dependList{{"after", &d.After}, {"requires", &d.Requires}, {"wants", &d.Wants}, {"binds_to", &d.BindsTo}}
}

// install fills in from the [install] table t.
func (p *parser) install(t map[string]any, in *Install) {
	p.checkKeys(key("install"), t, installKeys)
	if v, ok := t["wanted_by"]; ok {
		in.WantedBy, _ = p.strings(key("install", "wanted_by"), v, `["multi-user.target"]`)
	}
}

// health builds a Health from the [health] table t. If timeout is left out
// and interval is shorter than the default timeout, timeout is interval.
func (p *parser) health(t map[string]any) *Health {
	h := DefaultHealth(nil)
	p.checkKeys(key("health"), t, healthKeys)
	if v, ok := t["command"]; ok {
		h.Command, _ = p.strings(key("health", "command"), v, `["/bin/sh", "-c", "wget -qO- http://127.0.0.1:8080/"]`)
	}
	if v, ok := t["interval"]; ok {
		h.Interval, _ = p.duration(key("health", "interval"), v)
	}
	if v, ok := t["timeout"]; ok {
		h.Timeout, _ = p.duration(key("health", "timeout"), v)
	} else if h.Interval > 0 && h.Interval < h.Timeout {
		h.Timeout = h.Interval
	}
	if v, ok := t["retries"]; ok {
		if n, ok := p.intIn(key("health", "retries"), v, 1, MaxHealthRetries); ok {
			h.Retries = n
		}
	}
	if v, ok := t["start_period"]; ok {
		h.StartPeriod, _ = p.duration(key("health", "start_period"), v)
	}
	if v, ok := t["on_failure"]; ok {
		h.OnFailure, _ = p.str(key("health", "on_failure"), v)
	}
	return h
}

// checkRange returns "" if n is in lo..hi, else what is wrong.
func checkRange(n, lo, hi int64) string {
	if n >= lo && n <= hi {
		return ""
	}
	if hi == MaxStartBurst {
		return fmt.Sprintf("%d is out of range; must be an integer >= %d", n, lo)
	}
	return fmt.Sprintf("%d is out of range; must be an integer from %d to %d", n, lo, hi)
}

// durationIn returns "" if d is in lo..hi (lo excluded if open), else what
// is wrong.
func durationIn(d, lo, hi time.Duration, open bool) string {
	if (d > lo || !open && d == lo) && d <= hi {
		return ""
	}
	op := ">="
	if open {
		op = ">"
	}
	return fmt.Sprintf("%v is out of range; must be %s %v and <= %v", d, op, lo, formatDuration(hi))
}

// formatDuration formats d like time.Duration.String without zero units:
// "1h" rather than "1h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// unitRule says what unit names may look like.
const unitRule = `unit names are letters, digits and ":_.\-@" with a type suffix such as .service or .target, at most 255 characters`

// checkUnitName returns "" if n is a valid systemd unit name (not a
// template) with a type suffix, else what is wrong.
func checkUnitName(n string) string {
	if msg := checkText(n); msg != "" {
		return msg
	}
	i := strings.LastIndexByte(n, '.')
	if i < 0 || !unitSuffix(n) {
		return fmt.Sprintf(`%q is not a unit name; give the full name with its type suffix, such as "multi-user.target" (%s)`, n, unitRule)
	}
	stem := n[:i]
	if len(n) > MaxUnitNameLen {
		return fmt.Sprintf("unit name %q is too long (%d characters); %s", n, len(n), unitRule)
	}
	if j := strings.IndexFunc(n, func(r rune) bool { return !isUnitChar(r) }); j >= 0 {
		r, _ := utf8.DecodeRuneInString(n[j:])
		return fmt.Sprintf("invalid unit name %q: character %q is not allowed; %s", n, r, unitRule)
	}
	prefix, instance, isInstance := strings.Cut(stem, "@")
	switch {
	case prefix == "":
		return fmt.Sprintf("invalid unit name %q: empty name before the suffix or '@'; %s", n, unitRule)
	case isInstance && strings.Contains(instance, "@"):
		return fmt.Sprintf("invalid unit name %q: more than one '@'; %s", n, unitRule)
	case isInstance && instance == "":
		return fmt.Sprintf("%q is a template unit; name an instance of it, such as %q", n, prefix+"@NAME"+n[i:])
	}
	return ""
}

// isUnitChar reports whether r may appear in a unit name.
func isUnitChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(`:_.\-@`, r)
}

// checkDependency returns "" if n is a valid workload name or unit name,
// else what is wrong.
func checkDependency(n string) string {
	if msg := checkText(n); msg != "" {
		return msg
	}
	if unitSuffix(n) {
		return checkUnitName(n)
	}
	if ValidName(n) != nil {
		return fmt.Sprintf(`invalid dependency %q: neither a workload name (%s) nor a unit name with a type suffix such as "postgresql.service" or "network-online.target"`, n, nameRule)
	}
	return ""
}

// depends checks d for the workload name.
func (v *validator) depends(name string, d *Depends) {
	for _, l := range dependLists(d) {
		k := "depends." + l.key
		seen := make(map[string]int)
		for i, n := range *l.names {
			if msg := checkDependency(n); msg != "" {
				v.add(k, fmt.Sprintf("element %d: %s", i+1, msg))
				continue
			}
			u := d.Units([]string{n})[0]
			if u == UnitName(name) {
				v.add(k, fmt.Sprintf("element %d: %q is this workload itself; a workload cannot depend on itself", i+1, n))
			} else if j, ok := seen[u]; ok {
				v.add(k, fmt.Sprintf("element %d: %q is listed twice (also element %d)", i+1, n, j))
			} else {
				seen[u] = i + 1
			}
		}
	}
}

// install checks in for the workload name.
func (v *validator) install(name string, in *Install) {
	const k = "install.wanted_by"
	for i, n := range in.WantedBy {
		switch {
		case checkUnitName(n) != "":
			v.add(k, fmt.Sprintf("element %d: %s", i+1, checkUnitName(n)))
		case n == UnitName(name):
			v.add(k, fmt.Sprintf("element %d: %q is this workload itself; a workload cannot be wanted by itself", i+1, n))
		case slices.Contains(in.WantedBy[:i], n):
			v.add(k, fmt.Sprintf("element %d: %q is listed twice", i+1, n))
		}
	}
}

// health checks h.
func (v *validator) health(h *Health) {
	v.command("health.command", h.Command, `["/bin/sh", "-c", "wget -qO- http://127.0.0.1:8080/"]`)
	intervalOK := true
	if msg := durationIn(h.Interval, MinHealthInterval, MaxDuration, false); msg != "" {
		v.add("health.interval", msg)
		intervalOK = false
	}
	switch {
	case h.Timeout <= 0:
		v.add("health.timeout", fmt.Sprintf("%v is out of range; must be > 0s and <= interval", h.Timeout))
	case intervalOK && h.Timeout > h.Interval:
		v.add("health.timeout", fmt.Sprintf("%v is longer than interval (%v); must be <= interval", h.Timeout, h.Interval))
	}
	if msg := checkRange(int64(h.Retries), 1, MaxHealthRetries); msg != "" {
		v.add("health.retries", msg)
	}
	if msg := durationIn(h.StartPeriod, 0, MaxDuration, false); msg != "" {
		v.add("health.start_period", msg)
	}
	switch h.OnFailure {
	case HealthRestart, HealthKill, HealthNone:
	default:
		v.add("health.on_failure", fmt.Sprintf("invalid on_failure %q; allowed: %q, %q, %q", h.OnFailure, HealthRestart, HealthKill, HealthNone))
	}
}

// startLimit checks l; the zero value means systemd's default.
func (v *validator) startLimit(l StartLimit) {
	if l == (StartLimit{}) {
		return
	}
	if msg := checkRange(int64(l.Burst), 1, MaxStartBurst); msg != "" {
		v.add("service.start_limit.burst", msg)
	}
	if msg := durationIn(l.Interval, 0, MaxDuration, true); msg != "" {
		v.add("service.start_limit.interval", msg)
	}
}

// ready checks the readiness mode of s.
func (v *validator) ready(s *Spec) {
	const k = "service.ready"
	r, port := s.Service.Ready, s.Service.ReadyPort
	switch r {
	case "", ReadyStarted, ReadyNotify, ReadyHealthy, ReadyTCP:
	default:
		v.add(k, fmt.Sprintf(`invalid readiness %q; allowed: %q, %q, %q, %q (with ReadyPort)`, r, ReadyStarted, ReadyNotify, ReadyHealthy, ReadyTCP))
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
		v.add(k, `ready = "healthy" is not supported for kind vm ([health] is not supported for kind vm yet); allowed: "started", "tcp:PORT"`)
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
