package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// good is a valid spec.
const good = `version = 1
kind = "container"
[container]
rootfs = "/var/tmp"
command = ["/bin/true"]
`

// badSpecs holds the malformed specs: NAME.toml, and beside it NAME.err
// with every error for it, each line starting with NAME.toml (the spec
// package's TestBadSpecs checks them against spec.Parse).
const badSpecs = "../spec/testdata/bad"

// TestMalformedSpecs: for each malformed spec, cove validate and cove run
// exit 2 and print exactly its errors with the path they were given, and
// no unit is created.
func TestMalformedSpecs(t *testing.T) {
	env.Need(t)
	files, err := filepath.Glob(filepath.Join(badSpecs, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no malformed specs in %s: %v", badSpecs, err)
	}
	before := listUnits(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			path, want := badSpec(t, f)
			for _, args := range [][]string{{"validate", path}, {"run", "-d", path}} {
				r := cove(t, args...)
				if r.Code != 2 || r.Stdout != "" || r.Stderr != want {
					t.Errorf("cove %s: exit %d, want 2\nstdout: %s\nstderr:\n%swant:\n%s", args[0], r.Code, r.Stdout, r.Stderr, want)
				}
			}
		})
	}
	if after := listUnits(t); after != before {
		t.Errorf("bad specs changed the units:\nbefore: %s\nafter: %s", before, after)
	}
}

// badSpec copies the malformed spec f into a directory of its own under
// workDir, keeping its file name (the workload's name comes from it), and
// returns the copy's path and what cove must print for it: "cove: " and
// the lines of f's .err file, each with the copy's path for the file name.
func badSpec(t *testing.T, f string) (path, stderr string) {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := os.ReadFile(strings.TrimSuffix(f, ".toml") + ".err")
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(f)
	dir := filepath.Join(workDir, "specs", strings.TrimSuffix(base, ".toml"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, base)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("cove: ")
	for _, line := range strings.SplitAfter(strings.TrimSuffix(string(errs), "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, base)
		if !ok {
			t.Fatalf("%s: error line %q does not start with %s", f, line, base)
		}
		b.WriteString(path + rest)
	}
	return path, b.String() + "\n"
}

// listUnits lists every cove unit systemd has loaded.
func listUnits(t *testing.T) string {
	t.Helper()
	return inside(t, "systemctl", "list-units", "--all", "--no-legend", "--plain", "cove-*").Stdout
}

// TestRenderMatchesTransient: the unit file cove render prints and the
// transient unit cove run creates from the same spec are the same unit to
// systemd: the same properties, but that the unit file's launcher reads
// its arguments from a file (cove render --launch-config prints them),
// which the transient unit has in ExecStart= itself.
func TestRenderMatchesTransient(t *testing.T) {
	env.Need(t)
	path := filepath.Join(workDir, "same.toml")
	spec := `description = "50% $HOME \"quoted\""
` + strings.Replace(good, `"/var/tmp"`, `"`+rootfs+`"`, 1) + `env = { A = "x y", B = "$PATH %n" }
[resources]
memory = "64M"
cpus = 0.25
pids = 20
[service]
restart = "on-failure"
restart_delay = "250ms"
stop_timeout = "3s"
`
	spec = strings.Replace(spec, `["/bin/true"]`, `["/bin/sh", "-c", "echo \"$A\" '%n' && sleep 1000"]`, 1)
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	props := []string{"Description", "Type", "NotifyAccess", "ExecStop", "Slice", "KillMode",
		"Environment", "SyslogIdentifier", "Restart", "RestartUSec", "TimeoutStopUSec", "MemoryMax",
		"CPUQuotaPerSecUSec", "TasksMax"}
	unit := "cove-same.service"
	text := mustCove(t, "render", path)
	if r := insideStdin(t, text, "sh", "-c", "cat > /run/systemd/system/"+unit+" && systemctl daemon-reload"); r.Code != 0 {
		t.Fatalf("install rendered unit: %s", r.Stderr)
	}
	fromFile := showAll(t, unit, append(props, "ExecStart"))
	inside(t, "sh", "-c", "rm /run/systemd/system/"+unit+" && systemctl daemon-reload")
	cleanupWorkload(t, "same")
	mustCove(t, "run", "-d", path)
	fromBus := showAll(t, unit, append(props, "ExecStart"))
	for _, p := range props {
		if fromFile[p] != fromBus[p] {
			t.Errorf("%s differs:\n file: %s\n  bus: %s", p, fromFile[p], fromBus[p])
		}
	}
	var args []string
	if err := json.Unmarshal([]byte(mustCove(t, "render", "--launch-config", path)), &args); err != nil {
		t.Fatalf("cove render --launch-config: %v", err)
	}
	stage := filepath.Join(filepath.Dir(coveBin), "cove-launch")
	if want := "argv[]=" + stage + " launch --config-file /run/cove/launch/same.json"; !strings.Contains(fromFile["ExecStart"], want) {
		t.Errorf("the unit file's ExecStart does not name the launcher's file: %s", fromFile["ExecStart"])
	}
	for i, a := range args { // as systemd shows a transient unit's: $ doubled (units.EscapeVariables)
		args[i] = strings.ReplaceAll(a, "$", "$$")
	}
	if want := "argv[]=" + stage + " launch " + strings.Join(args, " "); !strings.Contains(fromBus["ExecStart"], want) {
		t.Errorf("the transient unit's ExecStart differs from cove render --launch-config:\n  bus: %s\n want: %s", fromBus["ExecStart"], want)
	}
	out := mustCove(t, "logs", "same")
	if !strings.Contains(out, "x y %n") {
		t.Errorf("payload did not get its arguments and environment verbatim; logs:\n%s", out)
	}
}

// showAll reads properties of a unit.
func showAll(t *testing.T, unit string, props []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range props {
		v := show(t, unit, p)
		// ExecStart's runtime fields (pid, times) differ between runs.
		if i := strings.Index(v, " ; ignore_errors"); i >= 0 {
			v = v[:i]
		}
		m[p] = v
	}
	return m
}
