package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// updateCommand is cove update: it pulls the tags of declared image
// workloads again and restarts each running one whose tag now names a
// newer image, rolling the tag back to the previous image (and restarting
// on it) when the workload does not become ready on the new one.
func updateCommand(env *Env) *cobra.Command {
	var auto bool
	c := &cobra.Command{
		Use:   "update [flags] [NAME...]",
		Short: "pull newer images for declared workloads and restart them (rolling back on failure)",
		Long: `Pull the images of declared image workloads again (those named, or all) and
restart each running one whose tag now names a newer image; a workload that does
not become ready on the new image is rolled back to the previous one.`,
		Example: `  cove update
  cove update web
  cove update --auto`,
		ValidArgsFunction: completeWorkloads(env, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			return update(cmd.Context(), env, args, auto)
		},
	}
	c.Flags().BoolVar(&auto, "auto", false, `update the workloads with auto_update = "registry" (what cove-auto-update.timer runs)`)
	return c
}

// update updates the workloads names (see updateCommand).
func update(ctx context.Context, env *Env, names []string, auto bool) error {
	specs, err := updatable(names, auto)
	if err != nil {
		return err
	}
	st, err := image.OpenDefault()
	if err != nil {
		return err
	}
	return withConn(ctx, func(conn *supervisor.Conn) error {
		var errs []error
		for _, s := range specs {
			errs = append(errs, updateOne(ctx, env.Stdout, st, conn, s))
		}
		return errors.Join(errs...)
	})
}

// updatable returns the declared image workloads to update: those named,
// or with auto those with auto_update = "registry", or all.
func updatable(names []string, auto bool) ([]*spec.Spec, error) {
	files, err := declared.Default.SpecFiles()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if !slices.ContainsFunc(files, func(f declared.File) bool { return f.Name == name }) {
			return nil, noSuchWorkload{name}
		}
	}
	var out []*spec.Spec
	for _, f := range files {
		if len(names) > 0 && !slices.Contains(names, f.Name) {
			continue
		}
		s, err := spec.Load(f.Path, f.Name)
		if err != nil {
			return nil, err
		}
		if c := s.Container; c != nil && c.Image != "" && (!auto || c.AutoUpdate == spec.AutoUpdateRegistry) {
			out = append(out, s)
		}
	}
	if len(out) < len(names) {
		return nil, usagef("update: %d of the names are not declared image workloads", len(names)-len(out))
	}
	return out, nil
}

// updateOne updates one workload (see updateCommand).
func updateOne(ctx context.Context, w io.Writer, st *image.Store, conn *supervisor.Conn, s *spec.Spec) error {
	ref := s.Container.Image
	old, oldErr := st.Lookup(ref)
	rec, err := st.Pull(ctx, ref, image.PullOptions{})
	switch {
	case err != nil:
		return fmt.Errorf("update %s: %w", s.Name, err)
	case oldErr == nil && old.Digest == rec.Digest:
		fmt.Fprintf(w, "%s: up to date (%s)\n", s.Name, rec.Digest)
		return nil
	}
	if t, err := conn.Probe(ctx, s.Name); err != nil || t.MainPID == 0 {
		fmt.Fprintf(w, "%s: pulled %s; not running, so not restarted\n", s.Name, rec.Digest)
		return nil
	}
	err = conn.Restart(ctx, s.Name)
	switch {
	case err == nil:
		fmt.Fprintf(w, "%s: updated to %s\n", s.Name, rec.Digest)
		return nil
	case oldErr != nil:
		return fmt.Errorf("update %s: %w (no previous image to roll back to)", s.Name, err)
	}
	return rollBack(ctx, w, st, conn, s, old, err)
}

// rollBack points the workload's tag at the image it ran before and
// restarts it on that image.
func rollBack(ctx context.Context, w io.Writer, st *image.Store, conn *supervisor.Conn, s *spec.Spec, old image.ImageRecord, cause error) error {
	if err := st.Tag(s.Container.Image, old.Digest); err != nil {
		return errors.Join(fmt.Errorf("update %s: %w", s.Name, cause), err)
	}
	if err := conn.Restart(ctx, s.Name); err != nil {
		return errors.Join(fmt.Errorf("update %s: %w", s.Name, cause), fmt.Errorf("roll back %s: %w", s.Name, err))
	}
	fmt.Fprintf(w, "%s: the new image did not become ready; rolled back to %s\n", s.Name, old.Digest)
	return fmt.Errorf("update %s: rolled back: %w", s.Name, cause)
}
