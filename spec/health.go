package spec

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits of health checks.
const (
	MinHealthInterval = 100 * time.Millisecond // shortest health.interval
	MaxHealthRetries  = 100                    // largest health.retries
)

// DefaultHealth returns a health check running command with the defaults:
// interval 30s, timeout 5s, 3 retries, no start period, on failure restart.
func DefaultHealth(command []string) *Health {
	return &Health{Command: command, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3, OnFailure: HealthRestart}
}

// readHealth builds a Health from the [health] table t. If timeout is left
// out and interval is shorter than the default timeout, timeout is
// interval.
func readHealth(t table) *Health {
	h := DefaultHealth(nil)
	t.read("command", &h.Command)
	t.read("tcp", &h.TCP)
	t.read("http", &h.HTTP)
	t.read("path", &h.Path)
	t.read("interval", &h.Interval)
	if t.has("timeout") {
		t.read("timeout", &h.Timeout)
	} else if h.Interval > 0 && h.Interval < h.Timeout {
		h.Timeout = h.Interval
	}
	t.read("retries", &h.Retries)
	t.read("start_period", &h.StartPeriod)
	t.read("on_failure", &h.OnFailure)
	return h
}

// health checks h, a container's.
func (v *validator) health(h *Health) {
	v.command("health.command", h.Command)
	for _, k := range []struct {
		key string
		set bool
	}{{"health.tcp", h.TCP != 0}, {"health.http", h.HTTP != 0}} {
		if k.set {
			v.add(k.key, `tcp and http probe a VM's guest from the host; a container's check is a command in it (health.command)`)
		}
	}
	v.healthTiming(h)
}

// GuestPort is the guest port a VM's check probes (TCP or HTTP); 0 for a
// container's.
func (h *Health) GuestPort() int { return max(h.TCP, h.HTTP) }

// TCPForward is the user network's forward of TCP guest port port, if n
// has one.
func (n *VMNetwork) TCPForward(port int) (Forward, bool) {
	i := slices.IndexFunc(n.Forwards, func(f Forward) bool { return f.GuestPort == port && f.Proto == ProtoTCP })
	if i < 0 {
		return Forward{}, false
	}
	return n.Forwards[i], true
}

// vmHealth checks h, VM m's: a command run in the guest by its guest
// agent, or a probe of one guest port from the host, through a forward of
// the user network or at the guest's address on a bridge.
func (v *validator) vmHealth(h *Health, m *VM) {
	checks := 0
	for _, set := range []bool{len(h.Command) > 0, h.TCP != 0, h.HTTP != 0} {
		if set {
			checks++
		}
	}
	switch {
	case checks != 1:
		v.add("health", `a VM's health check needs one of command = [...] (run in the guest by its QEMU guest agent), tcp = PORT or http = PORT (the guest port the host probes)`)
	case len(h.Command) > 0:
		v.command("health.command", h.Command)
	case h.Path != "" && (h.HTTP == 0 || !strings.HasPrefix(h.Path, "/")):
		v.add("health.path", fmt.Sprintf("%q: path is the URL path of an http check, such as \"/healthz\" (default \"/\")", h.Path))
	}
	port, key := h.GuestPort(), "health.tcp"
	if h.HTTP != 0 {
		key = "health.http"
	}
	_, forwarded := m.Network.TCPForward(port)
	switch n := m.Network; {
	case port == 0:
	case n.Mode == VMNetworkNone:
		v.add(key, `the host cannot reach a guest without a network: set [vm.network] mode = "user" (with a forward of the port) or "bridge"`)
	case n.Mode == VMNetworkUser && !forwarded:
		v.add(key, fmt.Sprintf("the host reaches a guest on the user network only through a forward: add one of TCP guest port %d to [vm.network] forward", port))
	}
	v.healthTiming(h)
}

// healthTiming checks h's interval, timeout, retries, start period and
// failure action.
func (v *validator) healthTiming(h *Health) {
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
	v.inRange("health.retries", h.Retries)
	if msg := durationIn(h.StartPeriod, 0, MaxDuration, false); msg != "" {
		v.add("health.start_period", msg)
	}
	v.oneOf("health.on_failure", "on_failure", h.OnFailure, "")
}
