package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/volume"
	"github.com/cove-project/cove/spec"
	"github.com/spf13/cobra"
)

// The verbs of cove volume. Each works on this host's volume store
// (volume.Default); those that need to know which workloads use a
// volume ask systemd and read the declared specs, as the API does.

// volumeCreate is cove volume create NAME [--label KEY=VALUE…] [--size
// SIZE]: it creates the volume (or leaves an existing one as it is, as
// docker volume create does) and prints its name. Without labels, or a
// size, a volume file in /etc/cove/volumes gives them.
func volumeCreate(ctx context.Context, env *Env, name string, labels []string, size string) error {
	o, err := volumeOptions(labels, size)
	if err != nil {
		return err
	}
	v, err := volume.Default().Create(name, o)
	if err != nil {
		return volumeUsage(err)
	}
	fmt.Fprintln(env.Stdout, v.Name)
	return nil
}

// volumeOptions reads cove volume create's --label and --size flags
// (size "": none given).
func volumeOptions(labels []string, size string) (volume.Options, error) {
	ls, err := parseLabels(labels)
	if err != nil || size == "" {
		return volume.Options{Labels: ls}, err
	}
	n, err := spec.ParseSize(size)
	if err != nil {
		return volume.Options{}, usagef("--size: %v", err)
	}
	return volume.Options{Labels: ls, Size: n}, nil
}

// parseLabels reads --label KEY=VALUE flags (a bare KEY has an empty
// value, as in Docker); none gives nil.
func parseLabels(labels []string) (map[string]string, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, usagef("--label %q: want KEY=VALUE", l)
		}
		out[k] = v
	}
	return out, nil
}

// volumeList is cove volume ls: every volume, created or declared, as
// docker volume ls shows them (DRIVER, VOLUME NAME) with where each is
// declared; --json and --format show Docker's volume objects.
func volumeList(ctx context.Context, env *Env, out *output) error {
	vs, err := volume.Default().List()
	if err != nil {
		return err
	}
	if done, err := out.print(env.Stdout, dockerVolumes(vs)); done {
		return err
	}
	tw := newTable(env.Stdout, 2)
	fmt.Fprintln(tw, "DRIVER\tVOLUME NAME\tDECLARED")
	for _, v := range vs {
		fmt.Fprintf(tw, "local\t%s\t%s\n", v.Name, v.File)
	}
	return tw.Flush()
}

