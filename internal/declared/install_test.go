package declared

import (
	"strings"
	"testing"
)

const base = `# my web server
version = 1
kind = "container"
[container]
rootfs = "/r"
command = ["/bin/true"]
`

// TestSetWantedBy checks enabling and disabling keep the file's comments
// and other keys and give a valid spec.
func TestSetWantedBy(t *testing.T) {
	on, err := SetWantedBy("/etc/cove/web.toml", []byte(base), []string{"multi-user.target"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(on), base) || !strings.Contains(string(on), "[install]\nwanted_by = [\"multi-user.target\"]\n") {
		t.Errorf("enabled:\n%s", on)
	}
	off, err := SetWantedBy("/etc/cove/web.toml", on, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(off), "[install]\nwanted_by = []\n") || strings.Count(string(off), "wanted_by") != 1 {
		t.Errorf("disabled:\n%s", off)
	}
	withTable := base + "[install]\n# boot it\n\n[service]\nrestart = \"always\"\n"
	got, err := SetWantedBy("/etc/cove/web.toml", []byte(withTable), []string{"multi-user.target"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "[install]\nwanted_by = [\"multi-user.target\"]\n# boot it") {
		t.Errorf("inserted in the wrong place:\n%s", got)
	}
	if _, err := SetWantedBy("/etc/cove/web.toml", []byte("install.wanted_by = []\n"+base), []string{"x.target"}); err == nil {
		t.Error("a dotted install key was edited into an invalid or different spec without error")
	}
}

// TestSetReplicasText: cove scale's edit adds, inserts or replaces
// [service] replicas, keeps the rest, and refuses a count the spec cannot
// run with its errors.
func TestSetReplicasText(t *testing.T) {
	ro := strings.Replace(base, "[container]\n", "[container]\nread_only = true\n", 1)
	got, err := SetReplicasText("/etc/cove/web.toml", []byte(ro), 3)
	if err != nil || !strings.HasPrefix(string(got), ro) || !strings.HasSuffix(string(got), "[service]\nreplicas = 3\n") {
		t.Fatalf("added: %v\n%s", err, got)
	}
	got, err = SetReplicasText("/etc/cove/web.toml", got, 5)
	if err != nil || strings.Count(string(got), "replicas") != 1 || !strings.Contains(string(got), "replicas = 5\n") {
		t.Errorf("replaced: %v\n%s", err, got)
	}
	withService := ro + "[service]\nrestart = \"always\"\n"
	if got, err = SetReplicasText("/etc/cove/web.toml", []byte(withService), 2); err != nil || !strings.Contains(string(got), "[service]\nreplicas = 2\nrestart = \"always\"\n") {
		t.Errorf("inserted: %v\n%s", err, got)
	}
	if _, err := SetReplicasText("/etc/cove/web.toml", []byte(ro), 0); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("0 replicas: %v", err)
	}
	if _, err := SetReplicasText("/etc/cove/web.toml", []byte(base), 2); err == nil || !strings.Contains(err.Error(), "one root directory") {
		t.Errorf("2 replicas of a writable rootfs: %v", err)
	}
}
