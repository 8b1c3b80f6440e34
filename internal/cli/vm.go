package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/stage"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/supervisor"
)

// launchVMCmd is a VM unit's ExecStart=: register the machine, then exec
// QEMU (which keeps this PID).
func launchVMCmd(_ context.Context, env *Env, args []string) error {
	c, err := launch.ParseVMArgs(args)
	if err != nil {
		return usageError{err}
	}
	stage.RegisterMachine(env.Stderr, c.Name, supervisor.ClassVM, os.Getpid(), "")
	return isolate.LaunchVM(c)
}

// launchVMStopCmd is a VM unit's ExecStop=: power the guest off through
// QMP, waiting up to the timeout, then end QEMU ($MAINPID).
func launchVMStopCmd(_ context.Context, env *Env, args []string) error {
	fs := newFlags(launch.VMStopVerb, "--qmp-socket PATH --timeout DURATION", env.Stderr)
	qmp := fs.String("qmp-socket", "", "QMP socket of the VM")
	timeout := fs.Duration("timeout", 30*time.Second, "time for the guest to power off")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	pid, _ := strconv.Atoi(os.Getenv("MAINPID")) // unset once QEMU exited
	return isolate.StopVM(*qmp, pid, *timeout)
}

// launchVMReadyCmd waits until the guest's service answers on a forward's
// host port (ExecStartPost= of a VM with ready = "tcp:PORT").
func launchVMReadyCmd(_ context.Context, env *Env, args []string) error {
	fs := newFlags(launch.VMReadyVerb, "--address ADDR --port PORT", env.Stderr)
	addr := fs.String("address", "127.0.0.1", "host address of the forward")
	port := fs.Int("port", 0, "host port of the forward")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	return isolate.WaitGuestTCP(*addr, *port, 200*time.Millisecond, 300*time.Millisecond)
}

// detachKey (Ctrl-]) ends cove console without stopping the VM.
const detachKey = 0x1d

// consoleCommand is cove console: the terminal attached to a VM's
// interactive serial console (the guest's ttyS1). Ctrl-] detaches; the VM
// keeps running.
func consoleCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "console NAME",
		Short: "attach to a VM's serial console (Ctrl-] detaches)",
		Long: `Attach this terminal to a VM's interactive serial console (the guest's ttyS1).
Ctrl-] detaches; the VM keeps running.`,
		Example:           "  cove console vm\n  printf 'uname -a\\n' | cove console vm",
		Args:              wantArgs(1, 1, "exactly one workload name"),
		ValidArgsFunction: completeWorkloads(env, false),
		RunE:              func(cmd *cobra.Command, args []string) error { return console(cmd.Context(), env, args[0]) },
	}
}

// console attaches to VM name's console (see consoleCommand).
func console(ctx context.Context, env *Env, name string) error {
	conn, err := net.Dial("unix", launch.ConsoleSocket(name))
	if err != nil {
		if kerr := known(ctx, env, name); kerr != nil {
			return kerr
		}
		return fmt.Errorf("console of %s: %w (is it a running VM?)", name, err)
	}
	defer conn.Close()
	if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
		defer term.Restore(int(os.Stdin.Fd()), old)
		fmt.Fprintf(env.Stderr, "cove: attached to %s; Ctrl-] detaches\r\n", name)
	}
	out := make(chan error, 1)
	go func() { _, err := io.Copy(env.Stdout, conn); out <- err }()
	in := make(chan error, 1)
	go func() { in <- copyUntilDetach(conn, os.Stdin) }()
	select {
	case err := <-out:
		return consoleErr(name, err)
	case err := <-in:
		if err != nil {
			return consoleErr(name, err)
		}
		// Input ended (detach, or the end of piped input): show what the
		// guest still answers, until it is quiet.
		conn.SetReadDeadline(time.Now().Add(consoleLinger))
		return consoleErr(name, <-out)
	}
}

// known fails with noSuchWorkload unless workload name exists.
func known(ctx context.Context, env *Env, name string) error {
	return withBackend(ctx, env, func(b api.Backend) error {
		_, err := b.Status(ctx, name)
		return named(name, err)
	})
}

// consoleLinger is how long cove console keeps printing after its input
// ended.
const consoleLinger = 3 * time.Second

// consoleErr reports a console copy error; a closed connection or the
// linger deadline is the normal end.
func consoleErr(name string, err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return fmt.Errorf("console of %s: %w", name, err)
}

// copyUntilDetach copies in to w until EOF or the detach key.
func copyUntilDetach(w io.Writer, in io.Reader) error {
	buf := make([]byte, 1024)
	for {
		n, err := in.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] == detachKey {
				_, werr := w.Write(buf[:i])
				return werr
			}
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
