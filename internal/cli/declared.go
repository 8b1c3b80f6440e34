package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/supervisor"
)

// applyFlags parses the flags apply and diff share.
func applyFlags(verb string, env *Env, args []string) (declared.Options, bool, error) {
	fs := newFlags(verb, "[--prune] [SPEC-FILE|DIR...]", env.Stderr)
	prune := fs.Bool("prune", false, "also stop and delete workloads that are not in the given specs")
	if ok, err := parse(fs, args); !ok || err != nil {
		return declared.Options{}, false, err
	}
	return declared.Options{Paths: declared.Default, Sources: fs.Args(), Prune: *prune}, true, nil
}

// diffCmd prints what cove apply would do.
func diffCmd(ctx context.Context, env *Env, args []string) error {
	opt, ok, err := applyFlags("diff", env, args)
	if !ok || err != nil {
		return err
	}
	return withBackend(ctx, env, func(b api.Backend) error {
		plan, err := b.Diff(ctx, sources(opt))
		if err != nil {
			return err
		}
		_, err = io.WriteString(env.Stdout, plan.Summary())
		return err
	})
}

// sources are the specs apply and diff work on.
func sources(opt declared.Options) api.Sources {
	return api.Sources{Paths: opt.Sources, Prune: opt.Prune}
}

// applyCmd makes the declared workloads what their specs say.
func applyCmd(ctx context.Context, env *Env, args []string) error {
	opt, ok, err := applyFlags("apply", env, args)
	if !ok || err != nil {
		return err
	}
	return withBackend(ctx, env, func(b api.Backend) error {
		_, err := b.Apply(ctx, sources(opt), env.Stdout)
		return err
	})
}

// startCmd starts workloads' units.
func startCmd(ctx context.Context, env *Env, args []string) error {
	return eachName(ctx, env, "start", args, api.Backend.Start)
}

// restartCmd restarts workloads' units.
func restartCmd(ctx context.Context, env *Env, args []string) error {
	return eachName(ctx, env, "restart", args, api.Backend.Restart)
}

// generatorMain is the systemd generator (cove installed as
// cove-generator in a system-generators directory). systemd passes the
// normal, early and late output directories; units go to the normal one.
func generatorMain(self string, args []string) int {
	if len(args) != 1 && len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: cove-generator NORMAL-DIR [EARLY-DIR LATE-DIR]")
		return exitUsage
	}
	log := kmsg()
	defer log.Close()
	res, err := declared.Generate(declared.Default, args[0], self, log)
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

// enableCmd makes workloads start at boot: it sets [install] wanted_by in
// their specs and applies.
func enableCmd(ctx context.Context, env *Env, args []string) error {
	return setEnabled(ctx, env, "enable", args, true)
}

// disableCmd stops workloads from starting at boot.
func disableCmd(ctx context.Context, env *Env, args []string) error {
	return setEnabled(ctx, env, "disable", args, false)
}

// setEnabled edits and applies each named spec.
func setEnabled(ctx context.Context, env *Env, verb string, args []string, on bool) error {
	fs := newFlags(verb, "[--target TARGET] NAME...", env.Stderr)
	target := fs.String("target", "multi-user.target", "the target that pulls the workload in")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("%s: want at least one workload name", verb)
	}
	var targets []string
	if on {
		targets = []string{*target}
	}
	return withConn(ctx, func(c *supervisor.Conn) error {
		for _, name := range fs.Args() {
			if _, err := declared.SetEnabled(ctx, declared.Options{Paths: declared.Default}, c, name, targets, io.Discard); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "%sd %s\n", verb, name)
		}
		return nil
	})
}
