package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/spec"
)

// pullCommand is cove pull (or, path "image pull", cove image pull): an
// image into the store, with per-layer progress.
func pullCommand(env *Env, path string) *cobra.Command {
	var quiet bool
	var policy string
	c := &cobra.Command{
		Use:   "pull [flags] REF",
		Short: "pull an image from a registry into the store",
		Long: `Pull an image from a registry into the store, showing per-layer progress, and
print its digest. A short name is looked up in the registries of
/etc/cove/registries.toml.`,
		Example: examples(path, "busybox:latest", "-q registry.example:5000/app/web:1.4", "--policy missing debian:12"),
		Args:    wantArgs(1, 1, "one image reference"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var progress io.Writer
			if !quiet {
				progress = env.Stdout
			}
			rec, err := image.Ensure(cmd.Context(), progress, args[0], policy)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, rec.Digest)
			return nil
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image's digest")
	c.Flags().StringVar(&policy, "policy", spec.PullAlways, "always; missing: only when not in the store; never: only check it is there")
	return renamed(path, c)
}

// pushCommand is cove push (and cove image push): an image of the store
// to the registry its name names.
func pushCommand(env *Env, path string) *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "push [flags] REF [DEST]",
		Short: "push an image of the store to a registry",
		Long: `Push an image of the store to the registry its name names, under that name, or
to DEST (REGISTRY/REPO[:TAG]), as podman push does, showing per-layer progress,
and print the digest the registry has it by. A layer the registry has, or can
mount from the repository the image was pulled from, is not sent (then the
image keeps its digest); any other is written anew from the store and
gzip-compressed. Credentials are those of cove login and Docker's config.json.`,
		Example: examples(path, "registry.example:5000/app/web:1.4", "-q localhost/tools:2 127.0.0.1:5000/tools:2"),
		Args:    wantArgs(1, 2, "an image reference, and where to push it"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := image.OpenDefault()
			if err != nil {
				return err
			}
			var opt image.PushOptions
			if len(args) == 2 {
				opt.Dest = args[1]
			}
			if !quiet {
				opt.Progress = image.NewProgressPrinter(env.Stdout)
			}
			p, err := st.Push(cmd.Context(), args[0], opt)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, p.Digest)
			return nil
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the pushed digest")
	return renamed(path, c)
}

// renamed gives c, a verb both at the top and under a group (cove pull
// and cove image pull), the name of path's last word.
func renamed(path string, c *cobra.Command) *cobra.Command {
	_, rest, _ := strings.Cut(c.Use, " ")
	c.Use = path[strings.LastIndex(path, " ")+1:] + " " + rest
	return c
}

// examples are the Example of verb path: one line per argument list.
func examples(path string, argLists ...string) string {
	lines := make([]string, len(argLists))
	for i, a := range argLists {
		lines[i] = strings.TrimRight("  cove "+path+" "+a, " ")
	}
	return strings.Join(lines, "\n")
}

// imageRow is one line of cove images.
type imageRow struct {
	Name    string    `json:"name"` // "REGISTRY/REPO:TAG" or "<none>"
	ID      string    `json:"id"`   // the manifest digest's hex
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"`
}

// imagesCommand is cove images (or, path "image ls", cove image ls):
// the images in the store.
func imagesCommand(env *Env, path string) *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:     "images [flags]",
		Short:   "list the images in the store",
		Example: examples(path, "", "--json", "--format '{{.Name}} {{size .Size}}'"),
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			st, err := image.OpenDefault()
			if err != nil {
				return err
			}
			return listImages(env.Stdout, st, out)
		},
	}
	out = outputFlags(c)
	return renamed(path, c)
}

// listImages prints the images in st: NAME, IMAGE ID, CREATED (how long
// ago) and SIZE, or as out says.
func listImages(w io.Writer, st *image.Store, out *output) error {
	recs, err := st.List()
	if err != nil {
		return err
	}
	rows := []imageRow{}
	for _, r := range recs {
		names := r.Names
		if len(names) == 0 {
			names = []string{"<none>"}
		}
		for _, n := range names {
			rows = append(rows, imageRow{Name: n, ID: r.ID(), Digest: r.Digest.String(), Created: r.Created, Size: r.Size})
		}
	}
	if done, err := out.print(w, rows); done {
		return err
	}
	tw := newTable(w, 2)
	fmt.Fprintln(tw, "NAME\tIMAGE ID\tCREATED\tSIZE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.ID[:12], ago(r.Created), image.HumanSize(r.Size))
	}
	return tw.Flush()
}

// imageInspectCommand is cove image inspect: what the store holds about
// images, as JSON or as --format says.
func imageInspectCommand(env *Env) *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:               "inspect [flags] REF...",
		Short:             "show what the store holds about images, as JSON",
		Example:           examples("image inspect", "busybox:latest", "busybox:latest debian:12", "--format '{{.Digest}}' busybox:latest"),
		Args:              wantArgs(1, -1, "one or more image references"),
		ValidArgsFunction: completeImages(true),
		RunE: func(_ *cobra.Command, args []string) error {
			st, err := image.OpenDefault()
			if err != nil {
				return err
			}
			all := []image.Inspection{}
			for _, ref := range args {
				in, err := st.Inspect(ref)
				if err != nil {
					return err
				}
				all = append(all, in)
			}
			if done, err := out.print(env.Stdout, all); done {
				return err
			}
			return printJSON(env.Stdout, all)
		},
	}
	out = outputFlags(c)
	return c
}

// imageCommand is the group cove image SUBCOMMAND.
func imageCommand(env *Env, h imageIO) *cobra.Command {
	c := group("image", "manage images")
	c.Example = "  cove image ls\n  cove image inspect busybox:latest\n  cove image prune"
	c.AddCommand(imagesCommand(env, "image ls"), pullCommand(env, "image pull"), pushCommand(env, "image push"), imageInspectCommand(env),
		rmiCommand(env, "image rm"), imagePruneCommand(env), h.importCommand(env, "image import"), h.saveCommand(env, "image save"))
	c.Short += ": " + strings.Join(subcommands(c), ", ")
	return c
}

// group is the command of a group of subcommands: without one (or with
// an unknown one) it is a usage error naming them.
func group(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:   name + " COMMAND",
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("%s: unknown command %q; want one of %s", verb(cmd), args[0], strings.Join(subcommands(cmd), ", "))
			}
			return usagef("%s: want one of %s", verb(cmd), strings.Join(subcommands(cmd), ", "))
		},
	}
}

// subcommands are the names of c's subcommands, sorted.
func subcommands(c *cobra.Command) []string {
	var names []string
	for _, s := range c.Commands() {
		names = append(names, s.Name())
	}
	return names
}
