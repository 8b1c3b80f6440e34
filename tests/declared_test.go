package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// declared writes a spec for a container that logs "started NAME" and
// sleeps into dir and returns its path; extra is appended to the spec.
func declared(t *testing.T, dir, name, extra string) string {
	t.Helper()
	return containerSpec(t, dir, name, rootfs, shCommand("echo started "+name+"; exec sleep 1000"), "[service]\nstop_timeout = \"1s\"\n"+extra)
}

// containerSpec writes a container spec as dir/NAME.toml and returns its
// path: version, kind, then [container] with rootfs and command (a TOML
// array) on lines 4 and 5, then extra.
func containerSpec(t *testing.T, dir, name, rootfs, command, extra string) string {
	t.Helper()
	return declaredText(t, dir, name, fmt.Sprintf("version = 1\nkind = \"container\"\n[container]\nrootfs = %q\ncommand = %s\n%s", rootfs, command, extra))
}

// shCommand is a spec command running script with /bin/sh -c.
func shCommand(script string) string { return fmt.Sprintf(`["/bin/sh", "-c", %q]`, script) }

// declaredText writes text as dir/NAME.toml and returns the path.
func declaredText(t *testing.T, dir, name, text string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pruneAll removes every declared workload when the test ends.
func pruneAll(t *testing.T) {
	t.Cleanup(func() {
		cove(t, "apply", "--prune", filepath.Join(workDir, "empty"))
	})
}

// TestApplyDiffPrune: apply starts new workloads, restarts changed ones
// only, leaves the rest alone; diff shows the plan with changed keys;
// --prune stops and deletes what is no longer declared.
func TestApplyDiffPrune(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "apply1")
	a := declared(t, dir, "alpha", "")
	b := declared(t, dir, "beta", "")
	out := mustCove(t, "apply", a, b)
	if !strings.Contains(out, "added alpha") || !strings.Contains(out, "added beta") {
		t.Errorf("apply output:\n%s", out)
	}
	for _, u := range []string{"cove-alpha.service", "cove-beta.service"} {
		if st := show(t, u, "ActiveState"); st != "active" {
			t.Errorf("%s is %s after apply", u, st)
		}
	}
	if got := strings.TrimSpace(inside(t, "cat", "/etc/cove/alpha.toml").Stdout); !strings.Contains(got, "started alpha") {
		t.Errorf("/etc/cove/alpha.toml not written: %q", got)
	}
	if d := mustCove(t, "diff", a, b); !strings.Contains(d, "unchanged alpha") || !strings.Contains(d, "unchanged beta") {
		t.Errorf("diff after apply:\n%s", d)
	}
	alphaPID, betaPID := show(t, "cove-alpha.service", "MainPID"), show(t, "cove-beta.service", "MainPID")
	declared(t, dir, "alpha", "[resources]\nmemory = \"96M\"\n")
	if d := mustCove(t, "diff", a, b); !strings.Contains(d, "changed   alpha (resources.memory)") {
		t.Errorf("diff does not show the changed key:\n%s", d)
	}
	if st := show(t, "cove-alpha.service", "MainPID"); st != alphaPID {
		t.Errorf("cove diff changed something: MainPID %s → %s", alphaPID, st)
	}
	// A resource change reaches the running workload without a restart.
	out = mustCove(t, "apply", a, b)
	if !strings.Contains(out, "changed alpha") || strings.Contains(out, "beta") {
		t.Errorf("apply of one change:\n%s", out)
	}
	if pid := show(t, "cove-alpha.service", "MainPID"); pid != alphaPID {
		t.Errorf("alpha was restarted for a memory change: MainPID %s → %s", alphaPID, pid)
	}
	if m := show(t, "cove-alpha.service", "MemoryMax"); m != "100663296" {
		t.Errorf("alpha MemoryMax = %s after apply", m)
	}
	if lim := cgroupMemoryLimit(t, "cove-alpha.service"); lim != "100663296" {
		t.Errorf("alpha's cgroup memory limit is %s after apply", lim)
	}
	// Any other change restarts it.
	declared(t, dir, "alpha", "restart = \"on-failure\"\n[resources]\nmemory = \"96M\"\n")
	out = mustCove(t, "apply", a, b)
	if !strings.Contains(out, "changed alpha") || strings.Contains(out, "beta") {
		t.Errorf("apply of one change:\n%s", out)
	}
	if pid := show(t, "cove-alpha.service", "MainPID"); pid == alphaPID {
		t.Errorf("changed alpha was not restarted")
	}
	if pid := show(t, "cove-beta.service", "MainPID"); pid != betaPID {
		t.Errorf("unchanged beta was restarted: %s → %s", betaPID, pid)
	}
	out = mustCove(t, "apply", "--prune", a)
	if !strings.Contains(out, "unchanged") && strings.Contains(out, "alpha") {
		t.Errorf("prune touched alpha:\n%s", out)
	}
	if st := show(t, "cove-beta.service", "ActiveState"); st == "active" {
		t.Errorf("pruned beta still active")
	}
	if r := inside(t, "test", "-e", "/etc/cove/beta.toml"); r.Code == 0 {
		t.Errorf("pruned beta's spec is still in /etc/cove")
	}
}

