package supervisor

import (
	"context"
	"fmt"
	"path"
	"strings"

	sd "github.com/coreos/go-systemd/v22/dbus"
)

// MountImage mounts the file system of type fstype in the regular file
// image on the directory where as a transient mount unit (named after
// where, as systemd names mount units) and waits until it is mounted.
// systemd mounts it, with mount(8) -o loop: outside the caller's cgroup,
// whose device policy (a container unit's DevicePolicy=closed) forbids
// loop devices. mount(8) reuses the loop device image has, if any, and
// makes a new one detach itself once the file system is unmounted.
func (c *Conn) MountImage(ctx context.Context, image, fstype, where string) error {
	name := mountUnitName(where)
	c.sd.ResetFailedUnitContext(ctx, name) // a failed try's unit would hold the name; fails if there is none
	props := []sd.Property{
		prop("Description", "cove volume file system "+image),
		prop("What", image), prop("Where", where), prop("Type", fstype), prop("Options", "loop"),
	}
	ch := make(chan string, 1)
	if _, err := c.sd.StartTransientUnitContext(ctx, name, "fail", props, ch); err != nil {
		return fmt.Errorf("mount %s on %s: start %s: %w", image, where, name, err)
	}
	if err := waitJob(ctx, "start", name, ch); err != nil {
		return fmt.Errorf("mount %s on %s: %w", image, where, withLogs(ctx, err, c.invocation(ctx, name), name))
	}
	return nil
}

// mountUnitName is the name of the mount unit for the absolute path p,
// as systemd-escape --path --suffix=mount makes it.
func mountUnitName(p string) string {
	var b strings.Builder
	for i, c := range []byte(strings.Trim(path.Clean(p), "/")) {
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String() + ".mount"
}
