package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// pullCmd pulls an image into the store, showing per-layer progress.
func pullCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("pull", "[-q] [--policy always|missing|never] REF", env.Stderr)
	quiet := fs.Bool("q", false, "print only the image's digest")
	fs.BoolVar(quiet, "quiet", false, "print only the image's digest")
	policy := fs.String("policy", spec.PullAlways, "missing: only when not in the store; never: only check it is there")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("pull: want one image reference, got %d arguments", fs.NArg())
	}
	var progress io.Writer
	if !*quiet {
		progress = env.Stdout
	}
	rec, err := image.Ensure(ctx, progress, fs.Arg(0), *policy)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, rec.Digest)
	return nil
}

// imageRow is one line of cove images.
type imageRow struct {
	Name    string    `json:"name"` // "REGISTRY/REPO:TAG" or "<none>"
	ID      string    `json:"id"`   // the manifest digest's hex
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"`
}

// imagesCmd lists the images in the store.
func imagesCmd(_ context.Context, env *Env, args []string) error {
	fs := newFlags("images", "[--json]", env.Stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	st, err := image.OpenDefault()
	if err != nil {
		return err
	}
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
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGE ID\tCREATED\tSIZE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.ID[:12], r.Created.Format(time.DateTime), image.HumanSize(r.Size))
	}
	return tw.Flush()
}

// imageInspectCmd prints what the store holds about images, as JSON.
func imageInspectCmd(_ context.Context, env *Env, args []string) error {
	fs := newFlags("image inspect", "REF...", env.Stderr)
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("image inspect: want one or more image references")
	}
	st, err := image.OpenDefault()
	if err != nil {
		return err
	}
	out := []image.Inspection{}
	for _, ref := range fs.Args() {
		in, err := st.Inspect(ref)
		if err != nil {
			return err
		}
		out = append(out, in)
	}
	e := json.NewEncoder(env.Stdout)
	e.SetIndent("", "  ")
	return e.Encode(out)
}

// imageCmd dispatches cove image SUBCOMMAND.
func imageCmd(ctx context.Context, env *Env, args []string) error {
	subs := map[string]func(context.Context, *Env, []string) error{
		"ls": imagesCmd, "pull": pullCmd, "inspect": imageInspectCmd, "rm": rmiCmd, "prune": imagePruneCmd,
		"import": importCmd, "save": saveCmd,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		return usagef("image: want one of ls, pull, inspect, rm, prune, import, save")
	}
	return subs[args[0]](ctx, env, args[1:])
}

// completeImage completes an image container's launcher configuration
// from the store and creates its state directory (see image.Store.Complete).
func completeImage(c launch.Config) (launch.Config, error) {
	st, err := image.OpenDefault()
	if err != nil {
		return c, err
	}
	if c, err = st.Complete(c); err != nil {
		return c, fmt.Errorf("launch %s: %w", c.Name, err)
	}
	return c, image.PrepareState(c.Image.StateDir, c.Image.Digest)
}