// volumeInspect is cove volume inspect NAME…: Docker's volume objects,
// as a JSON array, like docker volume inspect. All names are looked up;
// the first missing one fails the command after the others are printed.
func volumeInspect(ctx context.Context, env *Env, names []string) error {
	st := volume.Default()
	var vs []volume.Volume
	var errs []error
	for _, n := range names {
		v, err := st.Get(n)
		if err != nil {
			errs = append(errs, volumeUsage(err))
			continue
		}
		vs = append(vs, v)
	}
	if err := printJSON(env.Stdout, dockerVolumes(vs)); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// dockerVolumes is vs in Docker's terms, never nil (an empty JSON
// array).
func dockerVolumes(vs []volume.Volume) []api.DockerVolume {
	out := []api.DockerVolume{}
	for _, v := range vs {
		out = append(out, api.DockerVolumeOf(v))
	}
	return out
}

// volumeRemove is cove volume rm NAME…: it removes each volume and its
// content, refusing one that a declared spec or a loaded unit (running
// or not) uses, naming them, or that a volume file declares.
func volumeRemove(ctx context.Context, env *Env, names []string) error {
	users, err := volumeUsers(ctx, env)
	if err != nil {
		return err
	}
	st := volume.Default()
	var errs []error
	for _, n := range names {
		switch u := users[n]; {
		case len(u) > 0:
			errs = append(errs, api.VolumeInUseError(n, u))
		default:
			if err := st.Remove(n); err != nil {
				errs = append(errs, volumeUsage(err))
				continue
			}
			fmt.Fprintln(env.Stdout, n)
		}
	}
	return errors.Join(errs...)
}

// volumePrune is cove volume prune: it removes every created volume no
// workload uses and no volume file declares, printing each and the
// space reclaimed, as docker volume prune does.
func volumePrune(ctx context.Context, env *Env) error {
	users, err := volumeUsers(ctx, env)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for name := range users {
		keep[name] = true
	}
	removed, reclaimed, err := volume.Default().Prune(keep)
	if len(removed) > 0 {
		fmt.Fprintln(env.Stdout, "Deleted Volumes:")
		for _, n := range removed {
			fmt.Fprintln(env.Stdout, n)
		}
		fmt.Fprintln(env.Stdout)
	}
	fmt.Fprintf(env.Stdout, "Total reclaimed space: %s\n", image.HumanSize(reclaimed))
	return err
}

// volumeUsers maps each volume to the workloads that use it (see
// api.Server.VolumeUsers).
func volumeUsers(ctx context.Context, env *Env) (map[string][]string, error) {
	srv, done := localServer(env)
	defer done()
	return srv.VolumeUsers(ctx)
}

// localServer is an API server on this host's systemd and declared
// specs, for the answers it computes (nothing listens); done releases
// its connection.
func localServer(env *Env) (srv *api.Server, done func()) {
	l := api.NewLocal(declared.Default)
	return api.NewServer(l, api.Options{Self: env.Self, Paths: declared.Default}), l.Close
}

// volumeUsage makes a bad volume name a usage error (exit status 2).
func volumeUsage(err error) error {
	if errors.Is(err, spec.ErrVolumeName) || errors.Is(err, volume.ErrSize) {
		return usageError{err}
	}
	return err
}

// volumeCommand is cove volume: named volumes under /var/lib/cove/volumes.
func volumeCommand(env *Env) *cobra.Command {
	c := group("volume", "manage named volumes")
	c.Long = `Manage named volumes: directories under /var/lib/cove/volumes/NAME that outlive
containers. A container mounts one with [[container.mount]] type = "volume" or
cove run -v NAME:/path[:ro]; a missing volume is created at first use with what
the image has at that path. /etc/cove/volumes/NAME.toml declares one.`
	c.Example = "  cove volume create data\n  cove run --rm -v data:/data busybox ls /data\n  cove volume rm data"
	c.AddCommand(volumeCreateCommand(env), volumeLsCommand(env), volumeInspectCommand(env),
		volumeRmCommand(env), volumePruneCommand(env))
	c.Short += ": " + strings.Join(subcommands(c), ", ")
	return c
}

// volumeCreateCommand is cove volume create.
func volumeCreateCommand(env *Env) *cobra.Command {
	var labels []string
	var size string
	c := &cobra.Command{
		Use:     "create [flags] NAME",
		Short:   "create a volume (an existing one is left as it is)",
		Example: "  cove volume create data\n  cove volume create --label team=web data\n  cove volume create --size 1G data",
		Args:    wantArgs(1, 1, "exactly one volume name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return volumeCreate(cmd.Context(), env, args[0], labels, size)
		},
	}
	c.Flags().StringArrayVar(&labels, "label", nil, "set a label `KEY=VALUE` (repeatable)")
	c.Flags().StringVar(&size, "size", "", "give the volume its own file system of `SIZE` (16M to 16T, e.g. 1G): writes beyond it fail")
	return c
}

// volumeLsCommand is cove volume ls.
func volumeLsCommand(env *Env) *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:     "ls [flags]",
		Short:   "list the volumes, created or declared",
		Example: "  cove volume ls\n  cove volume ls --json\n  cove volume ls --format '{{.Name}} {{.Mountpoint}}'",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return volumeList(cmd.Context(), env, out) },
	}
	out = outputFlags(c)
	return c
}

// volumeInspectCommand is cove volume inspect.
func volumeInspectCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "inspect NAME...",
		Short:   "show volumes as JSON, as docker volume inspect does",
		Example: "  cove volume inspect data",
		Args:    wantArgs(1, -1, "at least one volume name"),
		RunE:    func(cmd *cobra.Command, args []string) error { return volumeInspect(cmd.Context(), env, args) },
	}
}

// volumeRmCommand is cove volume rm.
func volumeRmCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Short:   "remove volumes (refused while a spec or a container uses one)",
		Example: "  cove volume rm data",
		Args:    wantArgs(1, -1, "at least one volume name"),
		RunE:    func(cmd *cobra.Command, args []string) error { return volumeRemove(cmd.Context(), env, args) },
	}
}

// volumePruneCommand is cove volume prune.
func volumePruneCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "prune",
		Short:   "remove the volumes no spec and no container uses",
		Example: "  cove volume prune",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return volumePrune(cmd.Context(), env) },
	}
}
