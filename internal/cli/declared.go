package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// applyCommand is cove apply, or (diff) cove diff: what apply would do.
func applyCommand(env *Env, diff bool) *cobra.Command {
	var prune bool
	c := &cobra.Command{
		Use:   "apply [flags] [SPEC-FILE|DIR...]",
		Short: "install specs and start/restart/stop what changed",
		Long: `Validate every spec first (one bad file: nothing changes, all errors listed),
write them to /etc/cove, reload systemd once, start added and restart changed
workloads and leave unchanged ones alone. Without arguments: the specs in
/etc/cove. --prune also stops and deletes workloads no longer declared.`,
		Example: `  cove apply web.toml
  cove apply ./specs
  cove apply --prune ./specs`,
		ValidArgsFunction: completeSpecFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, src := cmd.Context(), api.Sources{Paths: args, Prune: prune}
			return withBackend(ctx, env, func(b api.Backend) error {
				_, err := b.Apply(ctx, src, env.Stdout)
				return err
			})
		},
	}
	if diff {
		c.Use, c.Short = "diff [flags] [SPEC-FILE|DIR...]", "show what cove apply would do"
		c.Long = "Show what cove apply would do: the workloads added, changed (with the changed keys),\nremoved and unchanged."
		c.Example = "  cove diff web.toml\n  cove diff --prune ./specs"
		c.RunE = func(cmd *cobra.Command, args []string) error {
			ctx, src := cmd.Context(), api.Sources{Paths: args, Prune: prune}
			return withBackend(ctx, env, func(b api.Backend) error {
				plan, err := b.Diff(ctx, src)
				if err != nil {
					return err
				}
				_, err = io.WriteString(env.Stdout, plan.Summary())
				return err
			})
		}
	}
	c.Flags().BoolVar(&prune, "prune", false, "also stop and delete workloads that are not in the given specs")
	return viaAPI(c)
}

// generatorMain is the systemd generator (cove installed as
// cove-generator in a system-generators directory). systemd passes the
// normal, early and late output directories; units go to the normal one.
// Only a run for systemd's own (launch.GeneratorDir) writes the running
// workloads' launcher configurations; one by hand into another directory,
// to see the units, leaves them alone.
func generatorMain(self string, args []string) int {
	if len(args) != 1 && len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: cove-generator NORMAL-DIR [EARLY-DIR LATE-DIR]")
		return exitUsage
	}
	log := kmsg()
	defer log.Close()
	paths := declared.Default
	if filepath.Clean(args[0]) != launch.GeneratorDir {
		paths.Launch = ""
	}
	res, err := declared.Generate(paths, args[0], self, log)
	if err != nil {
		return exitFailure
	}
	if res.Failed > 0 {
		fmt.Fprintf(log, "cove-generator: %d specs generated, %d skipped\n", res.Generated, res.Failed)
	}
	return exitOK
}

// kmsgWriter writes each line to the kernel log (where generator output
// belongs: /var and the journal may not be up yet), or to stderr.
type kmsgWriter struct{ f *os.File }

// kmsg opens the kernel log, falling back to stderr.
func kmsg() kmsgWriter {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return kmsgWriter{os.Stderr}
	}
	return kmsgWriter{f}
}

// Write sends every line as one kernel log record at error priority.
func (k kmsgWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if k.f == os.Stderr {
			fmt.Fprintln(k.f, line)
		} else if _, err := fmt.Fprintf(k.f, "<3>%s\n", line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Close closes the kernel log.
func (k kmsgWriter) Close() {
	if k.f != os.Stderr {
		k.f.Close()
	}
}

// enableCommand is cove enable (on) or cove disable: set or clear
// [install] wanted_by in the named specs and apply.
func enableCommand(env *Env, on bool) *cobra.Command {
	var target string
	c := &cobra.Command{
		Use:   "enable [flags] NAME...",
		Short: "start a declared workload at boot",
		Long: `Start declared workloads at boot: set [install] wanted_by in their specs
(comments kept) and apply.`,
		Example:           "  cove enable web\n  cove enable --target graphical.target web",
		Args:              wantArgs(1, -1, "at least one workload name"),
		ValidArgsFunction: completeWorkloads(env, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			var targets []string
			if on {
				targets = []string{target}
			}
			return setEnabled(cmd.Context(), env, verb(cmd), args, targets)
		},
	}
	if on {
		c.Flags().StringVar(&target, "target", "multi-user.target", "the target that pulls the workload in")
	} else {
		c.Use, c.Short = "disable NAME...", "do not start a declared workload at boot"
		c.Long = "Do not start declared workloads at boot: clear [install] wanted_by in their specs\n(comments kept) and apply."
		c.Example = "  cove disable web"
	}
	return c
}

// setEnabled sets the targets of each named declared spec and applies.
func setEnabled(ctx context.Context, env *Env, verb string, names, targets []string) error {
	for _, name := range names {
		if err := declaredName(name); err != nil {
			return err
		}
	}
	return withConn(ctx, func(c *supervisor.Conn) error {
		for _, name := range names {
			if _, err := declared.SetEnabled(ctx, declared.Options{Paths: declared.Default}, c, name, targets, io.Discard); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "%sd %s\n", verb, name)
		}
		return nil
	})
}

// declaredName checks that a spec declares workload name.
func declaredName(name string) error {
	files, err := declared.Default.SpecFiles()
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.Name == name {
			return nil
		}
	}
	return noSuchWorkload{name}
}

// scaleCommand is cove scale NAME=N...: set [service] replicas in the
// named declared specs and apply, which starts or removes only the
// difference.
func scaleCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "scale NAME=N...",
		Short: "run N instances of a declared workload",
		Long: `Run N instances of declared workloads: set [service] replicas in their specs
(comments kept) and apply. Instances 1 … N run (the running ones go on), those
above N are stopped and their writable layers removed. A workload that was
not replicated becomes a template, cove-NAME@.service, whose instances are
NAME@1 … NAME@N.`,
		Example:           "  cove scale web=3\n  cove scale web=5 worker=2",
		Args:              wantArgs(1, -1, "at least one NAME=N"),
		ValidArgsFunction: completeWorkloads(env, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			counts, err := parseScale(args)
			if err != nil {
				return err
			}
			return withConn(cmd.Context(), func(c *supervisor.Conn) error {
				for _, sc := range counts {
					if _, err := declared.SetReplicas(cmd.Context(), declared.Options{Paths: declared.Default}, c, sc.name, sc.n, env.Stdout); err != nil {
						return err
					}
					fmt.Fprintf(env.Stdout, "scaled %s to %d\n", sc.name, sc.n)
				}
				return nil
			})
		},
	}
}

// scaleArg is one NAME=N of cove scale.
type scaleArg struct {
	name string
	n    int
}

// parseScale parses cove scale's arguments: declared workloads and
// counts from 1 to spec.MaxReplicas.
func parseScale(args []string) ([]scaleArg, error) {
	var out []scaleArg
	for _, a := range args {
		name, count, ok := strings.Cut(a, "=")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || n < 1 || n > spec.MaxReplicas {
			return nil, usagef("scale: %q: want NAME=N, N from 1 to %d", a, spec.MaxReplicas)
		}
		if err := declaredName(name); err != nil {
			return nil, err
		}
		out = append(out, scaleArg{name, n})
	}
	return out, nil
}
