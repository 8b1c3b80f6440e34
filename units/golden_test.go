package units

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden pins both renderings of every spec in testdata: the unit file
// (NAME.service) and the D-Bus properties with their signatures
// (NAME.props).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden specs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			u := compileFile(t, f)
			text, err := u.Text(filepath.Base(f))
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(f, ".toml")
			golden(t, base+".service", text)
			golden(t, base+".props", dumpProps(u))
		})
	}
}

// compileFile compiles the spec file f with the launcher /usr/bin/cove.
func compileFile(t *testing.T, f string) Unit {
	t.Helper()
	s, err := spec.Load(f, "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := Compile(s, Options{Launcher: "/usr/bin/cove"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// dumpProps writes one "Name signature value" line per D-Bus property.
func dumpProps(u Unit) string {
	var b strings.Builder
	for _, p := range u.Properties() {
		v := dbus.MakeVariant(p.Value)
		fmt.Fprintf(&b, "%s %s %v\n", p.Name, v.Signature(), v.Value())
	}
	return b.String()
}

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./units -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestSignatures checks the D-Bus signatures systemd requires for the
// properties cove sends; a mismatch makes systemd fail with ENXIO.
func TestSignatures(t *testing.T) {
	want := map[string]string{
		"Description": "s", "Type": "s", "NotifyAccess": "s", "ExecStart": "a(sasb)", "Slice": "s",
		"KillMode": "s", "Environment": "as", "SyslogIdentifier": "s", "Restart": "s",
		"RestartUSec": "t", "TimeoutStopUSec": "t", "MemoryMax": "t", "CPUQuotaPerSecUSec": "t",
		"TasksMax": "t", "CollectMode": "s", "RemainAfterExit": "b", "DevicePolicy": "s",
		"ExecStop": "a(sasb)", "DeviceAllow": "a(ss)",
	}
	for _, f := range []string{"testdata/full.toml", "testdata/vm.toml"} {
		u := ForRun(compileFile(t, f), RunOptions{Remove: true})
		u = ForRun(u, RunOptions{Restart: "no"})
		for _, p := range u.Properties() {
			sig, ok := want[p.Name]
			if !ok {
				t.Errorf("%s: property %s has no expected signature", f, p.Name)
				continue
			}
			if got := dbus.SignatureOf(p.Value).String(); got != sig {
				t.Errorf("%s: %s: signature %s, systemd wants %s", f, p.Name, got, sig)
			}
		}
	}
}

// TestEscaping checks that no value can inject a directive or a specifier.
func TestEscaping(t *testing.T) {
	got, err := quoteWords([]string{`a"b`, `c\d`, "50%", "$HOME", ";", "x y"})
	if err != nil {
		t.Fatal(err)
	}
	want := `"a\"b" "c\\d" "50%%" "$$HOME" ";" "x y"`
	if got != want {
		t.Errorf("quoteWords = %s, want %s", got, want)
	}
	for _, bad := range []string{"a\nExecStartPre=/bin/evil", "a\rb", "nul\x00"} {
		if _, err := quoteWords([]string{bad}); err == nil {
			t.Errorf("quoteWords(%q) accepted a control character", bad)
		}
		if _, err := plainText(bad); err == nil {
			t.Errorf("plainText(%q) accepted a control character", bad)
		}
	}
	if _, err := plainText(`ends in \`); err == nil {
		t.Error("plainText accepted a trailing backslash (line continuation)")
	}
	if got, _ := plainText("100% %n"); got != "100%% %%n" {
		t.Errorf("plainText did not double %%: %s", got)
	}
}
