package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/instruction"
)

// commitCommand is cove commit: docker commit's image of a container's
// changes (api.Server.Commit).
func commitCommand(env *Env) *cobra.Command {
	var req api.CommitRequest
	c := &cobra.Command{
		Use:   "commit [flags] CONTAINER [IMAGE]",
		Short: "make an image of what a container changed",
		Long: `Make an image of an image container, as docker commit (and podman commit) do:
its image's layers and one more, what the container wrote in its root (not
what its volumes hold), with the container's configuration, changed by
--change Dockerfile instructions (` + strings.Join(instruction.Names(), ", ") + `).
IMAGE names it (docker tag's rules: NAME[:TAG] is localhost/NAME:TAG); without
it the image has no name. A running container is frozen while its layer is
read, unless --pause=false. Prints the image's ID. Root only.`,
		Example: `  cove commit web localhost/web:patched
  cove commit -c 'CMD ["nginx", "-g", "daemon off;"]' -c 'ENV MODE=debug' web web:debug`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: completeWorkloads(env, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Container = args[0]
			if len(args) == 2 {
				req.Name = args[1]
			}
			return commit(cmd.Context(), env, req)
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&req.Changes, "change", "c", nil, "apply a Dockerfile instruction to the image's configuration (repeatable)")
	f.StringVarP(&req.Author, "author", "a", "", "the image's author")
	f.StringVarP(&req.Comment, "message", "m", "", "the image's history comment")
	f.BoolVarP(&req.Pause, "pause", "p", true, "freeze a running container while its layer is read")
	return c
}

// commit makes the image req asks for and prints its ID.
func commit(ctx context.Context, env *Env, req api.CommitRequest) error {
	if err := rootOnly("commit", "it reads any file of the container"); err != nil {
		return err
	}
	l := api.NewLocal(declared.Default)
	defer l.Close()
	srv := api.NewServer(l, api.Options{Self: env.Self, Paths: declared.Default})
	rec, err := srv.Commit(ctx, req)
	if err != nil {
		return named(req.Container, err)
	}
	fmt.Fprintln(env.Stdout, "sha256:"+rec.ID())
	return nil
}