// TestApplyLive: a change of limits and description only is set on the
// loaded unit at once, as systemctl set-property does: no reload of
// systemd, no restart, the cgroup's limit changed. A later change that
// needs the reload drops those run-time settings, so that the unit files
// say everything again (its new memory limit wins); a prune drops them
// too.
func TestApplyLive(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "apply-live")
	limits := func(memory, top, service string) string {
		return declaredText(t, dir, "live1", fmt.Sprintf("version = 1\nkind = \"container\"\n%s[container]\nrootfs = %q\ncommand = [\"sleep\", \"1000\"]\n[service]\nstop_timeout = \"1s\"\n%s[resources]\nmemory = %q\ncpus = 0.5\n", top, rootfs, service, memory))
	}
	mustCove(t, "apply", limits("64M", "", ""))
	first, reloaded := show(t, "cove-live1.service", "InvocationID"), reloadProbe(t)
	if out := mustCove(t, "apply", limits("128M", "description = \"the live one\"\n", "")); strings.TrimSpace(out) != "changed live1" {
		t.Errorf("apply of a live change printed %q", out)
	}
	if id := show(t, "cove-live1.service", "InvocationID"); id != first {
		t.Errorf("a limit change restarted live1 (invocation %s → %s)", first, id)
	}
	if reloaded() {
		t.Error("a limit change reloaded systemd")
	}
	if m, lim := show(t, "cove-live1.service", "MemoryMax"), cgroupMemoryLimit(t, "cove-live1.service"); m != "134217728" || lim != "134217728" {
		t.Errorf("after the live change MemoryMax = %s, the cgroup's limit %s; want 134217728", m, lim)
	}
	if d := show(t, "cove-live1.service", "Description"); d != "cove container live1: the live one" {
		t.Errorf("after the live change Description = %q", d)
	}
	if r := inside(t, "systemctl", "daemon-reload"); r.Code != 0 {
		t.Fatalf("daemon-reload: %s", r.Stderr)
	}
	if m := show(t, "cove-live1.service", "MemoryMax"); m != "134217728" {
		t.Errorf("after a daemon-reload MemoryMax = %s; want 134217728 (the generator and the run-time setting agree)", m)
	}
	mustCove(t, "apply", limits("96M", "", "restart = \"on-failure\"\n"))
	if id := show(t, "cove-live1.service", "InvocationID"); id == first {
		t.Error("a change that needs a restart did not restart live1")
	}
	if !reloaded() {
		t.Error("the change that needs a restart did not reload systemd either: the probe sees no reload")
	}
	if m, lim := show(t, "cove-live1.service", "MemoryMax"), cgroupMemoryLimit(t, "cove-live1.service"); m != "100663296" || lim != "100663296" {
		t.Errorf("after a reload MemoryMax = %s, the cgroup's limit %s; want the unit file's 100663296 (not the earlier run-time 128M)", m, lim)
	}
	if r := inside(t, "test", "-e", "/run/systemd/system.control/cove-live1.service.d"); r.Code == 0 {
		t.Error("the run-time settings of the live change outlived the reload")
	}
	mustCove(t, "apply", limits("64M", "", "restart = \"on-failure\"\n"))
	if r := inside(t, "test", "-e", "/run/systemd/system.control/cove-live1.service.d"); r.Code != 0 {
		t.Fatal("a second live change left no run-time settings")
	}
	mustCove(t, "apply", "--prune", filepath.Join(workDir, "empty"))
	if r := inside(t, "test", "-e", "/run/systemd/system.control/cove-live1.service.d"); r.Code == 0 {
		t.Error("the run-time settings of a pruned workload stay for the next unit of its name")
	}
}

