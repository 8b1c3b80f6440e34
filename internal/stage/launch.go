package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/internal/outcome"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// launchStage is the launcher's first stage (ExecStart= of a container
// unit): it removes the outcome record of the workload's last run (a run
// that ends cleanly gets none, and its post stage may not run: units'
// postGate), completes an image container's configuration from the
// store, then starts the container (isolate.Launch) and registers it with
// machined.
func launchStage(self string, stderr io.Writer, args []string) error {
	args, err := launch.ExpandArgs(args, os.ReadFile)
	if err != nil {
		return err
	}
	c, err := launch.ParseArgs(args)
	if err != nil {
		return usageError{err}
	}
	c = c.ForInstance(instance(c.Name))
	if err := outcome.Remove(c.Name); err != nil {
		return err
	}
	root := c.Rootfs
	if c.Image.Ref != "" {
		if c, err = completeImage(c); err != nil {
			return err
		}
		root = c.Image.StateDir
	}
	var shared *isolate.Target
	if c.NetworkOf != "" {
		if c, shared, err = networkOf(c); err != nil {
			return err
		}
		defer shared.Close()
	}
	return isolate.Launch(self, c, shared, func(pid int) { RegisterMachine(stderr, c.Name, supervisor.ClassContainer, pid, root) })
}

// networkOf pins the main process of the container whose network
// namespace c shares (c.NetworkOf: its unit is started first, and c's
// stops with it) and returns c with that container's resolver
// configuration (launch.Config.WithNetworkOf).
func networkOf(c launch.Config) (launch.Config, *isolate.Target, error) {
	fail := func(err error) (launch.Config, *isolate.Target, error) {
		return c, nil, fmt.Errorf("launch %s: share the network namespace of %s: %w", c.Name, c.NetworkOf, err)
	}
	ctx := context.Background()
	conn, err := supervisor.Connect(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	w, err := conn.Probe(ctx, c.NetworkOf)
	if err != nil {
		return fail(err)
	}
	if len(w.Launch) == 0 {
		return fail(errors.New("it is not a container (a VM's network is its guest's)"))
	}
	other, err := launch.ParseArgs(w.Launch)
	switch {
	case err != nil:
		return fail(err)
	case other.NetworkOf != "":
		return fail(fmt.Errorf("it shares the network namespace of %s itself: name %s", other.NetworkOf, other.NetworkOf))
	case w.MainPID == 0:
		return fail(errors.New("it is not running"))
	}
	t, err := isolate.OpenTarget(int(w.MainPID), func() bool { return conn.IsMain(ctx, c.NetworkOf, w.MainPID) })
	if err != nil {
		return fail(err)
	}
	return c.WithNetworkOf(other), t, nil
}

// completeImage completes an image container's launcher configuration
// from the store and creates its state directory (see image.Store.Complete).
func completeImage(c launch.Config) (launch.Config, error) {
	st, err := stored.OpenDefault()
	if err != nil {
		return c, fmt.Errorf("launch %s: %w", c.Name, err)
	}
	if c, err = st.Complete(c); err != nil {
		return c, fmt.Errorf("launch %s: %w", c.Name, err)
	}
	return c, stored.PrepareState(c.Image.StateDir, c.Image.Digest, c.Image.Throwaway)
}

// CompleteVMImages resolves the "oci:" bases of c's disks to the disk
// files of their images in the store (see stored.Store.CompleteDisk).
func CompleteVMImages(c launch.VMConfig) (launch.VMConfig, error) {
	var st *stored.Store
	for i, d := range c.Disks {
		if _, ok := spec.OCIImage(d.Base); !ok {
			continue
		}
		var err error
		if st == nil {
			if st, err = stored.OpenDefault(); err != nil {
				return c, err
			}
		}
		if c.Disks[i], err = st.CompleteDisk(d); err != nil {
			return c, fmt.Errorf("launch vm %s: disk %d: %w", c.Name, i+1, err)
		}
	}
	return c, nil
}

// RegisterMachine registers a workload with machined; failing that is
// reported to stderr (the unit's journal) but does not fail the workload.
func RegisterMachine(stderr io.Writer, name, class string, pid int, root string) {
	err := supervisor.RegisterMachine(spec.DefaultHostname(name), class, pid, root)
	gone := syscall.Kill(pid, 0) != nil // a payload that already exited is no machine
	if err != nil && !gone && !errors.Is(err, supervisor.ErrNoMachined) {
		fmt.Fprintf(stderr, "cove: %v\n", err)
	}
}
