package declared

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// write creates dir/name with text.
func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = "version = 1\nkind = \"container\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\n"

// TestRun: every valid spec becomes a unit identical to what Units and
// Text give (what cove render prints) with its container's launcher
// configuration beside it (what cove render --launch-config prints),
// /etc overrides /usr/share by name, wanted_by becomes a .wants link,
// and a bad spec is logged and skipped.
func TestRun(t *testing.T) {
	root := t.TempDir()
	paths := Paths{Vendor: filepath.Join(root, "usr"), Etc: filepath.Join(root, "etc"), Run: filepath.Join(root, "run"), Launch: filepath.Join(root, "launch")}
	gone := write(t, paths.Launch, "gone.json", "[]\n")
	write(t, paths.Launch, "notes.txt", "an admin's\n")
	write(t, paths.Vendor, "web.toml", good+"description = \"vendor\"\n")
	etcWeb := write(t, paths.Etc, "web.toml", good+"[install]\nwanted_by = [\"multi-user.target\"]\n")
	write(t, paths.Vendor, "db.toml", good)
	bad := write(t, paths.Etc, "bad.toml", "version = 1\nkind = \"container\"\nnope = 1\n")
	out := filepath.Join(root, "out")
	os.Mkdir(out, 0o755)
	var log strings.Builder
	res, err := Generate(paths, out, "/usr/bin/cove", &log)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generated != 2 || res.Failed != 1 {
		t.Errorf("result %+v, want 2 generated, 1 failed", res)
	}
	if !strings.Contains(log.String(), bad+":3:1:") {
		t.Errorf("log lacks the bad spec's position:\n%s", log.String())
	}
	s, err := spec.Load(etcWeb, "")
	if err != nil {
		t.Fatal(err)
	}
	all, err := Units(s, "/usr/bin/cove")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := all[0].Text(etcWeb)
	got, err := os.ReadFile(filepath.Join(out, "cove-web.service"))
	if err != nil || string(got) != want {
		t.Errorf("cove-web.service differs from the rendered unit (%v):\n%s\n---\n%s", err, got, want)
	}
	config := filepath.Join(paths.Launch, "web.json")
	if got, err := os.ReadFile(config); err != nil || string(got) != string(launch.ConfigFileText(all[0].LaunchArgs)) || all[0].LaunchArgs == nil || !strings.Contains(want, launch.ConfigFile("web")) {
		t.Errorf("%s (%v):\n%s\nwant the launcher arguments %q, the unit naming %s", config, err, got, all[0].LaunchArgs, launch.ConfigFile("web"))
	}
	for file, want := range map[string]bool{"db.json": true, "bad.json": false, "gone.json": false, "notes.txt": true} {
		if _, err := os.Stat(filepath.Join(paths.Launch, file)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v (%s was there before)", file, err == nil, want, gone)
		}
	}
	if target, err := os.Readlink(filepath.Join(out, "multi-user.target.wants", "cove-web.service")); err != nil || target != "../cove-web.service" {
		t.Errorf("wants link: %q %v", target, err)
	}
	if _, err := os.Stat(filepath.Join(out, "cove-db.service")); err != nil {
		t.Errorf("vendor spec not generated: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "cove-bad.service")); err == nil {
		t.Errorf("bad spec generated a unit")
	}
}

// TestGenerateNetworks: each declared network gets its DHCP socket and,
// with DNS, its DNS socket, linked into its network unit's .wants (the
// default network without a file too); dns = false gets no DNS socket
// but its DHCP socket; a bad network file is logged with its position
// and skipped.
func TestGenerateNetworks(t *testing.T) {
	root := t.TempDir()
	paths := Paths{Etc: filepath.Join(root, "etc"), Networks: filepath.Join(root, "etc", "networks")}
	write(t, paths.Networks, "web.toml", "version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.80.0.0/24\"\n")
	write(t, paths.Networks, "quiet.toml", "version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.81.0.0/24\"\ndns = false\n")
	bad := write(t, paths.Networks, "bad.toml", "version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.82.0.0\"\n")
	out := t.TempDir()
	var log strings.Builder
	if _, err := Generate(paths, out, "/usr/bin/cove", &log); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cove-dns@cove.socket", "cove-dns@web.socket", "cove-network@web.service.wants/cove-dns@web.socket", "cove-network@cove.service.wants/cove-dns@cove.socket",
		"cove-dhcp@cove.socket", "cove-dhcp@web.socket", "cove-dhcp@quiet.socket", "cove-network@cove.service.wants/cove-dhcp@cove.socket",
		"cove-network@web.service.wants/cove-dhcp@web.socket", "cove-network@quiet.service.wants/cove-dhcp@quiet.socket"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("generator did not write %s: %v", want, err)
		}
	}
	if text, _ := os.ReadFile(filepath.Join(out, "cove-dns@web.socket")); !strings.Contains(string(text), "ListenDatagram=10.80.0.1:53") {
		t.Errorf("cove-dns@web.socket:\n%s", text)
	}
	if text, _ := os.ReadFile(filepath.Join(out, "cove-dhcp@quiet.socket")); !strings.Contains(string(text), "\nBindToDevice=cove-quiet\n") {
		t.Errorf("cove-dhcp@quiet.socket:\n%s", text)
	}
	for _, not := range []string{"cove-dns@quiet.socket", "cove-dns@bad.socket", "cove-dhcp@bad.socket"} {
		if _, err := os.Stat(filepath.Join(out, not)); err == nil {
			t.Errorf("generator wrote %s", not)
		}
	}
	if !strings.Contains(log.String(), bad+":4:1: network.subnet4") {
		t.Errorf("log lacks the bad network file's position:\n%s", log.String())
	}
}
