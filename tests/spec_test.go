package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// good is a valid spec; the malformed cases replace or extend it.
const good = `version = 1
kind = "container"
[container]
rootfs = "/var/tmp"
command = ["/bin/true"]
`

// TestMalformedSpecs: each bad spec makes cove validate and cove run exit
// 2 with FILE:LINE:COL, and no unit is created.
func TestMalformedSpecs(t *testing.T) {
	need(t)
	cases := []struct {
		name, file, text, where, msg string
	}{
		{"unknown-top", "bad.toml", good + "colour = \"red\"\n", ":6:1:", "colour"},
		{"unknown-container-key", "bad.toml", strings.Replace(good, "rootfs", "rootf", 1), ":4:1:", "rootf"},
		{"unknown-table", "bad.toml", good + "[network]\nmode = \"x\"\n", ":6:", "network"},
		{"command-string", "bad.toml", strings.Replace(good, `["/bin/true"]`, `"/bin/true"`, 1), ":5:1:", "command"},
		{"memory-bool", "bad.toml", good + "[resources]\nmemory = true\n", ":7:1:", "memory"},
		{"memory-suffix", "bad.toml", good + "[resources]\nmemory = \"256X\"\n", ":7:1:", "memory"},
		{"memory-negative", "bad.toml", good + "[resources]\nmemory = \"-1M\"\n", ":7:1:", "memory"},
		{"cpus-string", "bad.toml", good + "[resources]\ncpus = \"half\"\n", ":7:1:", "cpus"},
		{"pids-negative", "bad.toml", good + "[resources]\npids = -4\n", ":7:1:", "pids"},
		{"duration", "bad.toml", good + "[service]\nstop_timeout = \"10 parsecs\"\n", ":7:1:", "stop_timeout"},
		{"duration-negative", "bad.toml", good + "[service]\nrestart_delay = \"-1s\"\n", ":7:1:", "restart_delay"},
		{"restart", "bad.toml", good + "[service]\nrestart = \"sometimes\"\n", ":7:1:", "restart"},
		{"relative-rootfs", "bad.toml", strings.Replace(good, `"/var/tmp"`, `"var/tmp"`, 1), ":4:1:", "rootfs"},
		{"dotdot-rootfs", "bad.toml", strings.Replace(good, `"/var/tmp"`, `"/var/../etc"`, 1), ":4:1:", "rootfs"},
		{"newline-description", "bad.toml", good + "description = \"x\\nExecStartPre=/bin/evil\"\n", ":6:1:", "description"},
		{"newline-arg", "bad.toml", strings.Replace(good, `["/bin/true"]`, `["/bin/true", "a\nb"]`, 1), ":5:1:", "command"},
		{"duplicate-key", "bad.toml", good + "version = 1\n", ":6:", "version"},
		{"empty-command", "bad.toml", strings.Replace(good, `["/bin/true"]`, `[]`, 1), ":5:1:", "command"},
		{"unsupported-kind", "bad.toml", strings.Replace(good, `"container"`, `"pod"`, 1), ":2:1:", "kind"},
		{"version-2", "bad.toml", strings.Replace(good, "version = 1", "version = 2", 1), ":1:1:", "version"},
		{"bad-user", "bad.toml", good + "user = \"root\"\n", ":6:1:", "user"},
		{"bad-network", "bad.toml", good + "network = \"bridge\"\n", ":6:1:", "network"},
		{"bad-hostname", "bad.toml", good + "hostname = \"-x\"\n", ":6:1:", "hostname"},
		{"bad-cap", "bad.toml", good + "[security]\ncap_add = [\"CAP_FLY\"]\n", ":7:1:", "CAP_FLY"},
		{"syntax", "bad.toml", good + "description = \"unterminated\n", ":6:", ""},
		{"name-dotdot", "..x.toml", good, ": name:", `"..x"`},
		{"name-space", "a b.toml", good, ": name:", `"a b"`},
		{"name-upper", "Web.toml", good, ": name:", `"Web"`},
	}
	before := listUnits(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(workDir, "specs", c.name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, c.file)
			if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"validate", path}, {"run", "-d", path}} {
				r := cove(t, args...)
				if r.code != 2 {
					t.Errorf("cove %s: exit %d, want 2\n%s%s", args[0], r.code, r.stdout, r.stderr)
				}
				if !strings.Contains(r.stderr, path+c.where) || !strings.Contains(r.stderr, c.msg) {
					t.Errorf("cove %s: stderr lacks %q and %q:\n%s", args[0], path+c.where, c.msg, r.stderr)
				}
			}
		})
	}
	if after := listUnits(t); after != before {
		t.Errorf("bad specs changed the units:\nbefore: %s\nafter: %s", before, after)
	}
}

// listUnits lists every cove unit systemd has loaded.
func listUnits(t *testing.T) string {
	t.Helper()
	return inside(t, "systemctl", "list-units", "--all", "--no-legend", "--plain", "cove-*").stdout
}

// TestRenderMatchesTransient: the unit file cove render prints and the
// transient unit cove run creates from the same spec are the same unit to
// systemd.
func TestRenderMatchesTransient(t *testing.T) {
	need(t)
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
	props := []string{"Description", "Type", "NotifyAccess", "ExecStart", "ExecStop", "Slice", "KillMode",
		"Environment", "SyslogIdentifier", "Restart", "RestartUSec", "TimeoutStopUSec", "MemoryMax",
		"CPUQuotaPerSecUSec", "TasksMax"}
	unit := "cove-same.service"
	text := mustCove(t, "render", path)
	if r := insideStdin(t, text, "sh", "-c", "cat > /run/systemd/system/"+unit+" && systemctl daemon-reload"); r.code != 0 {
		t.Fatalf("install rendered unit: %s", r.stderr)
	}
	fromFile := showAll(t, unit, props)
	inside(t, "sh", "-c", "rm /run/systemd/system/"+unit+" && systemctl daemon-reload")
	cleanupWorkload(t, "same")
	mustCove(t, "run", "-d", path)
	fromBus := showAll(t, unit, props)
	for _, p := range props {
		if fromFile[p] != fromBus[p] {
			t.Errorf("%s differs:\n file: %s\n  bus: %s", p, fromFile[p], fromBus[p])
		}
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
