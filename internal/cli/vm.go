package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/qmp"
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
	if c, err = stage.CompleteVMImages(c); err != nil {
		return err
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
	return isolate.WaitGuestTCP(*addr, *port, 200*time.Millisecond)
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

// vncCommand is cove vnc: a VM's screen (vm.display = "vnc"), served from
// its unix socket on a TCP address for a VNC viewer while cove runs.
func vncCommand(env *Env) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "vnc NAME",
		Short: "serve a VM's screen to a VNC viewer",
		Long: `Serve the screen of a VM with vm.display = "vnc" on a TCP address, for a VNC
viewer, until interrupted. QEMU serves it on ` + launch.VNCSocket("NAME") + `
(root only; viewers that take a unix socket can use it directly). VNC here has
no password: keep the address on loopback, or reach it through an SSH tunnel.`,
		Example:           "  cove vnc desktop                          # then: vncviewer 127.0.0.1:5900\n  cove vnc desktop --listen 127.0.0.1:5901",
		Args:              wantArgs(1, 1, "exactly one workload name"),
		ValidArgsFunction: completeWorkloads(env, false),
		RunE:              func(cmd *cobra.Command, args []string) error { return serveVNC(cmd.Context(), env, args[0], listen) },
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:5900", "the TCP address viewers connect to (port 0: any free port)")
	return cmd
}

// serveVNC relays each connection to listen to VM name's VNC socket until
// ctx ends; it prints the address it listens on.
func serveVNC(ctx context.Context, env *Env, name, listen string) error {
	sock, err := screenSocket(ctx, env, name)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("vnc of %s: %w", name, err)
	}
	defer ln.Close()
	fmt.Fprintf(env.Stdout, "the screen of %s is at %s (VNC, no password); Ctrl-C ends\n", name, ln.Addr())
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("vnc of %s: %w", name, err)
		}
		go relay(c, sock)
	}
}

// relay copies between c and a new connection to the unix socket sock
// until either side ends, then closes both.
func relay(c net.Conn, sock string) {
	defer c.Close()
	s, err := net.Dial("unix", sock)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, c); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done
}

// screenSocket is VM name's VNC socket, or an error that says why there
// is none: no such workload, or no screen.
func screenSocket(ctx context.Context, env *Env, name string) (string, error) {
	sock := launch.VNCSocket(name)
	if _, err := os.Stat(sock); err != nil {
		if kerr := known(ctx, env, name); kerr != nil {
			return "", kerr
		}
		return "", fmt.Errorf("%s has no screen: it is not a running VM with vm.display = \"vnc\" (%w)", name, err)
	}
	return sock, nil
}

// screenshotCommand is cove screenshot: a VM's screen saved as PNG.
func screenshotCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "screenshot NAME FILE.png",
		Short: "save a VM's screen as a PNG image",
		Long: `Save the screen of a running VM with vm.display = "vnc" as a PNG image (QMP's
screendump), for example to see where an installer or a boot stopped.`,
		Example:           "  cove screenshot desktop screen.png",
		Args:              wantArgs(2, 2, "a workload name and a file name"),
		ValidArgsFunction: completeWorkloads(env, false),
		RunE:              func(cmd *cobra.Command, args []string) error { return screenshot(cmd.Context(), env, args[0], args[1]) },
	}
}

// screenshot has QEMU write VM name's screen as PNG into the VM's run
// directory (QEMU opens the file itself) and moves it to file.
func screenshot(ctx context.Context, env *Env, name, file string) error {
	if _, err := screenSocket(ctx, env, name); err != nil {
		return err
	}
	q, err := qmp.Dial(ctx, launch.QMPSocket(name))
	if err != nil {
		return fmt.Errorf("screenshot of %s: %w", name, err)
	}
	defer q.Close()
	tmp := filepath.Join(launch.VMRunDir(name), fmt.Sprintf("screen-%d.png", os.Getpid()))
	defer os.Remove(tmp)
	if _, err := q.Execute(ctx, "screendump", map[string]string{"filename": tmp, "format": "png"}); err != nil {
		return fmt.Errorf("screenshot of %s: QMP screendump: %w", name, err)
	}
	png, err := os.ReadFile(tmp)
	if err != nil {
		return fmt.Errorf("screenshot of %s: %w", name, err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		return fmt.Errorf("screenshot of %s: %w", name, err)
	}
	return nil
}
