package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/health"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestDockerMounts: a declared spec's mounts and read-only root appear in
// Docker's container list and inspect as Docker shows them (a volume with
// its name and data directory: docker compose looks for it so).
func TestDockerMounts(t *testing.T) {
	sp, err := spec.Parse("web.toml", []byte(`version = 1
kind = "container"
[container]
rootfs = "/r"
command = ["/bin/true"]
read_only = true
[[container.mount]]
source = "/srv/data"
target = "/data"
read_only = true
[[container.mount]]
type = "tmpfs"
target = "/tmp"
[[container.mount]]
type = "volume"
source = "pgdata"
target = "/var/lib/pg"
`), "")
	if err != nil {
		t.Fatal(err)
	}
	w := fakeWorkload("web")
	mounts := `"Mounts":[{"Type":"bind","Source":"/srv/data","Destination":"/data","Mode":"ro","RW":false,"Propagation":"rprivate"},` +
		`{"Type":"tmpfs","Source":"","Destination":"/tmp","Mode":"","RW":true,"Propagation":""},` +
		`{"Type":"volume","Name":"pgdata","Driver":"local","Source":"/var/lib/cove/volumes/pgdata/_data","Destination":"/var/lib/pg","Mode":"","RW":true,"Propagation":""}]`
	for what, v := range map[string]any{"summary": summary(w, sp), "inspect": inspectOf(w, sp)} {
		b, _ := json.Marshal(v)
		if !strings.Contains(string(b), mounts) {
			t.Errorf("%s: %s\nlacks %s", what, b, mounts)
		}
	}
	if b, _ := json.Marshal(inspectOf(w, sp)); !strings.Contains(string(b), `"ReadonlyRootfs":true`) {
		t.Errorf("inspect lacks ReadonlyRootfs: %s", b)
	}
	if b, _ := json.Marshal(summary(w, nil)); !strings.Contains(string(b), `"Mounts":[]`) {
		t.Errorf("summary without a spec: %s", b)
	}
}

