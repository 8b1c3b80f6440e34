package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// users maps image digests to the workloads that use them: declared specs
// naming the image and loaded units whose launcher names it.
type users map[string][]string

// imageUsers finds who uses which image in store st.
func imageUsers(ctx context.Context, st *image.Store, conn *supervisor.Conn) (users, error) {
	u := users{}
	add := func(who, ref string) {
		if rec, err := st.Lookup(ref); err == nil {
			u[rec.Digest.String()] = append(u[rec.Digest.String()], who)
		}
	}
	files, err := declared.Default.SpecFiles()
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if s, err := spec.Load(f.Path, f.Name); err == nil && s.Container != nil && s.Container.Image != "" {
			add(s.Name, s.Container.Image)
		}
	}
	ws, err := conn.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		t, err := conn.Probe(ctx, w.Name)
		if err != nil {
			continue // gone meanwhile
		}
		if c, err := launch.ParseArgs(t.Launch); err == nil && c.Image.Ref != "" {
			add(w.Name, c.Image.Ref)
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
		use, err := imageUsers(ctx, st, conn)
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
	return withConn(ctx, func(conn *supervisor.Conn) error {
		use, err := imageUsers(ctx, st, conn)
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
	})
}
