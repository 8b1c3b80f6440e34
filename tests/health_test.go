package tests

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealthRestartsUnhealthy: a failing probe makes systemd restart the
// workload within interval × retries + slack; health shows in cove ps and
// status; removing the workload removes the probe's timer.
func TestHealthRestartsUnhealthy(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	marker := "/tmp/alive-hsick"
	inside(t, "rm", "-f", rootfs+marker)
	dir := filepath.Join(workDir, "health")
	p := declaredCmd(t, dir, "hsick", `["/bin/sh", "-c", "touch `+marker+`; sleep 2; rm `+marker+`; exec sleep 1000"]`,
		"[health]\ncommand = [\"test\", \"-e\", \""+marker+"\"]\ninterval = \"500ms\"\ntimeout = \"400ms\"\nretries = 2\n")
	mustCove(t, "apply", p)
	first := show(t, "cove-hsick.service", "InvocationID")
	if st := show(t, "cove-hsick-health.timer", "ActiveState"); st != "active" {
		t.Fatalf("health timer is %s", st)
	}
	eventually(t, 3*time.Second, "hsick to be healthy", func() bool { return healthOf(t, "hsick") == "healthy" })
	// The marker goes at 2 s; 2 failures at 500 ms intervals: restart by ~3.5 s.
	eventually(t, 6*time.Second, "hsick to be restarted", func() bool {
		id := show(t, "cove-hsick.service", "InvocationID")
		return id != first && id != "" && show(t, "cove-hsick.service", "ActiveState") == "active"
	})
	if ps := mustCove(t, "ps"); strings.Contains(ps, "hsick-health") {
		t.Errorf("cove ps lists the health check's units as workloads:\n%s", ps)
	}
	if st := mustCove(t, "status", "hsick"); !strings.Contains(st, "Health:") {
		t.Errorf("cove status lacks health:\n%s", st)
	}
	mustCove(t, "apply", "--prune", filepath.Join(workDir, "empty"))
	if st := show(t, "cove-hsick-health.timer", "ActiveState"); st == "active" {
		t.Errorf("health timer still active after the workload was removed")
	}
}

// healthOf reads a workload's health from cove ps --json.
func healthOf(t *testing.T, name string) string {
	t.Helper()
	var rows []struct {
		Name   string `json:"name"`
		Health string `json:"health"`
	}
	if err := json.Unmarshal([]byte(mustCove(t, "ps", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == name {
			return r.Health
		}
	}
	return ""
}

// TestTransientHealth: cove run with a health check gets the same probe
// machinery as transient units, its probes every 300 ms go on for longer
// than systemd's default start limit allows, and cove rm removes it.
func TestTransientHealth(t *testing.T) {
	env.Need(t)
	p := declaredCmd(t, filepath.Join(workDir, "thealth"), "thealth", `["/bin/sleep", "1000"]`,
		"[health]\ncommand = [\"true\"]\ninterval = \"300ms\"\n")
	cleanupWorkload(t, "thealth")
	mustCove(t, "run", "-d", p)
	eventually(t, 5*time.Second, "thealth to be healthy", func() bool { return healthOf(t, "thealth") == "healthy" })
	// Probes every 300 ms go on past systemd's default start limit (5 starts
	// in 10 s): the last one is recent after 5 s.
	time.Sleep(5 * time.Second)
	var st struct {
		CheckedAt time.Time `json:"checked_at"`
	}
	if err := json.Unmarshal([]byte(inside(t, "cat", "/run/cove/health/thealth.json").Stdout), &st); err != nil || time.Since(st.CheckedAt) > 2*time.Second {
		t.Errorf("the last probe ran at %v (%v): the probes stopped (%s)", st.CheckedAt, err, show(t, "cove-thealth-health.service", "Result"))
	}
	mustCove(t, "rm", "thealth")
	if strings.Contains(listUnits(t), "thealth-health") {
		t.Errorf("cove rm left the health units:\n%s", listUnits(t))
	}
}

// TestStartLimit: a crashing workload that restarts too often ends
// failed with start-limit-hit, and cove ps says so.
func TestStartLimit(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	p := declaredCmd(t, filepath.Join(workDir, "limit"), "crashloop", `["/bin/sh", "-c", "exit 1"]`,
		"restart = \"always\"\nrestart_delay = \"100ms\"\nstart_limit = { burst = 3, interval = \"30s\" }\n")
	cove(t, "apply", p) // the first start may already fail
	eventually(t, 10*time.Second, "the start limit", func() bool {
		return show(t, "cove-crashloop.service", "ActiveState") == "failed"
	})
	// 3 starts are allowed; the refused 4th counts as a restart too.
	if n := show(t, "cove-crashloop.service", "NRestarts"); n != "3" {
		t.Errorf("NRestarts = %s, want 3", n)
	}
	if st := show(t, "cove-crashloop.service", "ActiveState"); st != "failed" {
		t.Errorf("ActiveState = %s", st)
	}
	if ps := mustCove(t, "ps"); !strings.Contains(ps, "start-limit-hit") {
		t.Errorf("cove ps does not say why:\n%s", ps)
	}
}
