package api

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/cove-project/cove/internal/enter"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
)

// Execer is a Backend that runs commands in running containers as cove
// exec does (Docker's exec); Local is one.
type Execer interface {
	// Exec returns the command that runs argv in running container name
	// with overrides o, unstarted (isolate.EnterCommand: canceling ctx
	// ends it), and what to call once it has ended. A container that is
	// not running wraps supervisor.ErrNotRunning.
	Exec(ctx context.Context, name string, argv []string, o enter.Overrides) (*exec.Cmd, func(), error)
}

var _ Execer = (*Local)(nil)

// Exec implements Execer with the enter stage beside this binary.
func (l *Local) Exec(ctx context.Context, name string, argv []string, o enter.Overrides) (*exec.Cmd, func(), error) {
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	t, err := conn.Probe(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	c, target, err := enter.Open(ctx, conn, name, t)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in %s: %w", name, err)
	}
	c.Argv = argv
	if err := o.Apply(&c); err != nil {
		target.Close()
		return nil, nil, fmt.Errorf("exec in %s: %w", name, err)
	}
	self, err := os.Executable()
	if err != nil {
		target.Close()
		return nil, nil, fmt.Errorf("exec in %s: find the enter stage: %w", name, err)
	}
	return isolate.EnterCommand(ctx, launch.InsidePath(self), c, target), target.Close, nil
}
