// Package health runs one health probe of a workload (the work of its
// cove-NAME-health.service, started by its timer) and keeps the result in
// /run/cove/health/NAME.json. An unhealthy workload is restarted or killed
// by systemd, at the probe's request; no cove process stays resident.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/enter"
	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/qga"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/supervisor"
)

// Dir holds the health state files.
const Dir = "/run/cove/health"

// States of a workload's health.
const (
	Starting  = "starting"  // within the start period, or not yet probed
	Healthy   = "healthy"   // the last probe passed
	Unhealthy = "unhealthy" // Retries probes in a row failed
)

// State is what the probes found so far, for one run of the workload.
type State struct {
	Status     string    `json:"status"`
	Failures   int       `json:"failures"` // consecutive
	LastOutput string    `json:"last_output,omitempty"`
	CheckedAt  time.Time `json:"checked_at"`
	Invocation string    `json:"invocation"` // the workload run the state belongs to
	Action     string    `json:"action,omitempty"`
	// GuestPID is a VM's check that timed out and may still run in its
	// guest: the next probe asks after it before it starts another.
	GuestPID int `json:"guest_pid,omitempty"`
}

// Check is one probe's parameters.
type Check struct {
	Self        string // the cove binary, which enters the container
	Name        string
	Command     []string // a container's check, or a VM's through its guest agent (Agent); or
	Agent       bool     // a VM's Command, run by its guest agent
	Guest       Guest    // a VM's (Port set)
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
	OnFailure   string // "restart", "kill" or "none"
}

// Read returns workload name's health state; ok is false when it has none.
func Read(name string) (State, bool) {
	b, err := os.ReadFile(filepath.Join(Dir, name+".json"))
	if err != nil {
		return State{}, false
	}
	var s State
	if json.Unmarshal(b, &s) != nil {
		return State{}, false
	}
	return s, true
}

// Recorded returns the names of the workloads with a recorded state:
// one directory read, so that a list of many workloads reads only the
// states there are (most workloads have no health check).
func Recorded() map[string]bool {
	entries, _ := os.ReadDir(Dir)
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			names[name] = true
		}
	}
	return names
}

// Run probes once (a container: the command in its namespaces as its
// user; a VM: its guest port from the host), updates the state, and when the workload has become unhealthy asks
// systemd to act as OnFailure says.
func Run(ctx context.Context, conn *supervisor.Conn, c Check) error {
	w, err := conn.Probe(ctx, c.Name)
	if err != nil {
		return fmt.Errorf("health of %s: %w", c.Name, err)
	}
	if w.MainPID == 0 || w.Paused {
		return nil // not running, or frozen (a probe would freeze too): nothing to probe
	}
	st, ok := Read(c.Name)
	if !ok || st.Invocation != w.Invocation {
		st = State{Status: Starting, Invocation: w.Invocation}
	}
	was := st.Status
	out, perr := probe(ctx, conn, c, w, &st.GuestPID)
	st.LastOutput, st.CheckedAt = tail(out, 512), time.Now()
	switch {
	case perr == nil:
		st.Status, st.Failures = Healthy, 0
	case time.Since(w.Started) < c.StartPeriod:
		st.LastOutput = tail(out+perr.Error(), 512)
	default:
		st.Failures++
		st.LastOutput = tail(out+perr.Error(), 512)
		if st.Failures >= c.Retries {
			st.Status = Unhealthy
		}
	}
	act := st.Status == Unhealthy && st.Failures == c.Retries && c.OnFailure != "none"
	if act {
		st.Action = c.OnFailure
	}
	if err := save(c.Name, st); err != nil {
		return err
	}
	var recErr error
	if st.Status != was && st.Status != Starting {
		recErr = eventlog.HealthChanged(c.Name, st.Status) // the health_status event
	}
	switch {
	case !act:
		return recErr
	case c.OnFailure == "kill":
		return errors.Join(conn.Signal(ctx, c.Name, syscall.SIGKILL), recErr)
	default:
		return errors.Join(conn.RestartNoWait(ctx, c.Name), recErr)
	}
}

