package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/cli"
	"github.com/cove-project/cove/spec"
)

// manPages runs the program into a new directory, the pages dated epoch
// (SOURCE_DATE_EPOCH), and returns the directory.
func manPages(t *testing.T, epoch string) string {
	t.Helper()
	dir := t.TempDir()
	var stderr bytes.Buffer
	if code := run([]string{"-readme", "../../README.md", dir}, epoch, &stderr); code != exitOK {
		t.Fatalf("man %s: exit %d: %s", dir, code, &stderr)
	}
	return dir
}

// readPages returns the pages of dir's man1 and man5 by their path
// below dir.
func readPages(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, sub := range []string{"man1", "man5"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[sub+"/"+e.Name()] = string(data)
		}
	}
	return files
}

// helpPages are the man1 pages of the commands cove's help shows:
// cove.1, cove-run.1, cove-image-pull.1, …, sorted.
func helpPages() []string {
	var want []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub)
			}
		}
	}
	walk(cli.Root())
	slices.Sort(want)
	return want
}

// TestManPages: one page for each command help shows (cove.1,
// cove-run.1, cove-image-pull.1, …) and nothing else in man1, each with
// a NAME line that whatis reads; the hidden verbs get none.
func TestManPages(t *testing.T) {
	dir := manPages(t, "")
	entries, err := os.ReadDir(filepath.Join(dir, "man1"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := helpPages(); !slices.Equal(got, want) {
		t.Errorf("man1:\n got %q\nwant %q", got, want)
	}
	for _, page := range []string{"cove.1", "cove-run.1", "cove-image-pull.1", "cove-network-ls.1", "cove-completion-bash.1"} {
		if !slices.Contains(got, page) {
			t.Errorf("no %s", page)
		}
	}
	run, err := os.ReadFile(filepath.Join(dir, "man1", "cove-run.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{".SH NAME\ncove-run - run a workload", "--publish", ".SH EXAMPLE"} {
		if !bytes.Contains(run, []byte(s)) {
			t.Errorf("cove-run.1 lacks %q", s)
		}
	}
	for _, hidden := range []string{"__man", "launch"} {
		if slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, hidden) }) {
			t.Errorf("a page for the hidden verb %s", hidden)
		}
	}
}

// TestManNoHostDefault: the builder's COVE_HOST is not shown as the
// default of --host.
func TestManNoHostDefault(t *testing.T) {
	t.Setenv("COVE_HOST", "unix:///builder/api.sock")
	for name, text := range readPages(t, manPages(t, "")) {
		if strings.Contains(text, "builder") {
			t.Errorf("%s shows the builder's COVE_HOST", name)
		}
	}
}

// TestSpecManPage: cove.toml(5) names every key of the spec schema,
// tables as [table] and arrays of tables as [[table]], with the README's
// default and meaning where its reference has a row for the key, its
// type and the cove run flags that set it, and the files' layout.
func TestSpecManPage(t *testing.T) {
	page := readPages(t, manPages(t, ""))["man5/cove.toml.5"]
	for _, k := range spec.Keys() {
		heading := "\n.TP\n.B " + keyHeading(k) + "\n"
		_, rest, found := strings.Cut(page, heading)
		entry, _, _ := strings.Cut(rest, "\n.TP\n")
		if !found || !strings.Contains(entry+"\n", "Type: "+k.Type.String()+".\n") {
			t.Errorf("cove.toml.5 has no entry for %s with its type:\n%s", k.Path, entry)
		}
	}
	for _, s := range []string{
		"\n.B service.replicas\nDefault: (none: one unit).\ncontainers: run that many instances",
		"\n.B resources.memory\nDefault: no limit.\nMemoryMax=; 512K, 256M",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("cove.toml.5 lacks the README's prose %q", s)
		}
	}
	for _, s := range []string{"\n.B [[container.mount]]\n", "\n.B [resources]\n", "cove run \\-\\-memory: memory limit",
		"cove run \\-p, \\-\\-publish:", ".BI /etc/cove/networks/ NAME .toml", ".BI /etc/cove/volumes/ NAME .toml", ".SH NAME\ncove.toml \\- "} {
		if !strings.Contains(page, s) {
			t.Errorf("cove.toml.5 lacks %q", s)
		}
	}
}

// TestManDeterministic: the pages are dated SOURCE_DATE_EPOCH, else a
// fixed date, so two runs write the same bytes.
func TestManDeterministic(t *testing.T) {
	first := readPages(t, manPages(t, ""))
	if !maps.Equal(first, readPages(t, manPages(t, ""))) || !strings.Contains(first["man1/cove.1"], `"Jan 2026"`) {
		t.Errorf("two runs without SOURCE_DATE_EPOCH differ or are not dated Jan 2026:\n%.200s", first["man1/cove.1"])
	}
	for name, text := range readPages(t, manPages(t, "1700000000")) {
		if !strings.Contains(text, `"Nov 2023"`) {
			t.Errorf("%s is not dated SOURCE_DATE_EPOCH (Nov 2023):\n%.200s", name, text)
		}
	}
}

// TestManUsage: a SOURCE_DATE_EPOCH that is no number, or not one DIR,
// exits 2 with what is wrong, and writes nothing.
func TestManUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args        []string
		epoch, want string
	}{
		{[]string{dir}, "yesterday", `man: SOURCE_DATE_EPOCH "yesterday": want seconds since 1970`},
		{nil, "", "usage: go run ./packaging/man [-readme FILE] DIR"},
		{[]string{dir, dir}, "", "usage: go run ./packaging/man [-readme FILE] DIR"},
	} {
		var stderr bytes.Buffer
		if code := run(c.args, c.epoch, &stderr); code != exitUsage || stderr.String() != c.want+"\n" {
			t.Errorf("man %q with SOURCE_DATE_EPOCH=%q: exit %d, stderr %q; want exit 2 and %q", c.args, c.epoch, code, &stderr, c.want)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("refused runs wrote %v (%v)", entries, err)
	}
}
