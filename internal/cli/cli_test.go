package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cove-project/cove/spec"
)

// runAlone runs c as the only verb of a root set up as cove's (flag errors
// are usage errors), with args.
func runAlone(env *Env, c *cobra.Command, args ...string) error {
	root := &cobra.Command{Use: "cove", SilenceErrors: true, SilenceUsage: true}
	root.SetFlagErrorFunc(flagError)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.AddCommand(c)
	root.SetArgs(append([]string{c.Name()}, args...))
	return root.ExecuteContext(context.Background())
}

// cliResult is what a user sees of one cove command line.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cove runs the command line args as cove's Main does, with the API
// (for the verbs that use it) at a socket that does not exist.
func cove(args ...string) cliResult {
	var out, errs bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errs, Host: "unix:///nonexistent/api.sock"}
	code := execute(context.Background(), env, newRoot(env), args)
	return cliResult{code, out.String(), errs.String()}
}

// TestCombinedShortFlags: GNU short flags combine (-dit), long flags take
// two dashes, and cove run stops at the image: what follows is the
// payload's, flags included.
func TestCombinedShortFlags(t *testing.T) {
	env, _ := testEnv()
	run := runCommand(env)
	if err := run.ParseFlags([]string{"-dit", "--rm", "-p", "8080:80", "-e", "A=1", "--name", "web", "busybox", "ls", "-l"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"detach", "interactive", "tty", "rm"} {
		if v, err := run.Flags().GetBool(name); err != nil || !v {
			t.Errorf("run -dit --rm: --%s = %v, %v", name, v, err)
		}
	}
	if got := run.Flags().Args(); !slices.Equal(got, []string{"busybox", "ls", "-l"}) {
		t.Errorf("run's arguments: %q", got)
	}
	for _, args := range [][]string{
		{"-it", "-u", "1000", "web", "--", "sh", "-c", "ls -l"},
		{"-it", "-u", "1000", "web", "sh", "-c", "ls -l"},
	} {
		exec := execCommand(env)
		if err := exec.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		name, command := execArgs(exec, exec.Flags().Args())
		if name != "web" || !slices.Equal(command, []string{"sh", "-c", "ls -l"}) {
			t.Errorf("exec %q: name %q, command %q", args, name, command)
		}
		if v, _ := exec.Flags().GetBool("tty"); !v {
			t.Errorf("exec %q: no --tty", args)
		}
	}
}

// TestSpecKeyFlags: every flag of the spec key table is a flag of cove
// run, with its short form; booleans take no value and repeatable keys
// add one element per flag.
func TestSpecKeyFlags(t *testing.T) {
	env, _ := testEnv()
	run := runCommand(env)
	for _, k := range spec.Keys() {
		for _, fl := range k.Flags {
			f := run.Flags().Lookup(fl.Name)
			if f == nil {
				t.Errorf("cove run has no --%s (key %s)", fl.Name, k.Path)
				continue
			}
			want := "string"
			switch {
			case k.Type == spec.TypeBoolean:
				want = "bool"
			case k.Repeatable():
				want = "list"
			}
			if f.Shorthand != fl.Short || f.Value.Type() != want || f.Usage != fl.Usage {
				t.Errorf("--%s: -%s %s %q; want -%s %s %q", fl.Name, f.Shorthand, f.Value.Type(), f.Usage, fl.Short, want, fl.Usage)
			}
		}
	}
}

// TestRunFlagsSetSpec: the flags that were given reach the spec, short
// forms included, and lists keep every value in order.
func TestRunFlagsSetSpec(t *testing.T) {
	args := []string{"-e", "A=1", "--env", "B=x,y", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp",
		"-v", "/srv:/data:ro", "--read-only", "-w", "/tmp", "-u", "1000:1000", "--memory", "64M"}
	f := &runFlags{lists: map[string]*listValue{}}
	f.define(pflag.NewFlagSet("run", pflag.ContinueOnError))
	if err := f.flags.Parse(args); err != nil {
		t.Fatal(err)
	}
	s := spec.Defaults("t")
	if err := f.apply(s, []string{"/bin/app"}); err != nil {
		t.Fatal(err)
	}
	c := s.Container
	if c.Env["A"] != "1" || c.Env["B"] != "x,y" || !slices.Equal(c.Ports, []string{"8080:80", "127.0.0.1:5353:53/udp"}) ||
		!c.ReadOnly || c.Workdir != "/tmp" || c.User.UID != 1000 || !slices.Equal(c.Command, []string{"/bin/app"}) {
		t.Errorf("spec after the flags: %+v", c)
	}
	if n := len(c.Mounts); n == 0 || c.Mounts[n-1].Source != "/srv" || c.Mounts[n-1].Target != "/data" || !c.Mounts[n-1].ReadOnly {
		t.Errorf("mounts after -v /srv:/data:ro: %+v", c.Mounts)
	}
	if s.Resources.Memory == 0 {
		t.Error("--memory 64M did not set the limit")
	}
}

// TestHelp: cove help CMD and cove CMD --help (and -h) print the same
// help, with examples, for every verb; cove help and cove --help print
// the general help; cove alone prints it and exits 2.
func TestHelp(t *testing.T) {
	env, _ := testEnv()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && sub.Name() != "completion" {
				p := append(slices.Clone(path), sub.Name())
				paths = append(paths, p)
				walk(sub, p)
			}
		}
	}
	walk(newRoot(env), nil)
	if len(paths) < 30 {
		t.Fatalf("only %d commands: %q", len(paths), paths)
	}
	for _, p := range paths {
		help := cove(append([]string{"help"}, p...)...)
		long := cove(append(slices.Clone(p), "--help")...)
		short := cove(append(slices.Clone(p), "-h")...)
		if help.code != 0 || help != long || help != short {
			t.Errorf("cove help %s: %+v\n--help: %+v\n-h: %+v", strings.Join(p, " "), help, long, short)
		}
		if !strings.Contains(help.stdout, "Examples:\n  cove ") || !strings.Contains(help.stdout, "Usage:\n  cove "+strings.Join(p, " ")) {
			t.Errorf("cove help %s has no usage or examples:\n%s", strings.Join(p, " "), help.stdout)
		}
	}
	general := cove("help")
	if general.code != 0 || general != cove("--help") || !strings.Contains(general.stdout, "Available Commands") && !strings.Contains(general.stdout, "Workloads:") {
		t.Errorf("cove help: %+v", general)
	}
	if none := cove(); none.code != exitUsage || none.stdout != general.stdout || none.stderr != "cove: no command given\n" {
		t.Errorf("cove alone: %+v", none)
	}
}

