package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// replicaPIDs returns the main PIDs of instances 1 … n of workload name,
// failing the test unless each instance is active.
func replicaPIDs(t *testing.T, name string, n int) []string {
	t.Helper()
	pids := make([]string, n)
	for i := range pids {
		unit := fmt.Sprintf("cove-%s@%d.service", name, i+1)
		eventually(t, 10*time.Second, unit+" to run", func() bool { return show(t, unit, "ActiveState") == "active" })
		pids[i] = show(t, unit, "MainPID")
	}
	return pids
}

// sharerRefused: apply of a spec sharing the network namespace of
// replicated rep (declared in dir) without naming an instance exits 2 at
// its key and makes no unit.
func sharerRefused(t *testing.T, dir string) {
	t.Helper()
	sharer := containerSpec(t, filepath.Join(workDir, "replicas-sharer"), "repside", rootfs, shCommand("exec sleep 1000"), "network = \"container:rep\"\n")
	if r := cove(t, "apply", dir, sharer); r.Code != 2 || !strings.Contains(r.Stderr, sharer+":") ||
		!strings.Contains(r.Stderr, "container.network: rep is replicated (service.replicas = 3): name one instance, container:rep@1") {
		t.Errorf("apply of a spec sharing the network of replicated rep without an instance: exit %d, %s; want exit 2 at its key", r.Code, r.Stderr)
	}
	if st := show(t, "cove-repside.service", "LoadState"); st != "not-found" {
		t.Errorf("the refused sharer has a unit (%s)", st)
	}
}

// gone fails the test if instance unit of a replicated workload is
// still active.
func gone(t *testing.T, unit string) {
	t.Helper()
	if st := show(t, unit, "ActiveState"); st == "active" || st == "activating" || st == "deactivating" {
		t.Errorf("%s is %s, want it stopped", unit, st)
	}
}

// nameRefused: the replicated workload rep's name is taken though no
// unit has it (the instances are rep@N): a cove run of it would clash
// with cove-rep.service once the spec leaves replicas.
func nameRefused(t *testing.T) {
	if r := cove(t, runArgs("--rm", "--name", "rep", "--", "/bin/true")...); r.Code == 0 || !strings.Contains(r.Stderr, "the name is taken: /etc/cove/rep.toml declares it") {
		t.Errorf("cove run --name rep of a replicated workload's name: exit %d: %s", r.Code, r.Stderr)
	}
}

