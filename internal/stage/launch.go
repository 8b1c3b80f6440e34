package stage

import (
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
	return isolate.Launch(self, c, func(pid int) { RegisterMachine(stderr, c.Name, supervisor.ClassContainer, pid, root) })
}

// completeImage completes an image container's launcher configuration
// from the store and creates its state directory (see image.Store.Complete).
func completeImage(c launch.Config) (launch.Config, error) {
	st, err := stored.OpenDefault()
	if err != nil {
		return c, err
	}
	if c, err = st.Complete(c); err != nil {
		return c, fmt.Errorf("launch %s: %w", c.Name, err)
	}
	return c, stored.PrepareState(c.Image.StateDir, c.Image.Digest)
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