// TestUsageErrors: bad flags, unknown verbs, wrong argument counts and
// -t with -d exit 2 with one "cove: " line naming the verb.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--bogus"}, "cove: run: unknown flag: --bogus (see cove run --help)\n"},
		{[]string{"run", "-rm", "busybox"}, "cove: run: unknown shorthand flag: 'r' in -rm (see cove run --help)\n"},
		{[]string{"ps", "-x"}, "cove: ps: unknown shorthand flag: 'x' in -x (see cove ps --help)\n"},
		{[]string{"nosuch"}, "cove: unknown command \"nosuch\" (see cove --help)\n"},
		{[]string{"__man", "/tmp/man"}, "cove: unknown command \"__man\" (see cove --help)\n"}, // go run ./packaging/man writes the pages
		{[]string{"ps", "extra"}, "cove: ps: takes no arguments\n"},
		{[]string{"status"}, "cove: status: want exactly one workload name, got 0 arguments\n"},
		{[]string{"stop"}, "cove: stop: want at least one workload name, got 0 arguments\n"},
		{[]string{"image"}, "cove: image: want one of import, inspect, ls, prune, pull, push, rm, save\n"},
		{[]string{"image", "bogus"}, "cove: image: unknown command \"bogus\"; want one of import, inspect, ls, prune, pull, push, rm, save\n"},
		{[]string{"network", "ls", "--bogus"}, "cove: network ls: unknown flag: --bogus (see cove network ls --help)\n"},
		{[]string{"help", "nosuch"}, "cove: help: unknown command \"nosuch\" (see cove --help)\n"},
		{[]string{"logs", "-n", "-1", "web"}, "cove: logs: -n -1: want a count of lines (0 for all)\n"},
		{[]string{"kill", "-s", "NOPE", "web"}, "cove: kill: invalid argument \"NOPE\" for \"-s, --signal\" flag: "},
		{[]string{"exec", "web"}, "cove: exec: want a workload name and a command\n"},
		{[]string{"exec", "web", "--"}, "cove: exec: want a workload name and a command\n"},
		{[]string{"--host", "unix:///x", "run", "busybox"}, "cove: run: does not work through the API (--host); run it as root on the host\n"},
	} {
		r := cove(c.args...)
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("cove %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
}

// TestHiddenVerbs: the verbs units run get their arguments exactly as the
// unit compiler wrote them (single-dash, --flag=value, "--" and all), and
// are not in the command tree.
func TestHiddenVerbs(t *testing.T) {
	args := []string{"--name", "web", "-private-network=false", "--caps", "CAP_CHOWN,CAP_KILL", "--env", "A=1", "-h",
		"--", "/bin/sh", "-c", "echo --help -it"}
	for name := range hiddenVerbs() {
		env, _ := testEnv()
		var got []string
		capture := map[string]hiddenVerb{name: func(_ context.Context, _ *Env, a []string) error { got = a; return nil }}
		if code := dispatch(context.Background(), env, capture, append([]string{name}, args...)); code != 0 || !slices.Equal(got, args) {
			t.Errorf("cove %s: exit %d, got %q; want %q", name, code, got, args)
		}
		if c, _, err := newRoot(env).Find([]string{name}); err == nil && c.Name() == name {
			t.Errorf("cove %s is in the command tree", name)
		}
	}
}

// TestCompletion: spec files complete as *.toml (for apply, diff,
// validate, render) and, for cove run, as the .toml files beside; verbs
// and workload names complete without an error where nothing answers.
func TestCompletion(t *testing.T) {
	for _, verb := range []string{"apply", "diff", "validate", "render"} {
		if r := cove(cobra.ShellCompRequestCmd, verb, ""); r.code != 0 || r.stdout != "toml\n:8\n" {
			t.Errorf("complete %s: %+v; want the toml filter", verb, r)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"web.toml", "db.toml", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	if r := cove(cobra.ShellCompRequestCmd, "run", "-d", "w"); r.code != 0 || !strings.HasPrefix(r.stdout, "web.toml\n") || strings.Contains(r.stdout, "db.toml") {
		t.Errorf("complete run w: %+v", r)
	}
	if r := cove(cobra.ShellCompRequestCmd, "run", "busybox", ""); r.code != 0 || strings.Contains(r.stdout, ".toml") {
		t.Errorf("complete run's command: %+v", r)
	}
	if r := cove(cobra.ShellCompRequestCmd, "status", ""); r.code != 0 || r.stdout != ":4\n" || strings.Contains(r.stderr, "cove:") {
		t.Errorf("complete status without an API: %+v", r)
	}
	if r := cove(cobra.ShellCompRequestCmd, "help", "ima"); r.code != 0 || !strings.Contains(r.stdout, "image\t") || !strings.Contains(r.stdout, "images\t") {
		t.Errorf("complete help ima: %+v", r)
	}
	if r := cove("completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "__start_cove") {
		t.Errorf("cove completion bash: exit %d, %d bytes", r.code, len(r.stdout))
	}
}
