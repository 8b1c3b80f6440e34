package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/supervisor"
)

// fakeWorkloads is a backend with two workloads, web running and old
// stopped.
type fakeWorkloads struct{ api.Backend }

var fakeRows = []api.Workload{
	{Workload: supervisor.Workload{Name: "old", Kind: "container", ActiveState: "inactive", SubState: "dead"}},
	{Workload: supervisor.Workload{Name: "web", Kind: "container", ActiveState: "active", SubState: "running", MainPID: 42, MemoryBytes: 1966080}},
}

func (fakeWorkloads) List(context.Context) ([]api.Workload, error) { return fakeRows, nil }

// ListStates is List without counters (the rows have none).
func (fakeWorkloads) ListStates(context.Context) ([]api.Workload, error) { return fakeRows, nil }

func (fakeWorkloads) Status(_ context.Context, name string) (api.Workload, error) {
	for _, w := range fakeRows {
		if w.Name == name {
			return w, nil
		}
	}
	return api.Workload{}, supervisor.ErrNotFound
}

// apiCove runs cove with --host at an API that serves fakeWorkloads.
func apiCove(t *testing.T) func(args ...string) cliResult {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		api.NewServer(fakeWorkloads{}, api.Options{Containers: t.TempDir()}).Serve(ctx, l, 0)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func(args ...string) cliResult {
		return cove(append([]string{"--host", "unix://" + sock}, args...)...)
	}
}

// TestFormatWorkloads: cove ps and cove status --format run the template
// on each workload (the objects of --json, methods such as State
// included), --format json is --json, table TEMPLATE aligns the columns
// under the fields' names.
func TestFormatWorkloads(t *testing.T) {
	run := apiCove(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "--format", "{{.Name}} {{.State}}"}, "old inactive\nweb running\n"},
		{[]string{"ps", "--format", `{{.Name}}\t{{.MainPID}}`}, "old\t0\nweb\t42\n"},
		{[]string{"ps", "--format", `table {{.Name}}\t{{.MainPID}}`}, "NAME  MAINPID\nold   0\nweb   42\n"},
		{[]string{"status", "--format", "{{.MainPID}} {{size .MemoryBytes}}", "web"}, "42 1.9 MiB\n"},
		{[]string{"status", "--format", "{{json .Name}}", "web"}, "\"web\"\n"},
	} {
		if r := run(c.args...); r.code != 0 || r.stdout != c.want {
			t.Errorf("cove %q: exit %d, %q%s; want %q", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
	for _, verb := range [][]string{{"ps"}, {"status", "web"}} {
		asJSON, format := run(append(verb, "--json")...), run(append(verb, "--format", "json")...)
		if asJSON.code != 0 || asJSON != format || !json.Valid([]byte(asJSON.stdout)) {
			t.Errorf("cove %s: --json %+v, --format json %+v", verb[0], asJSON, format)
		}
		if table := run(append(verb, "--format", "table")...); table != run(verb...) || table.code != 0 {
			t.Errorf("cove %s --format table: %+v, not the default table", verb[0], table)
		}
	}
}

// TestFormatValidate: cove validate lists the valid files through
// --format, as --json (the API's file, name, kind) does, and still
// reports the bad ones on stderr with exit 2.
func TestFormatValidate(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "web.toml"), filepath.Join(dir, "bad.toml")
	files := map[string]string{
		good: "version = 1\nkind = \"container\"\n[container]\nrootfs = \"/\"\ncommand = [\"/bin/true\"]\n",
		bad:  "version = 1\nkind = \"container\"\nbogus = 1\n",
	}
	for f, text := range files {
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := cove("validate", "--format", "{{.Name}} {{.Kind}} {{.File}}", good); r.code != 0 || r.stdout != "web container "+good+"\n" {
		t.Errorf("validate --format: %+v", r)
	}
	r := cove("validate", "--json", good, bad)
	var got []api.ValidSpec
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1 || got[0] != (api.ValidSpec{File: good, Name: "web", Kind: "container"}) {
		t.Errorf("validate --json: %v, %+v", err, r)
	}
	if r.code != exitUsage || !strings.Contains(r.stderr, bad+":3:1: bogus:") {
		t.Errorf("validate --json with a bad file: exit %d, stderr %q", r.code, r.stderr)
	}
	if plain := cove("validate", good); plain.code != 0 || plain.stdout != good+": ok (container web)\n" {
		t.Errorf("validate: %+v", plain)
	}
}

// TestFormatBadTemplate: a template that does not parse, or fails on an
// object, is a usage error (exit 2) that names --format, whatever the
// verb, and nothing is printed.
func TestFormatBadTemplate(t *testing.T) {
	run := apiCove(t)
	for _, verb := range [][]string{
		{"ps"}, {"status", "web"}, {"images"}, {"image", "ls"}, {"image", "inspect", "busybox"},
		{"network", "ls"}, {"volume", "ls"}, {"validate", "web.toml"},
	} {
		r := run(append(verb, "--format", "{{.Name")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, `for "--format" flag: template: --format:1: unclosed action`) || r.stdout != "" {
			t.Errorf("cove %s --format '{{.Name': %+v", strings.Join(verb, " "), r)
		}
	}
	for _, args := range [][]string{{"ps", "--format", "{{.Nope}}"}, {"status", "--format", "{{size .Name}}", "web"}} {
		r := run(args...)
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, "cove: --format ") || r.stdout != "" {
			t.Errorf("cove %q: %+v; want exit 2 naming --format", args, r)
		}
	}
}

// TestFormatImages: cove images --format runs the template on each row
// of --json; the table shows sizes and ages in words.
func TestFormatImages(t *testing.T) {
	it := newImageTest(t)
	var formatted, table bytes.Buffer
	out := &output{}
	if err := out.format.Set("{{.Name}} {{len .ID}} {{size .Size}}"); err != nil {
		t.Fatal(err)
	}
	if err := listImages(&formatted, it.store, out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(it.ref) + ` 64 [0-9.]+ (B|KiB)\n$`).MatchString(formatted.String()) {
		t.Errorf("images --format: %q", formatted.String())
	}
	if err := listImages(&table, it.store, &output{}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\n` + regexp.QuoteMeta(it.ref) + ` +[0-9a-f]{12} +(\d+ \w+|About an? \w+|Less than a second) ago +[0-9.]+ (B|KiB)\n$`).MatchString(table.String()) {
		t.Errorf("images:\n%s", table.String())
	}
}

// TestAgo: a time reads as docker's ages, "-" when unset.
func TestAgo(t *testing.T) {
	if got := ago(time.Now().Add(-3 * time.Hour)); got != "3 hours ago" {
		t.Errorf("ago(3h) = %q", got)
	}
	if got := ago(time.Time{}); got != "-" {
		t.Errorf("ago(zero) = %q", got)
	}
}
