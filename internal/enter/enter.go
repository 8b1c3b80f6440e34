// Package enter finds a running container for the commands that run inside
// it, cove exec and health probes: its launcher configuration, read back
// from the unit's ExecStart=, and its payload, pinned by a pidfd and
// checked again against systemd's MainPID.
package enter

import (
	"context"
	"errors"
	"fmt"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/supervisor"
)

// ErrNotRunning is returned for a workload with no main process.
var ErrNotRunning = errors.New("it is not running")

// Open pins the payload of container name, whose probe target w was just
// read from systemd, and returns the launcher configuration it runs with
// (without a terminal: a command that wants one sets Console). The caller
// closes the Target. Errors do not name the workload: callers
// say what they were doing with it.
func Open(ctx context.Context, conn *supervisor.Conn, name string, w supervisor.ProbeTarget) (launch.Config, *isolate.Target, error) {
	if w.MainPID == 0 {
		return launch.Config{}, nil, ErrNotRunning
	}
	c, err := launch.ParseArgs(w.Launch)
	if err != nil {
		return launch.Config{}, nil, fmt.Errorf("not a container (a VM has cove console): %w", err)
	}
	// The payload's terminal (cove run -t) is not the entered command's.
	c.Console = false
	if c.Image.Ref != "" { // the image's env, workdir and user apply too
		if c, err = completeImage(c); err != nil {
			return launch.Config{}, nil, err
		}
	}
	t, err := isolate.OpenTarget(int(w.MainPID), func() bool {
		now, err := conn.Probe(ctx, name)
		return err == nil && now.MainPID == w.MainPID
	})
	if err != nil {
		return launch.Config{}, nil, err
	}
	return c, t, nil
}

// completeImage completes an image container's configuration from the
// store, as its launcher did.
func completeImage(c launch.Config) (launch.Config, error) {
	st, err := image.OpenDefault()
	if err != nil {
		return c, err
	}
	c.Image.Digest = stored.RunningDigest(c.Name) // the image it runs, though the name may have moved
	return st.Complete(c)
}
