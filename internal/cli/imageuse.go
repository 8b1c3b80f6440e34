package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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

// rmiCmd removes image names (and the images left with none), refusing
// images a spec or unit uses unless --force stops those first.
func rmiCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("rmi", "[--force] REF...", env.Stderr)
	force := fs.Bool("force", false, "stop the workloads using the image, then remove it")
	fs.BoolVar(force, "f", false, "same as --force")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("rmi: want one or more image references")
	}
	st, err := image.OpenDefault()
	if err != nil {
		return err
	}
	return withConn(ctx, func(conn *supervisor.Conn) error {
		use, err := imageUsers(ctx, st)
		if err != nil {
			return err
		}
		for _, ref := range fs.Args() {
			if err := removeImage(ctx, env, st, conn, use, ref, *force); err != nil {
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

// imagePruneCmd removes the images no spec and no unit uses, and the
// layers only they had.
func imagePruneCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("image prune", "", env.Stderr)
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
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
