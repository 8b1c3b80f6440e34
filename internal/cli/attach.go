package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/launch"
)

// attachCommand is cove attach: this terminal attached to the terminal of
// a container started with -t (its relay's), as docker attach.
func attachCommand(env *Env) *cobra.Command {
	var noStdin bool
	c := &cobra.Command{
		Use:   "attach [flags] NAME",
		Short: "attach to the terminal of a container run with -t (Ctrl-] detaches)",
		Long: `Attach this terminal to the terminal of a container started with -t (cove run -t,
docker run -t): what its payload writes from now on, and what you type goes to it.
Ctrl-] detaches; the container keeps running. When the payload ends, so does
cove attach, with its exit status. Its earlier output is in cove logs NAME.`,
		Example: `  cove run -dit --name box --image 127.0.0.1:5000/busybox -- sh
  cove attach box
  cove attach --no-stdin box`,
		Args:              wantArgs(1, 1, "exactly one workload name"),
		ValidArgsFunction: completeWorkloads(env, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			return attach(cmd.Context(), env, args[0], !noStdin)
		},
	}
	c.Flags().BoolVar(&noStdin, "no-stdin", false, "show the output only; do not pass this terminal's input")
	return c
}

// attach attaches to container name's terminal (see attachCommand).
func attach(ctx context.Context, env *Env, name string, stdin bool) error {
	conn, master, err := tty.Dial(launch.TerminalSocket(name))
	if err != nil {
		if kerr := known(ctx, env, name); kerr != nil {
			return kerr
		}
		switch {
		case errors.Is(err, tty.ErrNoRelay):
			return fmt.Errorf("attach to %s: it has no terminal now (not running, or started without -t: cove logs -f %s shows its output)", name, name)
		case errors.Is(err, os.ErrPermission):
			return fmt.Errorf("attach to %s: only root may attach to a container's terminal: %w", name, err)
		}
		return err
	}
	defer conn.Close()
	defer master.Close()
	var in *os.File
	if stdin {
		in = os.Stdin
	}
	s, err := tty.AttachVia(master, conn, in, env.Stdout)
	if err != nil {
		return err
	}
	defer s.Close()
	if in != nil && tty.IsTerminal(in) {
		fmt.Fprintf(env.Stderr, "cove: attached to %s; Ctrl-] detaches\r\n", name)
	}
	select {
	case <-s.Ended():
		s.Close()
		return attachedExit(ctx, env, name)
	case <-s.Detached():
		s.Close()
		fmt.Fprintf(env.Stderr, "cove: detached from %s, which still runs\n", name)
		return nil
	case <-ctx.Done():
		return nil
	}
}

// droppedErr says that the relay of name's terminal dropped this session:
// it fell too far behind the output (the payload never waits for a
// client).
func droppedErr(name string) error {
	return fmt.Errorf("the terminal of %s dropped this session, which fell behind its output; %s still runs: cove attach %s attaches again", name, name, name)
}

// attachedExit is how cove attach ends after the output ended: with the
// payload's exit status once systemd has it, or, when the payload still
// runs a few seconds later, saying that the relay dropped this session.
func attachedExit(ctx context.Context, env *Env, name string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var code int
		var running bool
		err := withBackend(ctx, env, func(b api.Backend) error {
			w, err := b.Status(ctx, name)
			code, running = w.ExitCode, w.ActiveState == "active" && w.SubState == "running" || w.ActiveState == "deactivating"
			return err
		})
		switch {
		case err == nil && running && time.Now().After(deadline):
			return droppedErr(name)
		case err != nil || !running:
			if code != 0 {
				return exitError{code}
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