// save writes the state atomically.
func save(name string, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save health of %s: %w", name, err)
	}
	return declared.WriteFile(filepath.Join(Dir, name+".json"), b)
}

// Remove deletes workload name's health state.
func Remove(name string) error {
	err := os.Remove(filepath.Join(Dir, name+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Guest is a VM's check: a guest port probed from the host.
type Guest struct {
	Port     int    // the guest port
	HTTPPath string // GET this path (healthy: 2xx or 3xx); "": a TCP connection suffices
	Address  string // HOST:PORT where the host reaches Port (a user network's forward); or
	Network  string // the network whose lease of the VM gives its address
}

// probeGuest probes VM name's guest port g within timeout: a TCP
// connection, or an HTTP GET answered with a status below 400.
func probeGuest(ctx context.Context, name string, g Guest, timeout time.Duration) (string, error) {
	addr := g.Address
	if g.Network != "" {
		a, err := network.Leases{Root: network.DefaultLeaseRoot}.Of(g.Network, name)
		if err != nil {
			return "", fmt.Errorf("health of %s: %w", name, err)
		}
		addr = netip.AddrPortFrom(a, uint16(g.Port)).String()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if g.HTTPPath == "" {
		if err := isolate.DialGuest(ctx, addr); err != nil {
			return "", fmt.Errorf("health of %s: %w", name, err)
		}
		return "connected to " + addr, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+g.HTTPPath, nil)
	if err != nil {
		return "", fmt.Errorf("health of %s: %w", name, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("health of %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", fmt.Errorf("health of %s: GET %s: %s", name, req.URL, resp.Status)
	}
	return fmt.Sprintf("GET %s: %s", req.URL, resp.Status), nil
}

// probeAgent runs command in VM name's guest through its guest agent
// (package qga) within timeout: healthy when it exits 0. A check that
// timed out may still run in the guest (*pending, its guest pid): no
// other starts until it has exited, so hung checks cannot pile up.
func probeAgent(ctx context.Context, name string, command []string, timeout time.Duration, pending *int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	socket := launch.AgentSocket(name)
	if *pending != 0 {
		exited, err := qga.Reap(ctx, socket, *pending)
		if err == nil && !exited {
			return "", fmt.Errorf("health of %s: the last check (guest pid %d) still runs, so no other is started", name, *pending)
		}
		*pending = 0 // ended, or unknown to the agent (it restarted)
	}
	r, err := qga.Exec(ctx, socket, command)
	var still *qga.StillRunning
	if errors.As(err, &still) {
		*pending = still.PID
	}
	switch {
	case errors.Is(err, qga.ErrNoAgent):
		return "", fmt.Errorf("health of %s: %w within %s (health.command of a VM needs qemu-guest-agent running in the guest)", name, err, timeout)
	case err != nil && ctx.Err() != nil:
		return "", fmt.Errorf("health of %s: probe timed out after %s: %w", name, timeout, err)
	case err != nil:
		return "", fmt.Errorf("health of %s: %w", name, err)
	case r.ExitCode != 0:
		return string(r.Output), fmt.Errorf("probe: exit status %d", r.ExitCode)
	}
	return string(r.Output), nil
}

// probe checks workload w as c says: a VM's guest port from the host
// (probeGuest), c's command in a VM's guest (probeAgent), or c's command
// inside the container as its payload runs (see isolate.EnterCommand).
func probe(ctx context.Context, conn *supervisor.Conn, c Check, w supervisor.ProbeTarget, guestPID *int) (string, error) {
	switch {
	case c.Guest.Port != 0:
		return probeGuest(ctx, c.Name, c.Guest, c.Timeout)
	case c.Agent:
		return probeAgent(ctx, c.Name, c.Command, c.Timeout, guestPID)
	}
	cfg, t, err := enter.Open(ctx, conn, c.Name, w)
	if err != nil {
		return "", fmt.Errorf("health of %s: %w", c.Name, err)
	}
	cfg.Argv = c.Command
	defer t.Close()
	return isolate.Probe(launch.InsidePath(c.Self), cfg, t, c.Timeout)
}
