package tests

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPause: cove pause freezes a running container's processes (a
// counter it writes every 50 ms stands still, cove status and cove ps say
// paused) and cove unpause lets them run on; pausing twice is no error,
// pausing a stopped workload is refused; docker pause and unpause do the
// same through the API, with Docker's "paused" state, "(Paused)" status,
// /info count and refusals (start, exec (also one created before the
// pause, at its start), rm without -f and pause of a
// paused container, unpause of a running one); cove exec into a paused
// workload is refused (it would freeze too); a paused container stops
// at once, its TERM trap run (it is unpaused before the signal).
func TestPause(t *testing.T) {
	needAPI(t)
	dir := filepath.Join(workDir, "pause-specs")
	t.Cleanup(func() { cove(t, "rm", "-f", "paused") })
	mustCove(t, "apply", containerSpec(t, dir, "paused", rootfs,
		shCommand("trap 'echo got TERM; exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i > /tmp/paused-count; sleep 0.05; done"),
		"[service]\nstop_timeout = \"30s\"\n"))
	pid := mainPIDs(t, "paused")["paused"]
	count := func() string {
		r := inside(t, "cat", "/proc/"+pid+"/root/tmp/paused-count")
		return strings.TrimSpace(r.Stdout)
	}
	eventually(t, 10*time.Second, "the counter to run", func() bool { return count() > "" })

	mustCove(t, "pause", "paused")
	mustCove(t, "pause", "paused") // paused already: no error
	before := count()
	time.Sleep(500 * time.Millisecond)
	if after := count(); after != before {
		t.Errorf("the counter went from %s to %s while paused", before, after)
	}
	if st := mustCove(t, "status", "paused"); !strings.Contains(st, "paused (active/running)") {
		t.Errorf("cove status of a paused workload:\n%s", st)
	}
	if ps := mustCove(t, "ps"); !strings.Contains(ps, " paused ") {
		t.Errorf("cove ps with a paused workload (its state column):\n%s", ps)
	}
	if r := cove(t, "exec", "paused", "--", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "is paused") {
		t.Errorf("cove exec into a paused workload: exit %d: %s", r.Code, r.Stderr)
	}
	mustCove(t, "unpause", "paused")
	eventually(t, 10*time.Second, "the counter to run on after unpause", func() bool { return count() != before })

	dockerPauses(t, count)

	mustCove(t, "pause", "paused")
	mustCove(t, "stop", "paused") // its stop timeout (30 s) would bound a stop of frozen processes
	if st := show(t, "cove-paused.service", "ActiveState"); st != "inactive" || !strings.Contains(cove(t, "logs", "paused").Stdout, "got TERM") {
		t.Errorf("a paused workload after cove stop: %s, log:\n%s; want inactive, its TERM trap run (unpaused before the signal)", st, cove(t, "logs", "paused").Stdout)
	}
	if r := inside(t, "test", "-e", "/run/cove/paused/paused"); r.Code == 0 {
		t.Error("/run/cove/paused/paused is left after the stop")
	}
	if r := cove(t, "pause", "paused"); r.Code == 0 || !strings.Contains(r.Stderr, "is not running") {
		t.Errorf("cove pause of a stopped workload: exit %d: %s", r.Code, r.Stderr)
	}
}

// dockerPauses: docker pause and unpause of running container "paused",
// whose payload's counter count reads, through the API: Docker's state,
// status, /info count and refusals; an exec created before the pause is
// refused at its start while paused, and starts after the unpause.
func dockerPauses(t *testing.T, count func() string) {
	docker := dockerCLI(t)
	code, body := rawRequest(t, post("/v1.41/containers/paused/exec", `{"Cmd":["true"]}`))
	var created struct{ Id string }
	if err := json.Unmarshal([]byte(body), &created); code != 201 || err != nil {
		t.Fatalf("exec create in a running container: HTTP %d %s", code, body)
	}
	if r := docker("pause", "paused"); r.Code != 0 {
		t.Fatalf("docker pause: exit %d: %s", r.Code, r.Stderr)
	}
	// An exec created before the pause is refused at its start as at its create.
	if code, body := rawRequest(t, post("/v1.41/exec/"+created.Id+"/start", `{"Detach":true}`)); code != 409 || !strings.Contains(body, "is paused, unpause the container before exec") {
		t.Errorf("start of an exec created before the pause: HTTP %d %s; want 409, paused", code, body)
	}
	if r := docker("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", "paused"); strings.TrimSpace(r.Stdout) != "paused true true" {
		t.Errorf("docker inspect of a paused container: %q %s", r.Stdout, r.Stderr)
	}
	if r := docker("ps", "--filter", "name=paused"); !strings.Contains(r.Stdout, "(Paused)") {
		t.Errorf("docker ps with a paused container:\n%s%s", r.Stdout, r.Stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"start", "paused"}, "cannot start a paused container"},
		{[]string{"exec", "paused", "true"}, "is paused, unpause the container before exec"},
		{[]string{"rm", "paused"}, "You cannot remove a paused container"},
		{[]string{"pause", "paused"}, "is already paused"},
	} {
		if r := docker(c.args...); r.Code == 0 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("docker %s of a paused container: exit %d: %s", strings.Join(c.args, " "), r.Code, r.Stderr)
		}
	}
	if r := docker("info", "--format", "{{.ContainersPaused}}"); strings.TrimSpace(r.Stdout) != "1" {
		t.Errorf("docker info's ContainersPaused with one paused: %q %s", r.Stdout, r.Stderr)
	}
	frozen := count()
	if r := docker("unpause", "paused"); r.Code != 0 {
		t.Errorf("docker unpause: exit %d: %s", r.Code, r.Stderr)
	}
	eventually(t, 10*time.Second, "the counter to run on after docker unpause", func() bool { return count() != frozen })
	// The exec refused while paused starts now, as Docker's does.
	if code, body := rawRequest(t, post("/v1.41/exec/"+created.Id+"/start", `{"Detach":true}`)); code != 200 {
		t.Errorf("start after unpause of the exec refused while paused: HTTP %d %s; want 200", code, body)
	}
	if r := docker("unpause", "paused"); r.Code == 0 || !strings.Contains(r.Stderr, "is not paused") {
		t.Errorf("docker unpause of a running container: exit %d: %s", r.Code, r.Stderr)
	}

}
