package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cove-project/cove/spec"
)

// TestDockerMounts: a declared spec's mounts and read-only root appear in
// Docker's container list and inspect as Docker shows them.
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
`), "")
	if err != nil {
		t.Fatal(err)
	}
	w := fakeWorkload("web")
	mounts := `"Mounts":[{"Type":"bind","Source":"/srv/data","Destination":"/data","Mode":"ro","RW":false,"Propagation":"rprivate"},` +
		`{"Type":"tmpfs","Source":"","Destination":"/tmp","Mode":"","RW":true,"Propagation":""}]`
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