// TestHumanDuration: ages and uptimes read as docker shows them.
func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		500 * time.Millisecond: "Less than a second",
		time.Second:            "1 second",
		90 * time.Second:       "About a minute",
		5 * time.Minute:        "5 minutes",
		3 * time.Hour:          "3 hours",
		3 * 24 * time.Hour:     "3 days",
		21 * 24 * time.Hour:    "3 weeks",
		90 * 24 * time.Hour:    "3 months",
		800 * 24 * time.Hour:   "2 years",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestHealthNow: a health state older than the run shows starting (a
// restart's first probe is an interval away); a newer one, or one of a
// workload that does not run, shows as recorded.
func TestHealthNow(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, c := range []struct {
		st      health.State
		started time.Time
		want    string
	}{
		{health.State{Status: health.Healthy, CheckedAt: start.Add(-time.Second)}, start, health.Starting},
		{health.State{Status: health.Healthy, CheckedAt: start.Add(time.Second)}, start, health.Healthy},
		{health.State{Status: health.Unhealthy, CheckedAt: start.Add(-time.Second)}, time.Time{}, health.Unhealthy},
		{health.State{}, start, ""},
	} {
		if got := healthNow(c.st, c.started); got != c.want {
			t.Errorf("%+v, started %v: %q, want %q", c.st, c.started, got, c.want)
		}
	}
}

// TestDockerStatusHealth: a running container's health in the STATUS
// column reads as Docker's.
func TestDockerStatusHealth(t *testing.T) {
	now := time.Unix(1000, 0)
	for h, want := range map[string]string{"": "Up 5 seconds", health.Starting: "Up 5 seconds (health: starting)",
		health.Healthy: "Up 5 seconds (healthy)", health.Unhealthy: "Up 5 seconds (unhealthy)"} {
		w := Workload{Health: h}
		w.Started = now.Add(-5 * time.Second)
		if got := dockerStatus(w, "running", now); got != want {
			t.Errorf("health %q: %q, want %q", h, got, want)
		}
	}
}

// TestDockerPaused: a paused workload is Docker's "paused", up with
// "(Paused)", running and paused in inspect, with its PID.
func TestDockerPaused(t *testing.T) {
	now := time.Unix(1000, 0)
	w := Workload{}
	w.ActiveState, w.SubState, w.MainPID, w.Paused = "active", "running", 42, true
	w.Started = now.Add(-5 * time.Second)
	if st := dockerState(w); st != "paused" || dockerStatus(w, st, now) != "Up 5 seconds (Paused)" || !isUp(st) {
		t.Errorf("paused: state %q, status %q, up %v", st, dockerStatus(w, st, now), isUp(st))
	}
	if s := inspectOf(w, nil).State; s.Status != "paused" || !s.Running || !s.Paused || s.Pid != 42 {
		t.Errorf("paused workload's inspect state: %+v", s)
	}
}

// TestImageConfigInInspect: an image container's inspect has its image's
// configuration as Docker shows it: the image's entrypoint and command
// unless the spec replaces them (an entrypoint drops the image's
// command), the image's environment under the spec's, its working
// directory and user unless set, its exposed ports with the published
// ones, its volumes and its labels under the spec's.
func TestImageConfigInInspect(t *testing.T) {
	rec := image.ImageRecord{}
	rec.Config.Config = v1.Config{Entrypoint: []string{"/init"}, Cmd: []string{"serve"}, Env: []string{"PATH=/bin", "A=image"},
		WorkingDir: "/app", User: "app", ExposedPorts: map[string]struct{}{"80/tcp": {}, "8443": {}}, Volumes: map[string]struct{}{"/data": {}},
		Labels: map[string]string{"org": "image", "keep": "1"}}
	for _, tc := range []struct {
		toml, entry, cmd, user, workdir, env string
	}{
		{``, "/init", "serve", "app", "/app", "PATH=/bin A=image"},
		{"command = [\"run\"]\nenv = { A = \"spec\" }\nworkdir = \"/w\"\nuser = \"5:5\"\n", "/init", "run", "5:5", "/w", "PATH=/bin A=spec"},
		{"entrypoint = [\"/bin/sh\"]\n", "/bin/sh", "", "app", "/app", "PATH=/bin A=image"},
	} {
		sp, err := spec.Parse("web.toml", []byte("version = 1\nkind = \"container\"\n[container]\nimage = \"r.example/app:1\"\nports = [\"8080:8443\"]\nnetwork = \"cove\"\nlabels = { org = \"spec\" }\n"+tc.toml), "")
		if err != nil {
			t.Fatal(err)
		}
		d := inspectOf(Workload{Workload: supervisor.Workload{Name: "web", Kind: "container"}}, sp)
		withImageConfig(&d, sp.Container, rec)
		c := d.Config
		if strings.Join(c.Entrypoint, " ") != tc.entry || strings.Join(c.Cmd, " ") != tc.cmd || c.User != tc.user || c.WorkingDir != tc.workdir || strings.Join(c.Env, " ") != tc.env {
			t.Errorf("%q: entrypoint %q cmd %q user %q workdir %q env %q", tc.toml, c.Entrypoint, c.Cmd, c.User, c.WorkingDir, c.Env)
		}
		if d.Path != tc.entry {
			t.Errorf("%q: Path %q, want %q", tc.toml, d.Path, tc.entry)
		}
		if _, ok := c.ExposedPorts["8443/tcp"]; !ok || len(c.ExposedPorts) != 2 || len(c.Volumes) != 1 { // the image's bare 8443 and the published one are one
			t.Errorf("%q: ExposedPorts %v, Volumes %v", tc.toml, c.ExposedPorts, c.Volumes)
		}
		if c.Labels["org"] != "spec" || c.Labels["keep"] != "1" || c.Labels["cove.kind"] != "container" {
			t.Errorf("%q: labels %v", tc.toml, c.Labels)
		}
	}
}
