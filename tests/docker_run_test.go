package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/tests/harness"
	"github.com/cove-project/cove/tests/registry"
)

// TestDockerRun: the real docker CLI runs containers of an image from a
// real registry through the API: in the foreground its output comes
// through attach (stdout and stderr apart) and the CLI exits with the
// payload's status; --rm leaves nothing; detached, the container is a
// running workload that docker ps, inspect and rm -f see; a missing image
// is pulled by the CLI after create's 404; what cove cannot do is refused
// with the reason.
func TestDockerRun(t *testing.T) {
	needAPI(t)
	docker, ref, reg := dockerWithRegistry(t)
	t.Cleanup(func() {
		docker("rm", "-f", "web", "kept", "made", "draft", "draft2", "ex", "att", "hc")
		cove(t, "rmi", "--force", ref)
		cove(t, "image", "prune")
	})
	t.Run("foreground", func(t *testing.T) { dockerRunForeground(t, docker, ref) })
	t.Run("stdin and long runs", func(t *testing.T) { dockerRunInput(t, harness.DockerCLI(t, sb), ref) })
	t.Run("create, start, logs, wait", func(t *testing.T) { dockerCreateStart(t, docker, ref) })
	t.Run("detached", func(t *testing.T) { dockerRunDetached(t, docker, ref) })
	t.Run("health check", func(t *testing.T) { dockerHealth(t, docker, ref) })
	t.Run("image health check", func(t *testing.T) { dockerImageHealth(t, docker, reg) })
	t.Run("update", func(t *testing.T) { dockerUpdateLimits(t, docker, ref) })
	t.Run("ps filters", func(t *testing.T) { dockerPSFilters(t, docker, ref) })
	t.Run("history", func(t *testing.T) { dockerHistory(t, docker, ref) })
	t.Run("exec", func(t *testing.T) { dockerExec(t, docker, harness.DockerCLI(t, sb), ref) })
	t.Run("cp", func(t *testing.T) { dockerCopy(t, docker, ref) })
	t.Run("cp of a stopped container", func(t *testing.T) { dockerCopyStopped(t, docker, ref) })
	t.Run("cp with python-docker", func(t *testing.T) { dockerCopyPython(t, docker, ref) })
	t.Run("commit", func(t *testing.T) { dockerCommit(t, docker, ref, reg) })
	t.Run("attach", func(t *testing.T) { dockerAttachRunning(t, docker, ref) })
	t.Run("pull on create", func(t *testing.T) { dockerRunPulls(t, docker, ref) })
}