// TestReplicas: service.replicas runs N instances of one spec as a
// systemd template, each its own container (its own PID 1, hostname
// NAME-I); cove scale starts or removes only the difference, leaving the
// running instances be; NAME alone stops and starts them all and shows
// all their logs; a change
// that needs a restart restarts each (a new command with no reload of
// systemd); the generator enables each instance; prune removes them. A
// spec sharing rep's network namespace must name an instance (exit 2).
func TestReplicas(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "replicas")
	path := containerSpec(t, dir, "rep", rootfs, shCommand("echo started $(hostname); exec sleep 1000"),
		"read_only = true\n[service]\nreplicas = 3\nstop_timeout = \"1s\"\n[install]\nwanted_by = [\"multi-user.target\"]\n")
	out := mustCove(t, "apply", path)
	for _, want := range []string{"started rep@1", "started rep@2", "started rep@3", "added rep"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	pids := replicaPIDs(t, "rep", 3)
	if pids[0] == pids[1] || pids[1] == pids[2] || pids[0] == "0" {
		t.Errorf("instances' main PIDs %v: want three processes", pids)
	}
	if h := strings.TrimSpace(mustCove(t, "exec", "rep@2", "--", "hostname")); h != "rep-2" {
		t.Errorf("rep@2's hostname is %q, want rep-2", h)
	}
	eventually(t, 10*time.Second, "cove logs rep to show every instance's output", func() bool {
		logs := cove(t, "logs", "rep").Stdout
		return strings.Contains(logs, "started rep-1") && strings.Contains(logs, "started rep-3")
	})
	if logs := mustCove(t, "logs", "rep@2"); !strings.Contains(logs, "started rep-2") || strings.Contains(logs, "started rep-1") {
		t.Errorf("cove logs rep@2, want only rep@2's output:\n%s", logs)
	}
	if r := cove(t, "status", "rep"); r.Code != 1 || !strings.Contains(r.Stderr, "rep@1, rep@2, rep@3") {
		t.Errorf("cove status rep: exit %d, %q; want exit 1 naming the instances", r.Code, r.Stderr)
	}
	if ps := mustCove(t, "ps"); !strings.Contains(ps, "rep@1") || !strings.Contains(ps, "rep@3") {
		t.Errorf("cove ps does not list the instances:\n%s", ps)
	}
	sharerRefused(t, dir)
	nameRefused(t)
	if r := inside(t, "test", "-e", "/run/systemd/generator/cove-rep.service"); r.Code == 0 {
		t.Errorf("the generator wrote a plain unit for a replicated workload")
	}
	for _, i := range []string{"1", "3"} {
		if r := inside(t, "test", "-L", "/run/systemd/generator/multi-user.target.wants/cove-rep@"+i+".service"); r.Code != 0 {
			t.Errorf("multi-user.target does not want instance %s", i)
		}
	}

	out = mustCove(t, "scale", "rep=5")
	if !strings.Contains(out, "started rep@4") || !strings.Contains(out, "started rep@5") || strings.Contains(out, "started rep@1") {
		t.Errorf("cove scale rep=5:\n%s", out)
	}
	if up := replicaPIDs(t, "rep", 5); strings.Join(up[:3], " ") != strings.Join(pids, " ") {
		t.Errorf("scaling up restarted running instances: PIDs %v, were %v", up[:3], pids)
	}
	if spec := inside(t, "cat", "/etc/cove/rep.toml").Stdout; !strings.Contains(spec, "replicas = 5\n") {
		t.Errorf("cove scale did not write replicas = 5 into the spec:\n%s", spec)
	}

	out = mustCove(t, "scale", "rep=2")
	if !strings.Contains(out, "removed rep@3") || !strings.Contains(out, "removed rep@5") {
		t.Errorf("cove scale rep=2:\n%s", out)
	}
	for _, i := range []string{"3", "4", "5"} {
		gone(t, "cove-rep@"+i+".service")
	}
	if down := replicaPIDs(t, "rep", 2); strings.Join(down, " ") != strings.Join(pids[:2], " ") {
		t.Errorf("scaling down restarted the instances kept: PIDs %v, were %v", down, pids[:2])
	}

	mustCove(t, "stop", "rep")
	gone(t, "cove-rep@1.service")
	gone(t, "cove-rep@2.service")
	mustCove(t, "start", "rep")
	restarted := replicaPIDs(t, "rep", 2)
	gone(t, "cove-rep@3.service")

	changed := strings.Replace(inside(t, "cat", "/etc/cove/rep.toml").Stdout, "stop_timeout", "restart = \"always\"\nstop_timeout", 1)
	out = mustCove(t, "apply", declaredText(t, dir, "rep", changed))
	after := replicaPIDs(t, "rep", 2)
	if !strings.Contains(out, "changed rep") || after[0] == restarted[0] || after[1] == restarted[1] {
		t.Errorf("a change needing a restart: PIDs %v, were %v; apply said:\n%s", after, restarted, out)
	}
	newCommand(t, dir, changed, after)
}

// newCommand applies rep's spec text with another command: both running
// instances (main PIDs pids) restart on it, with no reload of systemd,
// and the stopped third stays stopped.
func newCommand(t *testing.T, dir, text string, pids []string) {
	t.Helper()
	reloaded := reloadProbe(t)
	text = strings.Replace(text, "exec sleep 1000", "echo second; exec sleep 1000", 1)
	out := mustCove(t, "apply", declaredText(t, dir, "rep", text))
	if again := replicaPIDs(t, "rep", 2); !strings.Contains(out, "changed rep") || again[0] == pids[0] || again[1] == pids[1] {
		t.Errorf("a new command: PIDs %v, were %v; apply said:\n%s", again, pids, out)
	}
	if reloaded() {
		t.Error("a new command of a replicated workload reloaded systemd")
	}
	waitLog(t, "rep@2", "second", 10*time.Second)
	gone(t, "cove-rep@3.service")
}
