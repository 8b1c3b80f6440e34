package isolate

import (
	"context"

	"github.com/cove-project/cove/internal/volume"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// mountVolumes readies c's named volumes on the host (volume.Store.Mount)
// in the launcher's mount namespace, the host's, before the container's
// is made from it: a volume with a size is one loop mount of its file
// system there, which the container inherits and every container using
// the volume shares; its content is copied in later, in the container's
// namespace (prepareVolume). systemd mounts it (mountImage).
func mountVolumes(c launch.Config) error {
	for _, m := range c.Mounts {
		if m.Type != spec.MountVolume {
			continue
		}
		if err := volume.Default().Mount(m.Source, mountImage); err != nil {
			return err
		}
	}
	return nil
}

// mountImage is a volume.MountFunc: a transient mount unit of systemd,
// which may use loop devices where the launcher, in its container's unit
// (DevicePolicy=closed), may not.
func mountImage(image, fstype, target string) error {
	ctx := context.Background()
	conn, err := supervisor.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.MountImage(ctx, image, fstype, target)
}
