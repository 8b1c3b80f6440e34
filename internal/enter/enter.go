// Package enter finds a running container for the commands that run inside
// it, cove exec and health probes: its launcher configuration, read back
// from the unit's ExecStart= (or the file it names), and its payload,
// pinned by a pidfd and checked again against systemd's MainPID.
package enter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// Open pins the payload of container name, whose probe target w was just
// read from systemd, and returns the launcher configuration it runs with
// (without a terminal: a command that wants one sets Console). The caller
// closes the Target. A paused container is refused (supervisor.ErrPaused:
// a command entering its cgroup would freeze too). Errors do not name the
// workload: callers say what they were doing with it.
func Open(ctx context.Context, conn *supervisor.Conn, name string, w supervisor.ProbeTarget) (launch.Config, *isolate.Target, error) {
	if w.MainPID == 0 {
		return launch.Config{}, nil, fmt.Errorf("it %w", supervisor.ErrNotRunning)
	}
	if w.Paused { // what enters its cgroup would freeze too
		return launch.Config{}, nil, fmt.Errorf("it %w", supervisor.ErrPaused)
	}
	c, err := Config(w.Launch)
	if err != nil {
		return launch.Config{}, nil, err
	}
	c.Console = false // the payload's terminal (cove run -t) is not the entered command's
	t, err := isolate.OpenTarget(int(w.MainPID), func() bool { return conn.IsMain(ctx, name, w.MainPID) })
	if err != nil {
		return launch.Config{}, nil, err
	}
	return c, t, nil
}

// Config is the launcher configuration of the container whose launcher
// arguments (its unit's) are args, an image container's completed from
// the store as its launcher completed it: the image's env, workdir and
// user apply too.
func Config(args []string) (launch.Config, error) {
	c, err := launch.ParseArgs(args)
	if err != nil {
		return c, fmt.Errorf("not a container (a VM has cove console): %w", err)
	}
	if c.Image.Ref == "" {
		return c, nil
	}
	return CompleteImage(c)
}

// CompleteImage completes an image container's configuration from the
// store, as its launcher did.
func CompleteImage(c launch.Config) (launch.Config, error) {
	st, err := image.OpenDefault()
	if err != nil {
		return c, err
	}
	c.Image.Digest = stored.RunningDigest(c.Name) // the image it runs, though the name may have moved
	return st.Complete(c)
}

// Overrides are what a command entering a container may set differently
// from its payload: cove exec's -u, -w and -e, Docker exec's User,
// WorkingDir and Env.
type Overrides struct {
	User    string   // UID[:GID]; "": the payload's
	Workdir string   // absolute; "": the payload's
	Env     []string // KEY=VALUE, added to (and replacing) the payload's
	// TTY gives the command a terminal of the container: the enter
	// stage's stdin is then a console socket (launch.Config.Console).
	TTY bool
}

// Apply sets o on c, or says which of o is bad (errors name the field as
// cove exec's flags do: -u, -w, -e).
func (o Overrides) Apply(c *launch.Config) error {
	if o.User != "" {
		u, err := spec.ParseUser(o.User)
		if err != nil {
			return fmt.Errorf("-u: %w", err)
		}
		c.UID, c.GID = u.UID, u.GID
	}
	if o.Workdir != "" {
		if !strings.HasPrefix(o.Workdir, "/") {
			return fmt.Errorf("-w %q: want an absolute path", o.Workdir)
		}
		c.Workdir = o.Workdir
	}
	for _, kv := range o.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return fmt.Errorf("-e %q: want KEY=VALUE", kv)
		}
		c.Env = append(slices.DeleteFunc(c.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") }), kv)
	}
	c.Console = o.TTY
	return nil
}
