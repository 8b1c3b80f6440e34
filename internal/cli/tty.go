package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// drainTimeout is how long cove copies a program's last output after it
// ended.
const drainTimeout = 2 * time.Second

// ttyConsole gives one process started by cove run -t or cove exec -t a
// terminal: a pty that the stage setting the process up allocates in the
// container and hands back over a console socket (package tty), relayed to
// the user's terminal until the process ends or the user presses Ctrl-]
// (tty.DetachKey).
type ttyConsole struct {
	env         *Env
	input       *os.File // the user's terminal with -i; nil: no input
	host, stage *os.File // the console socket's ends
}

// newTTYConsole prepares a terminal the size of the user's. With
// interactive (-i) the user's input goes to it, and stdin must be a
// terminal. The caller closes it.
func newTTYConsole(env *Env, interactive bool) (*ttyConsole, error) {
	t := &ttyConsole{env: env}
	if interactive {
		if !tty.IsTerminal(os.Stdin) {
			return nil, errors.New("--tty: the input is not a terminal (without -t, -i passes it as a stream)")
		}
		t.input = os.Stdin
	}
	var err error
	if t.host, t.stage, err = tty.NewSocket(userSize()); err != nil {
		return nil, err
	}
	return t, nil
}

// userSize is the size of the user's terminal (stdin's, else stdout's),
// or 24x80.
func userSize() *unix.Winsize {
	for _, f := range []*os.File{os.Stdin, os.Stdout} {
		if ws, err := tty.Size(f); err == nil && ws.Row > 0 && ws.Col > 0 {
			return ws
		}
	}
	ws := tty.DefaultSize
	return &ws
}

// Close closes the console socket.
func (t *ttyConsole) Close() {
	t.host.Close()
	t.stage.Close()
}

// ttyUnit makes u, a container's transient unit from units.ForRun, give
// its payload a terminal (units.WithTerminal) with the user's TERM.
func ttyUnit(u units.Unit) (units.Unit, error) {
	u, err := units.WithTerminal(u, os.Getenv("TERM"))
	if errors.Is(err, units.ErrNotContainer) {
		return u, usagef("--tty: %s is not a container", u.Name)
	}
	return u, err
}

// Stdio is what the stdio of the unit from ttyUnit must be (for
// StartTransient): the console socket as input; cove's output and error,
// where the launcher reports a failed start, unless detached (systemd
// holds the unit's files as long as the unit lives: a detached run's
// output goes to the journal).
func (t *ttyConsole) Stdio(detached bool) *supervisor.Stdio {
	if detached {
		return &supervisor.Stdio{In: t.stage}
	}
	return &supervisor.Stdio{In: t.stage, Out: os.Stdout, Err: os.Stderr}
}

// Release, for a run started detached with a terminal (-dt), takes the
// terminal's master the launcher sent and lets it go, and with it the
// console socket: the terminal's relay in the unit keeps it (its output
// in the journal), so a shell waits on it as under docker run -dit, and
// cove attach reaches it later.
func (t *ttyConsole) Release(unit string) error {
	t.stage.Close() // systemd holds the unit's copy
	master, err := tty.Receive(t.host)
	if err != nil {
		return fmt.Errorf("start %s with a terminal: %w", unit, err)
	}
	return master.Close()
}

// WaitRun attaches the user's terminal to the payload of unit, which
// StartTransient has started as ttyUnit made it, with Stdio, and waits
// until it ends (its exit, as watch.Exit) or the user detaches
// (detached; the workload keeps running and cove says how to stop it), or
// the terminal's relay dropped this session for falling behind (detached,
// with an error that says so).
// The terminal is restored on every path.
func (t *ttyConsole) WaitRun(ctx context.Context, watch *supervisor.UnitWatch, unit string) (exit supervisor.Exit, detached bool, err error) {
	t.stage.Close() // systemd holds the unit's copy
	// The launcher's stage sent the master before the handover, so it is
	// there once the start succeeded.
	master, err := tty.Receive(t.host)
	if err != nil {
		return supervisor.Exit{}, false, fmt.Errorf("attach to %s: %w", unit, err)
	}
	defer master.Close()
	// The terminal's relay is the master's reader: its output and the
	// user's input go through the console socket.
	s, err := tty.AttachVia(master, t.host, t.input, t.env.Stdout)
	if err != nil {
		return supervisor.Exit{}, false, err
	}
	defer s.Close()
	type ended struct {
		exit supervisor.Exit
		err  error
	}
	done := make(chan ended, 1)
	go func() {
		e, err := watch.Exit(ctx)
		done <- ended{e, err}
	}()
	select {
	case r := <-done:
		s.Drain(drainTimeout)
		return r.exit, false, r.err
	case <-s.Ended(): // the payload ended, or the relay dropped this session
		select {
		case r := <-done:
			return r.exit, false, r.err
		case <-time.After(drainTimeout):
			name, _ := spec.NameOfUnit(unit)
			return supervisor.Exit{}, true, droppedErr(name)
		}
	case <-s.Detached():
		s.Close()
		name, _ := spec.NameOfUnit(unit)
		fmt.Fprintf(t.env.Stderr, "cove: detached from %s, which still runs: cove attach %s attaches again, cove stop %s stops it\n", name, name, name)
		return supervisor.Exit{}, true, nil
	}
}

// execTTY is cove exec -t (interactive: -i): it runs c.Argv inside the
// container target, as isolate.EnterCommand does, on a terminal of its own
// (a pty of the container, its controlling terminal, with the user's
// TERM) relayed to the user's, and returns the command's exit status
// (exitError), or nil when the user detached (the command keeps running
// until it ends or the workload stops). An interrupt of cove (ctx) ends
// the command.
func execTTY(ctx context.Context, env *Env, name string, c launch.Config, target *isolate.Target, interactive bool) error {
	t, err := newTTYConsole(env, interactive)
	if err != nil {
		return err
	}
	defer t.Close()
	c.Console, c.Env = true, launch.WithTerm(c.Env, os.Getenv("TERM"))
	// Not canceled with ctx: after a detach the command outlives cove.
	cmd := isolate.EnterCommand(context.WithoutCancel(ctx), launch.InsidePath(env.Self), c, target)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = t.stage, env.Stdout, env.Stderr
	// A session of its own: the user's terminal hanging up (its session
	// ending) after a detach must not end the stage and its command.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec in %s: %w", name, err)
	}
	t.stage.Close()
	defer context.AfterFunc(ctx, func() { cmd.Process.Signal(syscall.SIGTERM) })()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	master, err := tty.Receive(t.host)
	if errors.Is(err, tty.ErrNoTerminal) { // the stage failed and said why
		return commandExit(<-waited)
	}
	if err != nil {
		return fmt.Errorf("exec in %s: %w", name, err)
	}
	defer master.Close()
	s, err := tty.Attach(master, t.input, env.Stdout)
	if err != nil {
		return err
	}
	defer s.Close()
	select {
	case err := <-waited:
		s.Drain(drainTimeout)
		return commandExit(err)
	case <-s.Detached():
		s.Close()
		fmt.Fprintf(env.Stderr, "cove: detached from %s in %s, which still runs until it exits or cove stop %s\n", c.Argv[0], name, name)
		return nil
	}
}

// commandExit passes a command's exit status through as cove's.
func commandExit(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitError{ee.ExitCode()}
	}
	return err
}
