package units

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/tests/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden pins both renderings of the units of every spec in testdata:
// for NAME.toml, the unit file (NAME.service) and the D-Bus properties with
// their signatures (NAME.props) of the workload's unit and, for a spec with
// [health], of its health timer (NAME.health-timer.timer and .props) and
// health probe service (NAME.health-probe.service and .props), and for an
// image container that needs one, of its pull unit (NAME.pull.service and
// NAME.pull.props), and for a workload publishing ports on ::1, of each
// proxy's socket and service (NAME.proxyI-socket.socket, NAME.proxyI-service.service and
// their .props). Adding a
// case is adding NAME.toml and running go test ./units -update; a file in
// testdata that no spec renders is an error.
func TestGolden(t *testing.T) {
	specs := goldenSpecs(t)
	for _, f := range specs {
		t.Run(filepath.Base(f), func(t *testing.T) {
			for _, g := range goldenFiles(t, f) {
				golden.Check(t, g.path, g.text, *update)
			}
		})
	}
	t.Run("no stray files", func(t *testing.T) { noStrayFiles(t, specs) })
}

// goldenSpecs returns the spec files in testdata.
func goldenSpecs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden specs: %v", err)
	}
	return files
}

// noStrayFiles fails t for each file in testdata that is neither one of
// specs nor rendered from one, such as a golden file of a removed spec.
func noStrayFiles(t *testing.T, specs []string) {
	known := map[string]bool{}
	for _, g := range socketGoldenFiles(t) {
		known[g.path] = true
	}
	for _, f := range specs {
		known[f] = true
		for _, g := range goldenFiles(t, f) {
			known[g.path] = true
		}
	}
	all, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if !known[f] {
			t.Errorf("%s: no spec in testdata renders it; remove it", f)
		}
	}
}

// goldenFile is one golden file: its path and the text it must hold.
type goldenFile struct{ path, text string }

// goldenFiles renders the units of the spec file f into the golden files
// TestGolden compares.
func goldenFiles(t *testing.T, f string) []goldenFile {
	t.Helper()
	s := loadFile(t, f)
	base := strings.TrimSuffix(f, ".toml")
	var files []goldenFile
	add := func(u Unit, name string) {
		files = append(files, unitGoldens(t, u, base+name, filepath.Base(f))...)
	}
	opt := goldenOptions
	opt.PullUnit = NeedsPullUnit(s, func(string) bool { return false }) // as if no image were in the store
	u, err := Compile(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	add(u, ".service")
	if pull, ok := CompilePull(s, opt); ok && opt.PullUnit {
		add(pull, ".pull.service")
	}
	timer, probe, ok := CompileHealth(s, goldenOptions)
	if ok != (s.Health != nil) {
		t.Fatalf("CompileHealth ok = %v with health %+v", ok, s.Health)
	}
	if ok {
		add(timer, ".health-timer.timer")
		add(probe, ".health-probe.service")
	}
	for i, p := range u.Proxies {
		add(p.Socket, fmt.Sprintf(".proxy%d-socket.socket", i+1))
		add(p.Service, fmt.Sprintf(".proxy%d-service.service", i+1))
	}
	return files
}

// unitGoldens are the golden files of u: its unit file at path, rendered
// from source, and its D-Bus properties beside it (.props).
func unitGoldens(t *testing.T, u Unit, path, source string) []goldenFile {
	t.Helper()
	text, err := u.Text(source)
	if err != nil {
		t.Fatal(err)
	}
	return []goldenFile{{path, text}, {strings.TrimSuffix(path, filepath.Ext(path)) + ".props", dumpProps(u)}}
}

// goldenOptions are the options golden units are compiled with.
var goldenOptions = Options{Launcher: "/usr/bin/cove"}

// loadFile loads the spec file f. Compiling must stay pure, so a VM disk
// must give its format (cove run and the generator pin a detected format
// before compiling), but for an "oci:" base (read by the launcher).
func loadFile(t *testing.T, f string) *spec.Spec {
	t.Helper()
	s, err := spec.Load(f, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.VM != nil {
		for i, d := range s.VM.Disks {
			if _, oci := spec.OCIImage(d.Base); d.Format == "" && !oci {
				t.Fatalf("%s: vm.disk[%d] has no format; give one", f, i+1)
			}
		}
	}
	return s
}

// compile compiles s with goldenOptions.
func compile(t *testing.T, s *spec.Spec) Unit {
	t.Helper()
	u, err := Compile(s, goldenOptions)
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

// TestSignatures checks the D-Bus signatures systemd requires for the
// properties cove sends, for every spec in testdata: the workload's unit
// as cove run starts it and the health timer and probe service; a
// mismatch makes systemd fail with ENXIO.
func TestSignatures(t *testing.T) {
	want := map[string]string{
		"Description": "s", "Type": "s", "NotifyAccess": "s", "ExecStart": "a(sasb)", "Slice": "s",
		"KillMode": "s", "KillSignal": "i", "SuccessExitStatus": "(aiai)", "Environment": "as", "SyslogIdentifier": "s", "Restart": "s",
		"RestartUSec": "t", "TimeoutStopUSec": "t", "MemoryMax": "t", "CPUQuotaPerSecUSec": "t",
		"TasksMax": "t", "CollectMode": "s", "RemainAfterExit": "b", "DevicePolicy": "s", "IOAccounting": "b",
		"ExecStop": "a(sasb)", "ExecStopPost": "a(sasb)", "ExecStartPost": "a(sasb)", "DeviceAllow": "a(ss)",
		"Wants": "as", "Requires": "as", "BindsTo": "as", "After": "as", "OnSuccess": "as", "OnFailure": "as",
		"StartLimitBurst": "u", "StartLimitIntervalUSec": "t",
		"OnActiveSec": "t", "OnUnitActiveSec": "t", "AccuracyUSec": "t", "RemainAfterElapse": "b",
		"RuntimeDirectory": "as", "RuntimeDirectoryPreserve": "s",
	}
	for _, f := range goldenSpecs(t) {
		s := loadFile(t, f)
		u := ForRun(compile(t, s), RunOptions{Remove: true, UserNS: s.Name})
		u = ForRun(u, RunOptions{Restart: "no"})
		if s.Container != nil {
			var err error
			if u, err = WithTerminal(u, "xterm"); err != nil {
				t.Fatal(err)
			}
		}
		all := []Unit{u}
		if timer, probe, ok := CompileHealth(s, goldenOptions); ok {
			all = append(all, timer, probe)
		}
		for _, u := range all {
			for _, p := range u.Properties() {
				sig, ok := want[p.Name]
				if !ok {
					t.Errorf("%s: %s: property %s has no expected signature", f, u.Name, p.Name)
				} else if got := dbus.SignatureOf(p.Value).String(); got != sig {
					t.Errorf("%s: %s: %s: signature %s, systemd wants %s", f, u.Name, p.Name, got, sig)
				}
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