// TestApplyRestartNoReload: a change of a container's command and
// environment is written to its launcher's configuration file and the
// container restarted, with no reload of systemd: the new run sees the
// new values, the unit's ExecStart= names the file (as cove render
// --launch-config prints it), and a later daemon-reload (the generator)
// writes the same file. A change of a unit setting (the stop timeout)
// still reloads.
func TestApplyRestartNoReload(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "apply-restart")
	text := func(value, timeout string) string {
		return declaredText(t, dir, "relaunch", fmt.Sprintf("version = 1\nkind = \"container\"\n[container]\nrootfs = %q\ncommand = [\"sh\", \"-c\", \"echo run A=$A; exec sleep 1000\"]\nenv = { A = %q }\n[service]\nstop_timeout = %q\n", rootfs, value, timeout))
	}
	const unit, config = "cove-relaunch.service", "/run/cove/launch/relaunch.json"
	mustCove(t, "apply", text("one", "1s"))
	first, reloaded := show(t, unit, "InvocationID"), reloadProbe(t)
	if out := mustCove(t, "apply", text("two $HOME %n", "1s")); strings.TrimSpace(out) != "changed relaunch" {
		t.Errorf("apply of a new environment printed %q", out)
	}
	if reloaded() {
		t.Error("a change of the environment reloaded systemd")
	}
	if id := show(t, unit, "InvocationID"); id == first || show(t, unit, "ActiveState") != "active" {
		t.Errorf("relaunch was not restarted (invocation %s → %s) or is not active", first, id)
	}
	waitLog(t, "relaunch", "run A=two $HOME %n", 10*time.Second)
	if got := show(t, unit, "ExecStart"); !strings.Contains(got, "--config-file "+config) {
		t.Errorf("ExecStart does not name the launcher's configuration file %s: %s", config, got)
	}
	file := inside(t, "cat", config).Stdout
	if rendered := mustCove(t, "render", "--launch-config", "/etc/cove/relaunch.toml"); file != rendered || !strings.Contains(file, `"A=two $HOME %n"`) {
		t.Errorf("%s:\n%s\ncove render --launch-config:\n%s", config, file, rendered)
	}
	if r := inside(t, "sh", "-c", "rm "+config+" && systemctl daemon-reload"); r.Code != 0 {
		t.Fatalf("remove %s, daemon-reload: %s", config, r.Stderr)
	}
	if again := inside(t, "cat", config).Stdout; again != file {
		t.Errorf("the generator wrote another configuration:\n%s\nwant\n%s", again, file)
	}
	reloaded = reloadProbe(t)
	mustCove(t, "apply", text("two $HOME %n", "2s"))
	if !reloaded() {
		t.Error("a change of the stop timeout did not reload systemd")
	}
	if got := show(t, unit, "TimeoutStopUSec"); got != "7s" {
		t.Errorf("TimeoutStopUSec = %s after the reload, want 7s (2s and the stop stage's margin)", got)
	}
	mustCove(t, "apply", "--prune", filepath.Join(workDir, "empty"))
	if r := inside(t, "test", "-e", config); r.Code == 0 {
		t.Errorf("%s outlived its pruned workload", config)
	}
}

// TestApplyInlineUnitReloads: a container whose loaded unit carries its
// launcher's arguments in ExecStart= itself (as cove before the
// launcher's file made them; here through a drop-in, which outlives the
// reload) gets a new command through a reload and a restart, not a file
// its unit does not read.
func TestApplyInlineUnitReloads(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "apply-inline")
	text := func(word string) string {
		return declaredText(t, dir, "inline", fmt.Sprintf("version = 1\nkind = \"container\"\n[container]\nrootfs = %q\ncommand = [\"sh\", \"-c\", \"echo %s; exec sleep 1000\"]\n[service]\nstop_timeout = \"1s\"\n", rootfs, word))
	}
	const dropin = "/run/systemd/system/cove-inline.service.d/inline.conf"
	mustCove(t, "apply", text("first"))
	var args []string
	if err := json.Unmarshal([]byte(mustCove(t, "render", "--launch-config", "/etc/cove/inline.toml")), &args); err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(filepath.Dir(coveBin), "cove-launch")
	exec := "ExecStart=\nExecStart=" + stage + " launch"
	for _, a := range args {
		exec += " " + strconv.Quote(a)
	}
	t.Cleanup(func() { inside(t, "sh", "-c", "rm -r "+filepath.Dir(dropin)+" && systemctl daemon-reload") })
	if r := insideStdin(t, "[Service]\n"+exec+"\n", "sh", "-c", "mkdir -p "+filepath.Dir(dropin)+" && cat > "+dropin+" && systemctl daemon-reload && systemctl restart cove-inline.service"); r.Code != 0 {
		t.Fatalf("an inline ExecStart=: %s", r.Stderr)
	}
	first, reloaded := show(t, "cove-inline.service", "InvocationID"), reloadProbe(t)
	mustCove(t, "apply", text("second"))
	if !reloaded() {
		t.Error("a new command of a unit with inline launcher arguments did not reload systemd")
	}
	if show(t, "cove-inline.service", "InvocationID") == first {
		t.Error("a new command did not restart the unit")
	}
}