// dockerRunForeground: docker run --rm prints the payload's output and
// exits with its status, leaving no unit, record or writable layer; a
// container run without --rm stays as exited until docker rm.
func dockerRunForeground(t *testing.T, docker func(...string) result, ref string) {
	if r := docker("run", "--rm", ref, "/bin/sh", "-c", "echo hi; id -u"); r.Code != 0 || r.Stdout != "hi\n1000\n" {
		t.Errorf("docker run --rm: exit %d, stdout %q, stderr %q; want hi and uid 1000", r.Code, r.Stdout, r.Stderr)
	}
	r := docker("run", "--rm", "-e", "A=b", "-u", "0", ref, "/bin/sh", "-c", "echo out $A; id -u; echo err >&2; exit 3")
	if r.Code != 3 || r.Stdout != "out b\n0\n" || !strings.Contains(r.Stderr, "err\n") {
		t.Errorf("docker run --rm exiting 3: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	eventually(t, 10*time.Second, "nothing left of the --rm runs", func() bool {
		units := inside(t, "systemctl", "list-units", "--all", "--plain", "--no-legend", "cove-run-*").Stdout
		states, _ := os.ReadDir(filepath.Join(workDir, "containers"))
		return units == "" && len(states) == 0 && inside(t, "sh", "-c", "ls /run/cove/created | wc -l").Stdout == "0\n"
	})
	// Without --rm the unit stays loaded as exited, holding the attach
	// pipes (so the stream ends on the run's end, not on EOF); a start
	// runs it again on its writable layer.
	again := "echo kept; test -e /www/again && exit 4; touch /www/again"
	if r := docker("run", "--name", "kept", ref, "/bin/sh", "-c", again); r.Code != 0 || r.Stdout != "kept\n" {
		t.Errorf("docker run without --rm: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("ps", "-a", "--filter", "name=kept"); !regexp.MustCompile(`Exited \(0\).*kept`).MatchString(r.Stdout) {
		t.Errorf("docker ps -a after the run:\n%s%s", r.Stdout, r.Stderr)
	}
	if r := docker("start", "-a", "kept"); r.Code != 4 || r.Stdout != "kept\n" {
		t.Errorf("docker start -a kept: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("ps", "-a", "--filter", "name=kept"); !regexp.MustCompile(`Exited \(4\).*kept`).MatchString(r.Stdout) {
		t.Errorf("docker ps -a after the second run:\n%s%s", r.Stdout, r.Stderr)
	}
	if r := docker("rm", "kept"); r.Code != 0 || show(t, "cove-kept.service", "LoadState") != "not-found" {
		t.Errorf("docker rm kept: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("run", "--rm", ref, "/nope"); r.Code != 127 || !strings.Contains(r.Stderr, "/nope") {
		t.Errorf("docker run of a missing command: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("ps", "-a", "-q"); r.Stdout != "" {
		t.Errorf("docker ps -a after a failed --rm run:\n%s%s", r.Stdout, r.Stderr)
	}
	if r := docker("run", "--rm", "-u", "nobody", ref, "true"); r.Code != 125 || !strings.Contains(r.Stderr, "numeric UID") {
		t.Errorf("docker run -u nobody: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("run", "--rm", "--network", "nosuch", ref, "true"); r.Code != 125 || !strings.Contains(r.Stderr, `unknown network "nosuch"`) {
		t.Errorf("docker run --network nosuch: exit %d: %s", r.Code, r.Stderr)
	}
}

// dockerRunInput: docker run -i passes stdin to the payload; a run that
// outlasts the helper's idle period streams to its end.
func dockerRunInput(t *testing.T, dockerBin, ref string) {
	if r := insideStdin(t, "one\ntwo\n", dockerBin, "-H", apiHost, "run", "--rm", "-i", ref, "wc", "-l"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "2" {
		t.Errorf("docker run -i wc -l: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r := inside(t, dockerBin, "-H", apiHost, "run", "--rm", ref, "/bin/sh", "-c", "echo early; sleep "+strconv.Itoa(int(2*apiIdle/time.Second))+"; echo late")
	if r.Code != 0 || r.Stdout != "early\nlate\n" {
		t.Errorf("docker run of a run longer than the idle period: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// dockerExec: docker exec runs a command in a running container as cove
// exec does (its root and PID namespace, the image's user, or -u, -w and
// -e), with stdout and stderr apart, stdin with -i, the command's exit
// status (127 for a missing command; back when the command ends, though
// it left a process holding its output), on a terminal of the container
// with -t (24x80 until the client resizes it), and detached with -d; a
// container that does not run is refused.
func dockerExec(t *testing.T, docker func(...string) result, dockerBin, ref string) {
	if r := docker("run", "-d", "--name", "ex", ref, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("docker run -d: exit %d: %s", r.Code, r.Stderr)
	}
	for _, c := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"ex", "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '; hostname"}, 0, "1000\nsleep 1000 ex\n", ""},
		{[]string{"ex", "sh", "-c", "echo out; echo err >&2; exit 3"}, 3, "out\n", "err\n"},
		{[]string{"-u", "0", "-w", "/tmp", "-e", "A=b", "ex", "sh", "-c", "id -u; pwd; echo $A"}, 0, "0\n/tmp\nb\n", ""},
		{[]string{"ex", "/nope"}, 127, "", "/nope"},
		{[]string{"-t", "-e", "TERM=vt100", "ex", "sh", "-c", "stty size; echo $TERM; exit 5"}, 5, "24 80\r\nvt100\r\n", ""},
		{[]string{"nosuch", "true"}, 1, "", "No such container: nosuch"},
	} {
		if r := docker(append([]string{"exec"}, c.args...)...); r.Code != c.code || r.Stdout != c.stdout || !strings.Contains(r.Stderr, c.errs) {
			t.Errorf("docker exec %q: exit %d, stdout %q, stderr %q; want %d, %q, %q", c.args, r.Code, r.Stdout, r.Stderr, c.code, c.stdout, c.errs)
		}
	}
	if r := docker("exec", "ex", "sh", "-c", "sleep 30 & echo background"); r.Code != 0 || r.Stdout != "background\n" {
		t.Errorf("docker exec of a command leaving a process behind: exit %d, stdout %q", r.Code, r.Stdout)
	}
	if r := docker("exec", "ex", "sh", "-c", "ps | grep -c '[s]leep 30'"); r.Stdout != "1\n" {
		t.Errorf("the background sleep 30 no longer runs when docker exec is back (%q): exec waited for it", r.Stdout)
	}
	if r := insideStdin(t, "one\ntwo\n", dockerBin, "-H", apiHost, "exec", "-i", "ex", "wc", "-l"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "2" {
		t.Errorf("docker exec -i wc -l: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("exec", "-t", "ex", "tty"); r.Code != 0 || !regexp.MustCompile(`^/dev/pts/[0-9]+\r\n$`).MatchString(r.Stdout) {
		t.Errorf("docker exec -t tty: exit %d, stdout %q, stderr %q; want a terminal of the container", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/d"); r.Code != 0 {
		t.Errorf("docker exec -d: exit %d: %s", r.Code, r.Stderr)
	}
	eventually(t, 5*time.Second, "the detached exec's file", func() bool { return docker("exec", "ex", "cat", "/tmp/d").Stdout == "detached\n" })
	docker("stop", "-t", "1", "ex")
	if r := docker("exec", "ex", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "is not running") {
		t.Errorf("docker exec in a stopped container: exit %d: %s", r.Code, r.Stderr)
	}
	docker("rm", "-f", "ex")
}

// dockerAttachRunning: docker attach to a running container streams what
// it writes from then on until it exits, and exits with its status.
func dockerAttachRunning(t *testing.T, docker func(...string) result, ref string) {
	if r := docker("run", "-d", "--name", "att", ref, "/bin/sh", "-c", "echo before; sleep 3; echo one; sleep 1; echo two >&2; exit 3"); r.Code != 0 {
		t.Fatalf("docker run -d: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("attach", "att"); r.Code != 3 || r.Stdout != "one\ntwo\n" {
		t.Errorf("docker attach att: exit %d, stdout %q, stderr %q; want one and two, from after the attach, and 3", r.Code, r.Stdout, r.Stderr)
	}
	docker("rm", "-f", "att")
}

// dockerCreateStart: docker create makes a container in state created
// that no systemd unit has yet; docker rename gives it another name (its
// old ID still finds it, as docker compose needs; docker events has the
// rename with the old name); docker start runs it
// detached, its output to the journal (docker logs); docker wait gives
// its status; a container that has run, and a name in use, are refused
// a rename.
func dockerCreateStart(t *testing.T, docker func(...string) result, ref string) {
	r := docker("create", "--name", "draft", ref, "/bin/sh", "-c", "echo from the journal; exit 5")
	if r.Code != 0 {
		t.Fatalf("docker create: exit %d: %s", r.Code, r.Stderr)
	}
	oldID := strings.TrimSpace(r.Stdout)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	if r := docker("rename", "draft", "made"); r.Code != 0 {
		t.Fatalf("docker rename draft made: exit %d: %s", r.Code, r.Stderr)
	}
	ev := docker("events", "--since", since, "--until", time.Now().Add(time.Second).Format(time.RFC3339Nano), "--filter", "event=rename",
		"--format", "{{.Action}} {{.Actor.Attributes.oldName}} {{.Actor.Attributes.name}}")
	if ev.Code != 0 || strings.TrimSpace(ev.Stdout) != "rename /draft made" {
		t.Errorf("docker events of the rename: exit %d: %q %s", ev.Code, ev.Stdout, ev.Stderr)
	}
	if r := docker("inspect", "--format", "{{.Name}}", oldID); strings.TrimSpace(r.Stdout) != "/made" {
		t.Errorf("docker inspect of the ID from before the rename: %q %s", r.Stdout, r.Stderr)
	}
	if r := docker("ps", "-a", "--filter", "status=created"); !regexp.MustCompile(`Created\s+made`).MatchString(r.Stdout) ||
		show(t, "cove-made.service", "LoadState") != "not-found" {
		t.Errorf("docker ps -a after create:\n%s%s", r.Stdout, r.Stderr)
	}
	if r := docker("inspect", "--format", "{{.State.Status}} {{.Config.Image}}", "made"); strings.TrimSpace(r.Stdout) != "created "+ref {
		t.Errorf("docker inspect of a created container: %q %s", r.Stdout, r.Stderr)
	}
	// cove run may not take a created container's name: it would drop
	// the writable layer docker start runs on.
	if r := cove(t, "run", "--rm", "--name", "made", "--network", "none", ref, "/bin/true"); r.Code == 0 || !strings.Contains(r.Stderr, "the name is taken: a container created through Docker's API") {
		t.Errorf("cove run of a created container's name: exit %d: %s", r.Code, r.Stderr)
	}
	// Nor a run from a root directory: docker rm would drop what it keeps
	// (its user namespace's IDs, its addresses) while it runs.
	if r := cove(t, runArgs("--rm", "--name", "made", "--", "/bin/true")...); r.Code == 0 || !strings.Contains(r.Stderr, "the name is taken: a container created through Docker's API") {
		t.Errorf("cove run --rootfs of a created container's name: exit %d: %s", r.Code, r.Stderr)
	}
	// A spec in /etc/cove takes its name before any unit has it (no
	// reload yet): Docker's create and cove run refuse it.
	if r := insideStdin(t, "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\n", "sh", "-c", "cat > /etc/cove/decl.toml"); r.Code != 0 {
		t.Fatalf("write /etc/cove/decl.toml: %s", r.Stderr)
	}
	t.Cleanup(func() { inside(t, "rm", "-f", "/etc/cove/decl.toml") })
	if r := docker("create", "--name", "decl", ref); r.Code == 0 || !strings.Contains(r.Stderr, `The container name "/decl" is already in use`) {
		t.Errorf("docker create of a declared workload's name: exit %d: %s", r.Code, r.Stderr)
		docker("rm", "decl")
	}
	if r := cove(t, "run", "--rm", "--name", "decl", "--network", "none", ref, "/bin/true"); r.Code == 0 || !strings.Contains(r.Stderr, "the name is taken: /etc/cove/decl.toml declares it") {
		t.Errorf("cove run of a declared workload's name: exit %d: %s", r.Code, r.Stderr)
	}
	inside(t, "rm", "-f", "/etc/cove/decl.toml") // not declared for the applies that follow
	// Nor may cove apply add a workload of that name.
	made := declaredText(t, filepath.Join(workDir, "madespecs"), "made", "version = 1\nkind = \"container\"\n[container]\nimage = \""+ref+"\"\n")
	if r := cove(t, "apply", made); r.Code == 0 || !strings.Contains(r.Stderr, "the name is taken: a container created through Docker's API") {
		t.Errorf("cove apply of a created container's name: exit %d: %s", r.Code, r.Stderr)
		cove(t, "apply", "--prune", filepath.Join(workDir, "empty"))
	}
	if r := docker("start", "made"); r.Code != 0 {
		t.Errorf("docker start made: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("wait", "made"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "5" {
		t.Errorf("docker wait made: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("logs", "made"); r.Stdout != "from the journal\n" {
		t.Errorf("docker logs made: %q %s", r.Stdout, r.Stderr)
	}
	dockerRenameRefusals(t, docker, ref)
	if r := docker("rm", "made"); r.Code != 0 {
		t.Errorf("docker rm made: exit %d: %s", r.Code, r.Stderr)
	}
}

// dockerRenameRefusals: with container made having run, docker rename
// refuses to rename it and to give its name to another.
func dockerRenameRefusals(t *testing.T, docker func(...string) result, ref string) {
	t.Helper()
	if r := docker("rename", "made", "again"); r.Code == 0 || !strings.Contains(r.Stderr, "made has run") {
		t.Errorf("docker rename of a container that has run: exit %d: %s", r.Code, r.Stderr)
	}
	docker("create", "--name", "draft2", ref, "true")
	if r := docker("rename", "draft2", "made"); r.Code == 0 || !strings.Contains(r.Stderr, `"/made" is already in use`) {
		t.Errorf("docker rename to a name in use: exit %d: %s", r.Code, r.Stderr)
	}
	docker("rm", "draft2")
}

// dockerHealth: docker run --health-cmd runs the check in the container
// every interval: inspect's State.Health goes unhealthy while it fails and
// healthy once it passes, docker ps shows it; the container is never
// restarted for it (as Docker, which only reports it). Its logs' last
// lines are none, without an error.
func dockerHealth(t *testing.T, docker func(...string) result, ref string) {
	if r := docker("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "1",
		ref, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("docker run --health-cmd: exit %d: %s", r.Code, r.Stderr)
	}
	run := show(t, "cove-hc.service", "InvocationID")
	status := func() string {
		return strings.TrimSpace(docker("inspect", "-f", "{{.State.Health.Status}}", "hc").Stdout)
	}
	eventually(t, 20*time.Second, "State.Health unhealthy", func() bool { return status() == "unhealthy" })
	docker("exec", "hc", "touch", "/tmp/ok")
	eventually(t, 20*time.Second, "State.Health healthy", func() bool { return status() == "healthy" })
	if r := docker("ps", "--filter", "name=hc"); !strings.Contains(r.Stdout, "(healthy)") {
		t.Errorf("docker ps of a healthy container:\n%s", r.Stdout)
	}
	if now := show(t, "cove-hc.service", "InvocationID"); now != run {
		t.Errorf("the unit's invocation %s became %s: an unhealthy container was restarted", run, now)
	}
	// hc has written nothing: the last lines of nothing (journalctl 252
	// fails --show-cursor when no entry matches).
	if r := docker("logs", "--tail", "2", "hc"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("docker logs --tail 2 of a container that wrote nothing: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if r := cove(t, "logs", "-n", "2", "--since", "1h", "hc"); r.Code != 0 || r.Stdout != "" {
		t.Errorf("cove logs -n 2 --since 1h of a container that wrote nothing: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
	}
	docker("rm", "-f", "hc")
}

// dockerImageHealth: an image's HEALTHCHECK is the check of a container
// run without --health-cmd (docker ps shows its health, unhealthy and
// then healthy), and --no-healthcheck runs none.
func dockerImageHealth(t *testing.T, docker func(...string) result, reg *registry.Registry) {
	cfg := imageConfig
	cfg.Healthcheck = &v1.HealthConfig{Test: []string{"CMD-SHELL", "test -f /tmp/ok"}, Interval: time.Second, Retries: 1}
	ref := pushImage(t, reg, "cove/health:1", cfg, rootfs)
	t.Cleanup(func() {
		docker("rm", "-f", "ihc", "ihc-none")
		cove(t, "rmi", "--force", ref)
	})
	for _, args := range [][]string{{"--name", "ihc"}, {"--name", "ihc-none", "--no-healthcheck"}} {
		if r := docker(append(append([]string{"run", "-d"}, args...), ref, "sleep", "1000")...); r.Code != 0 {
			t.Fatalf("docker run -d %s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
		}
	}
	status := func(name string) string {
		return strings.TrimSpace(docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", name).Stdout)
	}
	eventually(t, 20*time.Second, "the image's check makes ihc unhealthy", func() bool { return status("ihc") == "unhealthy" })
	docker("exec", "ihc", "touch", "/tmp/ok")
	eventually(t, 20*time.Second, "the image's check makes ihc healthy", func() bool { return status("ihc") == "healthy" })
	if r := docker("ps", "--filter", "name=ihc"); !strings.Contains(r.Stdout, "(healthy)") {
		t.Errorf("docker ps of ihc:\n%s", r.Stdout)
	}
	if r := docker("inspect", "-f", "{{json .Config.Healthcheck}}", "ihc"); !strings.Contains(r.Stdout, `"Test":["CMD-SHELL","test -f /tmp/ok"]`) {
		t.Errorf("docker inspect ihc's Config.Healthcheck: %q, want the image's", r.Stdout)
	}
	if got := status("ihc-none"); got != "none" {
		t.Errorf("the health of a container run with --no-healthcheck: %q, want none", got)
	}
}

// dockerUpdateLimits: docker update of a running container created
// through the API sets its memory, CPU and PIDs limits on its unit at
// once (inspect shows them), keeps them across a restart, and takes its
// new restart policy from its next start; --pids-limit -1 lifts the PIDs
// limit to systemd's default, as a unit without one has; what cove
// cannot set, and a restart policy for an --rm container, are refused.
func dockerUpdateLimits(t *testing.T, docker func(...string) result, ref string) {
	t.Cleanup(func() { docker("rm", "-f", "upd") })
	if r := docker("run", "-d", "--name", "upd", "-m", "64m", ref, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("docker run -d -m 64m: exit %d: %s", r.Code, r.Stderr)
	}
	unit := func(restart string) {
		t.Helper()
		got := []string{show(t, "cove-upd.service", "MemoryMax"), show(t, "cove-upd.service", "CPUQuotaPerSecUSec"),
			show(t, "cove-upd.service", "TasksMax"), show(t, "cove-upd.service", "Restart")}
		if want := []string{"134217728", "500ms", "50", restart}; !slices.Equal(got, want) {
			t.Errorf("cove-upd.service's MemoryMax, CPUQuotaPerSecUSec, TasksMax and Restart: %q, want %q", got, want)
		}
	}
	if r := docker("update", "-m", "128m", "--cpus", "0.5", "--pids-limit", "50", "--restart", "on-failure", "upd"); r.Code != 0 ||
		r.Stdout != "upd\nthe new restart policy applies from the container's next start\n" {
		t.Fatalf("docker update: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	unit("no")
	if r := docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}", "upd"); r.Stdout != "134217728 500000000 on-failure\n" {
		t.Errorf("docker inspect upd after the update: %q", r.Stdout)
	}
	if r := docker("restart", "-t", "1", "upd"); r.Code != 0 {
		t.Fatalf("docker restart upd: exit %d: %s", r.Code, r.Stderr)
	}
	unit("on-failure")
	defaultTasks := strings.TrimSpace(inside(t, "systemctl", "show", "-p", "DefaultTasksMax", "--value").Stdout)
	if r := docker("update", "--pids-limit", "-1", "upd"); r.Code != 0 || show(t, "cove-upd.service", "TasksMax") != defaultTasks {
		t.Errorf("docker update --pids-limit -1: exit %d %s; TasksMax %s, want systemd's default %s", r.Code, r.Stderr, show(t, "cove-upd.service", "TasksMax"), defaultTasks)
	}
	if r := docker("update", "--cpu-shares", "512", "upd"); r.Code == 0 || !strings.Contains(r.Stderr, "not CpuShares") {
		t.Errorf("docker update --cpu-shares: exit %d: %s; want a refusal", r.Code, r.Stderr)
	}
	if r := docker("create", "--rm", "--name", "upd-rm", ref, "true"); r.Code != 0 {
		t.Fatalf("docker create --rm: exit %d: %s", r.Code, r.Stderr)
	}
	defer docker("rm", "-f", "upd-rm")
	if r := docker("update", "--restart", "always", "upd-rm"); r.Code == 0 || !strings.Contains(r.Stderr, "AutoRemove is enabled") {
		t.Errorf("docker update --restart always of an --rm container: exit %d: %s; want Docker's conflict", r.Code, r.Stderr)
	}
}

// dockerPSFilters: docker ps --filter ancestor= (by name and by image
// ID), exited=, health=, volume= (by name and by destination) and
// network= list the containers they name.
func dockerPSFilters(t *testing.T, docker func(...string) result, ref string) {
	t.Cleanup(func() {
		docker("rm", "-f", "psf1", "psf2", "psf3")
		docker("volume", "rm", "psvol")
	})
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"run", "-d", "--name", "psf1", ref, "sleep", "1000"}, 0},
		{[]string{"run", "--name", "psf2", ref, "sh", "-c", "exit 3"}, 3},
		{[]string{"run", "-d", "--name", "psf3", "-u", "0", "-v", "psvol:/data", "--health-cmd", "true", "--health-interval", "1s", ref, "sleep", "1000"}, 0},
	} {
		if r := docker(c.args...); r.Code != c.code {
			t.Fatalf("docker %s: exit %d, want %d: %s", strings.Join(c.args, " "), r.Code, c.code, r.Stderr)
		}
	}
	ps := func(filter ...string) string {
		args := []string{"ps", "-a", "--filter", "name=psf", "--format", "{{.Names}}"}
		for _, f := range filter {
			args = append(args, "--filter", f)
		}
		names := strings.Fields(docker(args...).Stdout)
		slices.Sort(names)
		return strings.Join(names, " ")
	}
	imageID := strings.TrimPrefix(strings.TrimSpace(docker("image", "inspect", "-f", "{{.Id}}", ref).Stdout), "sha256:")
	eventually(t, 20*time.Second, "psf3 healthy", func() bool { return ps("health=healthy") == "psf3" })
	for filter, want := range map[string]string{
		"ancestor=" + ref: "psf1 psf2 psf3", "ancestor=" + imageID[:12]: "psf1 psf2 psf3", "ancestor=nosuch/image:1": "",
		"exited=3": "psf2", "exited=0": "", "health=none": "psf1 psf2", "volume=psvol": "psf3", "volume=/data": "psf3",
		"network=host": "psf1 psf2 psf3", "network=nosuch": "",
	} {
		if got := ps(filter); got != want {
			t.Errorf("docker ps -a --filter name=psf --filter %s: %q, want %q", filter, got, want)
		}
	}
}

// dockerHistory: docker history shows the test image's two layers'
// steps, newest first: the newest with the image's ID, the other
// "<missing>", as for a pulled image in Docker.
func dockerHistory(t *testing.T, docker func(...string) result, ref string) {
	id := strings.TrimSpace(docker("image", "inspect", "-f", "{{.Id}}", ref).Stdout)
	r := docker("history", "--no-trunc", "--format", "{{.ID}}", ref)
	if want := id + "\n<missing>\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("docker history %s: exit %d, %q %s; want %q", ref, r.Code, r.Stdout, r.Stderr, want)
	}
}

// dockerRunDetached: docker run -d starts a workload that docker ps and
// inspect show with the request's image, command and environment (the
// image's under the request's, its working directory and user); docker
// rm needs -f for it, and rm -f removes it at once.
func dockerRunDetached(t *testing.T, docker func(...string) result, ref string) {
	r := docker("run", "-d", "-e", "A=b", "--stop-signal", "SIGQUIT", "--name", "web", ref, "sleep", "1000")
	if id := strings.TrimSpace(r.Stdout); r.Code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("docker run -d: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if st := show(t, "cove-web.service", "ActiveState"); st != "active" {
		t.Errorf("cove-web.service is %s", st)
	}
	if sig := show(t, "cove-web.service", "KillSignal"); sig != "3" {
		t.Errorf("docker run --stop-signal SIGQUIT: KillSignal=%s, want 3", sig)
	}
	row := regexp.MustCompile(`(?m)^[0-9a-f]{12}\s+` + regexp.QuoteMeta(ref) + `\s+"sleep 1000".*Up .*\sweb$`)
	if r := docker("ps"); !row.MatchString(r.Stdout) {
		t.Errorf("docker ps:\n%s%s", r.Stdout, r.Stderr)
	}
	var got []struct {
		State  struct{ Running bool }
		Path   string
		Config struct {
			Image, WorkingDir, User string
			Env, Cmd                []string
		}
	}
	r = docker("inspect", "web")
	if json.Unmarshal([]byte(r.Stdout), &got) != nil || len(got) != 1 || !got[0].State.Running || got[0].Config.Image != ref {
		t.Fatalf("docker inspect web: %+v\n%s", got, r.Stderr)
	}
	if c := got[0].Config; strings.Join(c.Env, " ") != "PATH=/bin:/sbin GREETING=from-image A=b" || strings.Join(c.Cmd, " ") != "sleep 1000" ||
		c.WorkingDir != "/www" || c.User != "1000:1000" || got[0].Path != "sleep" {
		t.Errorf("docker inspect web: Config %+v, Path %q; want the image's environment, working directory and user with the run's", c, got[0].Path)
	}
	if r := docker("rm", "web"); r.Code == 0 || !strings.Contains(r.Stderr, "cannot remove a running container") {
		t.Errorf("docker rm of a running container: exit %d: %s", r.Code, r.Stderr)
	}
	start := time.Now()
	if r := docker("rm", "-f", "web"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "web" {
		t.Errorf("docker rm -f web: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("docker rm -f took %s: it should kill, not wait for the stop timeout", d)
	}
	if r := docker("ps", "-a"); strings.Contains(r.Stdout, "web") || show(t, "cove-web.service", "LoadState") != "not-found" {
		t.Errorf("after docker rm -f: LoadState %s, docker ps -a:\n%s", show(t, "cove-web.service", "LoadState"), r.Stdout)
	}
}

// dockerRunPulls: with the image gone from the store, create answers
// Docker's 404 and the docker CLI pulls it, then runs.
func dockerRunPulls(t *testing.T, docker func(...string) result, ref string) {
	if r := docker("rmi", ref); r.Code != 0 {
		t.Fatalf("docker rmi: exit %d: %s", r.Code, r.Stderr)
	}
	r := docker("run", "--rm", ref, "cat", "/etc/motd")
	if r.Code != 0 || r.Stdout != "motd from layer 2\n" || !strings.Contains(r.Stderr, "Unable to find image '"+ref+"' locally") {
		t.Errorf("docker run of an image not in the store: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}
