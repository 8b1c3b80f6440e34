package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/supervisor"
)

// users maps image digests to the workloads that use them.
type users map[string][]string

// imageUsers finds who uses which image in store st: declared specs and
// loaded units (api.Local.ImageUses, which the API's image removal uses
// too).
func imageUsers(ctx context.Context, st *image.Store) (users, error) {
	l := api.NewLocal(declared.Default)
	defer l.Close()
	uses, err := l.ImageUses(ctx)
	if err != nil {
		return nil, err
	}
	u := users{}
	for _, use := range uses {
		if rec, err := st.Lookup(use.Ref); err == nil && !slices.Contains(u[rec.Digest.String()], use.Workload) {
			u[rec.Digest.String()] = append(u[rec.Digest.String()], use.Workload)
		}
	}
	return u, nil
}

// rmiCommand is cove rmi (or, path "image rm", cove image rm): it removes
// image names (and the images left with none), refusing images a spec or
// unit uses unless --force stops those first.
func rmiCommand(env *Env, path string) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:               "rmi [flags] REF...",
		Short:             "remove images (refused while a workload uses them)",
		Example:           examples(path, "busybox:latest", "--force registry.example:5000/app/web:1.4"),
		Args:              wantArgs(1, -1, "one or more image references"),
		ValidArgsFunction: completeImages(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeImages(cmd.Context(), env, args, force)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "stop the workloads using the image, then remove it")
	return renamed(path, c)
}

// removeImages removes the images refs (see rmiCommand).
func removeImages(ctx context.Context, env *Env, refs []string, force bool) error {
	st, err := image.OpenDefault()
	if err != nil {
		return err
	}
	return withConn(ctx, func(conn *supervisor.Conn) error {
		use, err := imageUsers(ctx, st)
		if err != nil {
			return err
		}
		for _, ref := range refs {
			if err := removeImage(ctx, env, st, conn, use, ref, force); err != nil {
				return err
			}
		}
		return nil
	})
}

// removeImage removes one name, after checking (or, forced, stopping) its
// image's users.
func removeImage(ctx context.Context, env *Env, st *image.Store, conn *supervisor.Conn, use users, ref string, force bool) error {
	rec, err := st.Lookup(ref)
	if err != nil {
		return err
	}
	who := use[rec.Digest.String()]
	if len(who) > 0 && !force {
		return fmt.Errorf("rmi %s: image %s is used by %s (stop and remove them, or use --force to stop them)", ref, rec.ID()[:12], strings.Join(who, ", "))
	}
	for _, name := range who {
		if err := conn.Stop(ctx, name); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
			return err
		}
	}
	removed, err := st.Remove(ref)
	if err != nil {
		return err
	}
	for _, n := range removed.Untagged {
		fmt.Fprintf(env.Stdout, "Untagged: %s\n", n)
	}
	if removed.Deleted != nil {
		fmt.Fprintf(env.Stdout, "Deleted: %s\n", removed.Deleted)
	}
	return nil
}

// imagePruneCommand is cove image prune: it removes the images no spec
// and no unit uses, and the layers only they had.
func imagePruneCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "prune",
		Short:   "remove the images no workload uses",
		Example: "  cove image prune",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return pruneImages(cmd.Context(), env) },
	}
}

// pruneImages removes the images no spec and no unit uses.
func pruneImages(ctx context.Context, env *Env) error {
	st, err := image.OpenDefault()
	if err != nil {
		return err
	}
	use, err := imageUsers(ctx, st)
	if err != nil {
		return err
	}
	pruned, err := st.Prune(func(r image.ImageRecord) bool { return len(use[r.Digest.String()]) > 0 })
	if err != nil {
		return err
	}
	for _, d := range pruned.Images {
		fmt.Fprintf(env.Stdout, "Deleted image: %s\n", d)
	}
	for _, d := range pruned.Layers {
		fmt.Fprintf(env.Stdout, "Deleted layer: %s\n", d)
	}
	return nil
}