// reloadProbe starts a unit and then changes its file, so that systemd
// says it needs a daemon-reload (NeedDaemonReload) until it reloads;
// reloaded reports whether it has since.
func reloadProbe(t *testing.T) (reloaded func() bool) {
	t.Helper()
	const unit, file = "reload-probe.service", "/run/systemd/system/reload-probe.service"
	write := func(text string) {
		if r := insideStdin(t, text, "sh", "-c", "cat > "+file); r.Code != 0 {
			t.Fatalf("write %s: %s", file, r.Stderr)
		}
	}
	write("[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
	t.Cleanup(func() { inside(t, "systemctl", "stop", unit); inside(t, "rm", "-f", file) })
	if r := inside(t, "systemctl", "start", unit); r.Code != 0 { // active: loaded until stopped
		t.Fatalf("start %s: %s", unit, r.Stderr)
	}
	time.Sleep(10 * time.Millisecond)
	write("[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true probe\n")
	if show(t, unit, "NeedDaemonReload") != "yes" {
		t.Fatal("the probe's changed file does not make systemd want a reload")
	}
	return func() bool { return show(t, unit, "NeedDaemonReload") == "no" }
}

// cgroupMemoryLimit reads the memory limit the kernel enforces on unit's
// cgroup (v2 memory.max or v1 memory.limit_in_bytes).
func cgroupMemoryLimit(t *testing.T, unit string) string {
	t.Helper()
	cg := show(t, unit, "ControlGroup")
	r := inside(t, "sh", "-c", "cat /sys/fs/cgroup"+cg+"/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory"+cg+"/memory.limit_in_bytes")
	return strings.TrimSpace(r.Stdout)
}

// TestApplyBadFileChangesNothing: one bad spec among good ones: exit 2,
// every error listed, nothing written or started.
func TestApplyBadFileChangesNothing(t *testing.T) {
	env.Need(t)
	dir := filepath.Join(workDir, "apply-bad")
	good := declared(t, dir, "gamma", "")
	bad := declared(t, dir, "delta", "[resources]\nmemory = \"lots\"\n")
	bad2 := declared(t, dir, "epsilon", "colour = \"red\"\n")
	before := listUnits(t)
	r := cove(t, "apply", good, bad, bad2)
	if r.Code != 2 {
		t.Errorf("exit %d, want 2", r.Code)
	}
	for _, want := range []string{bad + ":9:1: resources.memory", bad2 + ":8:1: service.colour"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	if r := inside(t, "test", "-e", "/etc/cove/gamma.toml"); r.Code == 0 {
		t.Errorf("a good spec was written although another was bad")
	}
	if after := listUnits(t); after != before {
		t.Errorf("units changed:\n%s\n%s", before, after)
	}
}

// TestConcurrentApply: applies at once serialise on the lock; every spec
// ends up whole and every workload runs.
func TestConcurrentApply(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "apply-conc")
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		path := declared(t, dir, fmt.Sprintf("conc%d", i), "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = cove(t, "apply", path)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("apply %d: exit %d: %s", i, r.Code, r.Stderr)
		}
		name := fmt.Sprintf("conc%d", i)
		if st := show(t, "cove-"+name+".service", "ActiveState"); st != "active" {
			t.Errorf("%s is %s", name, st)
		}
		if r := cove(t, "validate", "/etc/cove/"+name+".toml"); r.Code != 0 {
			t.Errorf("/etc/cove/%s.toml damaged: %s", name, r.Stderr)
		}
	}
}

