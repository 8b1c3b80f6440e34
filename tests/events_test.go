package tests

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
)

// dockerEventJSON is what the test reads of Docker's event message.
type dockerEventJSON struct {
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
	Status   string `json:"status"`
	ID       string `json:"id"`
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// short is the event as "ACTION NAME" or "die NAME 137".
func (e dockerEventJSON) short() string {
	s := e.Action + " " + e.Actor.Attributes["name"]
	if code, ok := e.Actor.Attributes["exitCode"]; ok {
		s += " " + code
	}
	return s
}

// dockerEvents reads the JSON lines of docker events --format '{{json .}}'
// or of the Python SDK's events(decode=True) as printed by the test, and
// checks the fields every event has.
func dockerEvents(t *testing.T, what string, r result) []string {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", what, r.Code, r.Stdout, r.Stderr)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if line == "" {
			continue
		}
		var e dockerEventJSON
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%s: %v: %s", what, err, line)
		}
		if e.Type != "container" || e.Scope != "local" || e.Status != e.Action || e.ID != e.Actor.ID || len(e.ID) != 64 ||
			e.TimeNano/1e9 != e.Time || e.Time == 0 {
			t.Errorf("%s: event %s lacks Docker's fields", what, line)
		}
		out = append(out, e.short())
	}
	return out
}

// pid1LogsToJournal makes the sandbox's systemd log to the journal at
// level info, as systemd does by default on a host (the sandbox boots it
// with --log-target=console --log-level=notice), until the test ends.
func pid1LogsToJournal(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{{"set-log-target", "journal-or-kmsg"}, {"set-log-level", "info"}} {
		if r := inside(t, "systemd-analyze", args...); r.Code != 0 {
			t.Fatalf("systemd-analyze %s: %s", args, r.Stderr)
		}
	}
	t.Cleanup(func() {
		inside(t, "systemd-analyze", "set-log-target", "console")
		inside(t, "systemd-analyze", "set-log-level", "notice")
	})
}

