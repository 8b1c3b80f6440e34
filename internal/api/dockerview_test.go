package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/health"
	"github.com/cove-project/cove/spec"
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
