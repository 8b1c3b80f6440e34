package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/hostconf"
	"github.com/cove-project/cove/internal/image/stored"
)

// completionTimeout bounds how long a completion waits for systemd or the
// API; a shell must not hang on a tab.
const completionTimeout = 2 * time.Second

// specExt is the extension of spec files.
const specExt = "toml"

// completeWorkloads completes workload names, what cove ps lists: as the
// first argument only, or (many) as every argument. Where neither
// systemd nor the API answers there are no candidates.
func completeWorkloads(env *Env, many bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if !many && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(contextOf(cmd), completionTimeout)
		defer cancel()
		var names []string
		_ = withBackend(ctx, env, func(b api.Backend) error { // an error: no candidates
			rows, err := b.ListStates(ctx)
			for _, r := range rows {
				names = append(names, r.Name)
			}
			return err
		})
		return candidates(names, args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeImages completes image references, what cove images lists: as
// the first argument only, or (many) as every argument.
func completeImages(many bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if !many && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return candidates(imageNames(), args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// imageNames are the names of the images in the store; none when there
// is no store (completing only reads: stored.Open) or it cannot be read.
func imageNames() []string {
	root, err := hostconf.ImageStore(hostconf.Path)
	if err != nil {
		return nil
	}
	st, err := stored.Open(root, nil) // listing asks no registry
	if err != nil {
		return nil
	}
	recs, err := st.List()
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Names...)
	}
	return names
}

// completeSpecFiles completes spec files and directories: the shell's file
// completion, filtered to *.toml.
func completeSpecFiles(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return []cobra.Completion{specExt}, cobra.ShellCompDirectiveFilterFileExt
}

// completeRun completes cove run's first argument: an image reference or
// a spec file in the directory being typed. The command after it is the
// payload's, with nothing to complete.
func completeRun(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return candidates(append(specFiles(toComplete), imageNames()...), nil, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// specFiles are the *.toml files in the directory part of toComplete,
// spelled as it starts ("specs/web.toml" for "specs/w").
func specFiles(toComplete string) []string {
	dir, _ := filepath.Split(toComplete)
	entries, err := os.ReadDir(filepath.Join(".", dir))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), "."+specExt) {
			out = append(out, dir+e.Name())
		}
	}
	return out
}

// completeCommands completes the verbs under those in args (cove help).
func completeCommands(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	parent, rest, err := cmd.Root().Find(args)
	if err != nil || len(rest) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, c := range parent.Commands() {
		if c.IsAvailableCommand() && strings.HasPrefix(c.Name(), toComplete) {
			out = append(out, cobra.CompletionWithDesc(c.Name(), c.Short))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// candidates are the names that start with toComplete and are not among
// args already, sorted and without duplicates.
func candidates(names, args []string, toComplete string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, toComplete) && !slices.Contains(args, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// contextOf is cmd's context, or the background when it has none.
func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