// unixTime is t as docker events --since takes it.
func unixTime(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// TestEvents: while no API helper runs, cove apply creates three
// containers: one with restart = "on-failure" fails once (exit 3), is
// restarted and stopped (killed after its stop timeout: 137); one over its
// 8 MiB memory limit is OOM-killed; one's health check passes, then
// fails; and cove run --rm creates, runs and destroys a fourth, and so
// does cove run --rm -d a fifth (no cove process sees its end: its
// create record says it goes with its run). Then, with the
// helper started by the first request, docker events --since --until
// --filter lists their events in order with Docker's fields, as does the
// Python SDK's events(); without --until docker events follows new
// events.
func TestEvents(t *testing.T) {
	needAPI(t)
	dockerBin := harness.DockerCLI(t, sb)
	pruneAll(t)
	pid1LogsToJournal(t)
	waitHelperGone(t)
	dir := filepath.Join(workDir, "events")
	marker := "/tmp/evfail-failed"
	alive := "/tmp/alive-evhealth"
	inside(t, "rm", "-f", rootfs+marker, rootfs+alive)
	fail := containerSpec(t, dir, "evfail", rootfs, shCommand("[ -e "+marker+" ] || { touch "+marker+"; exit 3; }; exec sleep 1000"),
		"[service]\nrestart = \"on-failure\"\nrestart_delay = \"500ms\"\nstop_timeout = \"1s\"\n")
	oom := containerSpec(t, dir, "evoom", rootfs, `["/bin/awk", "BEGIN { s = sprintf(\"%100000000s\", \"x\"); print length(s) }"]`,
		"[resources]\nmemory = \"8M\"\n")
	health := containerSpec(t, dir, "evhealth", rootfs, shCommand("touch "+alive+"; sleep 2; rm "+alive+"; exec sleep 1000"),
		"[health]\ncommand = [\"test\", \"-e\", \""+alive+"\"]\ninterval = \"500ms\"\ntimeout = \"400ms\"\nretries = 2\non_failure = \"none\"\n[service]\nstop_timeout = \"1s\"\n")

	since := time.Now()
	mustCove(t, "apply", fail, oom, health)
	eventually(t, 20*time.Second, "evfail to be restarted and evoom to be killed", func() bool {
		return show(t, "cove-evfail.service", "NRestarts") == "1" && show(t, "cove-evfail.service", "SubState") == "running" &&
			show(t, "cove-evoom.service", "ActiveState") != "active"
	})
	eventually(t, 10*time.Second, "evhealth to be unhealthy", func() bool { return healthOf(t, "evhealth") == "unhealthy" })
	mustCove(t, "stop", "evfail", "evhealth")
	mustCove(t, "run", "--rm", "--name", "evrun", "--rootfs", rootfs, "--", "/bin/true")
	mustCove(t, "run", "--rm", "-d", "--name", "evdetached", "--rootfs", rootfs, "--", "/bin/true")
	eventually(t, 10*time.Second, "evdetached to end and be collected", func() bool {
		return show(t, "cove-evdetached.service", "LoadState") == "not-found"
	})
	until := time.Now().Add(time.Second) // the last records may still be on their way to the journal
	if st := show(t, apiSvc, "ActiveState"); st == "active" {
		t.Fatalf("the API helper runs before the first request")
	}

	docker := func(args ...string) result {
		return inside(t, dockerBin, append([]string{"-H", apiHost, "events", "--format", "{{json .}}",
			"--since", unixTime(since), "--until", unixTime(until)}, args...)...)
	}
	wantFail := []string{"create evfail", "start evfail", "die evfail 3", "restart evfail", "start evfail", "die evfail 137", "stop evfail"}
	for name, want := range map[string][]string{
		"evfail":     wantFail,
		"evoom":      {"create evoom", "start evoom", "oom evoom", "die evoom 137"},
		"evrun":      {"create evrun", "start evrun", "die evrun 0", "destroy evrun"},
		"evdetached": {"create evdetached", "start evdetached", "die evdetached 0", "destroy evdetached"}, // cove run --rm -d
	} {
		if got := dockerEvents(t, "docker events --filter container="+name, docker("--filter", "container="+name)); !slices.Equal(got, want) {
			t.Errorf("docker events --filter container=%s: %q, want %q", name, got, want)
		}
	}
	wantHealth := []string{"health_status: healthy evhealth", "health_status: unhealthy evhealth"}
	if got := dockerEvents(t, "docker events --filter event=health_status", docker("--filter", "event=health_status")); !slices.Equal(got, wantHealth) {
		t.Errorf("docker events --filter event=health_status: %q, want %q", got, wantHealth)
	}
	wantDies := []string{"die evfail 3", "die evoom 137", "die evfail 137"}
	if got := dockerEvents(t, "docker events --filter event=die", docker("--filter", "event=die", "--filter", "container=evfail", "--filter", "container=evoom")); !slices.Equal(got, wantDies) {
		t.Errorf("docker events --filter event=die (evfail, evoom): %q, want %q", got, wantDies)
	}

	py := fmt.Sprintf(`import docker, json
c = docker.DockerClient(base_url=%q, version="1.41")
for e in c.events(decode=True, since=%d, until=%d, filters={"container": "evfail"}):
    print(json.dumps(e))
`, apiHost, since.Unix(), until.Unix()+1)
	if got := dockerEvents(t, "python3-docker events()", inside(t, "/usr/bin/python3", "-c", py)); !slices.Equal(got, wantFail) {
		t.Errorf("python3-docker events(filters container=evfail): %q, want %q", got, wantFail)
	}

	follow := startInside(t, dockerBin, "-H", apiHost, "events", "--since", unixTime(time.Now()), "--filter", "container=evfail", "--filter", "event=start")
	mustCove(t, "start", "evfail")
	follow.waitLine(t, "container start")
	select {
	case code := <-follow.done:
		t.Errorf("docker events without --until ended (exit %d) instead of following", code)
	default:
	}
}
