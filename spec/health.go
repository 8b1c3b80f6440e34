package spec

import (
	"fmt"
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

// health checks h.
func (v *validator) health(h *Health) {
	v.command("health.command", h.Command)
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
