package cli

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/spec"
)

// manPages runs cove __man into a new directory and returns it with the
// root that ran it.
func manPages(t *testing.T) (string, *cobra.Command) {
	t.Helper()
	dir := t.TempDir()
	env, _ := testEnv()
	root := newRoot(env)
	if code := execute(context.Background(), env, root, []string{manVerb, dir}); code != 0 {
		t.Fatalf("cove %s %s: exit %d: %s", manVerb, dir, code, env.Stderr)
	}
	return dir, root
}

// TestManPages: cove __man writes one page for each command help shows
// (cove.1, cove-run.1, cove-image-pull.1, …) and nothing else in man1,
// each with a NAME line that whatis reads.
func TestManPages(t *testing.T) {
	dir, root := manPages(t)
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
	walk(root)
	slices.Sort(want)
	entries, err := os.ReadDir(filepath.Join(dir, "man1"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("man1:\n got %q\nwant %q", got, want)
	}
	for _, page := range []string{"cove.1", "cove-run.1", "cove-image-pull.1", "cove-network-ls.1"} {
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
	for _, hidden := range []string{manVerb, "launch"} {
		if slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, hidden) }) {
			t.Errorf("a page for the hidden verb %s", hidden)
		}
	}
}

// TestSpecManPage: cove.toml(5) names every key of the spec schema,
// tables as [table] and arrays of tables as [[table]], with its type and
// the cove run flags that set it, and the files' layout.
func TestSpecManPage(t *testing.T) {
	dir, _ := manPages(t)
	data, err := os.ReadFile(filepath.Join(dir, "man5", "cove.toml.5"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	for _, k := range spec.Keys() {
		entry := "\n.TP\n.B " + keyHeading(k) + "\nType: " + k.Type.String() + ".\n"
		if !strings.Contains(page, entry) {
			t.Errorf("cove.toml.5 has no entry %q", entry)
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
// fixed date, so two runs write the same bytes; a SOURCE_DATE_EPOCH that
// is no number is a usage error; __man is hidden from help and
// completion.
func TestManDeterministic(t *testing.T) {
	read := func(dir string) map[string]string {
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
	t.Setenv("SOURCE_DATE_EPOCH", "")
	a, _ := manPages(t)
	b, _ := manPages(t)
	first := read(a)
	if !maps.Equal(first, read(b)) || !strings.Contains(first["man1/cove.1"], `"Jan 2026"`) {
		t.Errorf("two runs without SOURCE_DATE_EPOCH differ or are not dated Jan 2026:\n%s", first["man1/cove.1"][:200])
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	c, _ := manPages(t)
	for name, text := range read(c) {
		if !strings.Contains(text, `"Nov 2023"`) {
			t.Errorf("%s is not dated SOURCE_DATE_EPOCH (Nov 2023):\n%.200s", name, text)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if r := cove(manVerb, t.TempDir()); r.code != exitUsage || !strings.Contains(r.stderr, "SOURCE_DATE_EPOCH") {
		t.Errorf("cove __man with a bad SOURCE_DATE_EPOCH: %+v", r)
	}
	if r := cove("--help"); strings.Contains(r.stdout, manVerb) {
		t.Errorf("cove --help shows %s", manVerb)
	}
	if r := cove(cobra.ShellCompRequestCmd, "__"); strings.Contains(r.stdout, manVerb) {
		t.Errorf("completion offers %s: %q", manVerb, r.stdout)
	}
}