// TestSystemctlIsAClient: the generated unit works with systemctl and
// journalctl alone, a user's unit can require it, and it is byte-identical
// to cove render.
func TestSystemctlIsAClient(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "sysctl")
	mustCove(t, "apply", declared(t, dir, "db", ""))
	gen := inside(t, "cat", "/run/systemd/generator/cove-db.service").Stdout
	if rendered := mustCove(t, "render", "/etc/cove/db.toml"); gen != rendered {
		t.Errorf("generated unit differs from cove render:\n%s\n---\n%s", gen, rendered)
	}
	inside(t, "systemctl", "stop", "cove-db.service")
	if st := show(t, "cove-db.service", "ActiveState"); st != "inactive" && st != "failed" {
		t.Errorf("after systemctl stop: %s", st)
	}
	consumer := "[Unit]\nRequires=cove-db.service\nAfter=cove-db.service\n[Service]\nExecStart=/bin/sleep 1000\n"
	if r := insideStdin(t, consumer, "sh", "-c", "cat > /etc/systemd/system/consumer.service && systemctl daemon-reload"); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	t.Cleanup(func() {
		inside(t, "sh", "-c", "systemctl stop consumer; rm /etc/systemd/system/consumer.service; systemctl daemon-reload")
	})
	if r := inside(t, "systemctl", "start", "consumer.service"); r.Code != 0 {
		t.Fatalf("start consumer: %s", r.Stderr)
	}
	if st := show(t, "cove-db.service", "ActiveState"); st != "active" {
		t.Errorf("Requires=cove-db.service did not start it: %s", st)
	}
	if r := inside(t, "systemctl", "restart", "cove-db.service"); r.Code != 0 {
		t.Errorf("systemctl restart: %s", r.Stderr)
	}
	if r := inside(t, "journalctl", "-u", "cove-db.service", "--no-pager"); !strings.Contains(r.Stdout, "started db") {
		t.Errorf("journalctl -u shows nothing of the unit:\n%s", r.Stdout)
	}
	mustCove(t, "stop", "db")
	mustCove(t, "start", "db")
	mustCove(t, "restart", "db")
	if st := show(t, "cove-db.service", "ActiveState"); st != "active" {
		t.Errorf("after cove start/restart: %s", st)
	}
}

// TestGeneratorSkipsBadSpec: a bad spec in /etc/cove does not stop the
// others from being generated.
func TestGeneratorSkipsBadSpec(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	dir := filepath.Join(workDir, "gen-bad")
	mustCove(t, "apply", declared(t, dir, "fine", ""))
	bad := "version = 1\nkind = \"container\"\nbogus = 1\n"
	if r := insideStdin(t, bad, "sh", "-c", "cat > /etc/cove/broken.toml && systemctl daemon-reload"); r.Code != 0 {
		t.Fatal(r.Stderr)
	}
	t.Cleanup(func() { inside(t, "sh", "-c", "rm -f /etc/cove/broken.toml; systemctl daemon-reload") })
	if r := inside(t, "test", "-e", "/run/systemd/generator/cove-fine.service"); r.Code != 0 {
		t.Errorf("good spec not generated next to a bad one")
	}
	if r := inside(t, "test", "-e", "/run/systemd/generator/cove-broken.service"); r.Code == 0 {
		t.Errorf("bad spec generated a unit")
	}
	if st := show(t, "cove-fine.service", "ActiveState"); st != "active" {
		t.Errorf("fine is %s", st)
	}
}

// waitActive waits until unit is active.
func waitActive(t *testing.T, unit string) {
	t.Helper()
	eventually(t, 20*time.Second, unit+" to be active", func() bool { return show(t, unit, "ActiveState") == "active" })
}

// TestEnableDisable: cove enable/disable edit the spec's [install] and
// apply: the generator's .wants link appears and goes, and the running
// workload is not restarted.
func TestEnableDisable(t *testing.T) {
	env.Need(t)
	pruneAll(t)
	mustCove(t, "apply", declared(t, filepath.Join(workDir, "enable"), "toggle", "# keep this comment\n"))
	pid := show(t, "cove-toggle.service", "MainPID")
	link := "/run/systemd/generator/multi-user.target.wants/cove-toggle.service"
	mustCove(t, "enable", "toggle")
	if r := inside(t, "test", "-L", link); r.Code != 0 {
		t.Errorf("cove enable: no %s", link)
	}
	spec := inside(t, "cat", "/etc/cove/toggle.toml").Stdout
	if !strings.Contains(spec, "# keep this comment") || !strings.Contains(spec, `wanted_by = ["multi-user.target"]`) {
		t.Errorf("enabled spec:\n%s", spec)
	}
	mustCove(t, "disable", "toggle")
	if r := inside(t, "test", "-e", link); r.Code == 0 {
		t.Errorf("cove disable left %s", link)
	}
	if now := show(t, "cove-toggle.service", "MainPID"); now != pid {
		t.Errorf("enable/disable restarted the workload: %s → %s", pid, now)
	}
}
