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
