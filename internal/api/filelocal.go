package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cove-project/cove/internal/changes"
	"github.com/cove-project/cove/internal/copier"
	"github.com/cove-project/cove/internal/enter"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/internal/userns"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/isolate/inside"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// Filer is a Backend that reaches the file systems of running containers
// (docker cp); Local is one.
type Filer interface {
	// Files returns the file system of running container name, and what
	// to call once done with it. A container that is not running wraps
	// supervisor.ErrNotRunning; a VM is refused.
	Files(ctx context.Context, name string) (copier.Root, func(), error)
	// StoppedFiles returns the file system of image container c (its
	// launcher configuration as its unit would give it), which does not
	// run: its root as its next start will have it, without its mounts
	// (copier.Root.Unmounted), to write to it if write (see
	// isolate.StoppedRoot), and what to call once done with it. The
	// caller keeps the container from starting until then.
	StoppedFiles(c launch.Config, write bool) (copier.Root, func(), error)
	// Changes returns what image container name changed in its root
	// (changes.Of), given its launcher configuration as its unit would
	// give it, or nil for its unit's. A volatile container's wraps
	// isolate.ErrVolatile.
	Changes(ctx context.Context, name string, c *launch.Config) ([]changes.Change, error)
	// WritableLayer returns the writable layer of image container name
	// (given its launcher configuration as Changes takes it), locked
	// (inside.LockState) until release is called: no start makes a new
	// overlay of it meanwhile, and what it is over is read under the
	// lock. A volatile container's wraps isolate.ErrVolatile; a container
	// from a root directory's, errNoWritableLayer.
	WritableLayer(ctx context.Context, name string, c *launch.Config) (l WritableLayer, release func(), err error)
}

// WritableLayer is an image container's writable layer (docker commit).
type WritableLayer struct {
	Upper string      // the overlay's upper directory (missing: the container never started)
	Image string      // the digest of the image it is over (or the spec's image, before a start)
	IDs   image.IDMap // maps its files' IDs to the container's (with a user namespace); nil: none to map
}

var _ Filer = (*Local)(nil)

// Files implements Filer with the payload's root, pinned as cove exec
// pins it (a paused container's too: nothing enters its cgroup).
func (l *Local) Files(ctx context.Context, name string) (copier.Root, func(), error) {
	conn, w, err := l.probe(ctx, name)
	if err != nil {
		return copier.Root{}, nil, err
	}
	if w.MainPID == 0 {
		return copier.Root{}, nil, fmt.Errorf("files of %s: it %w", name, supervisor.ErrNotRunning)
	}
	c, err := containerConfig(w)
	var unlock func()
	if err == nil {
		unlock, err = lockWritableLayer(c)
	}
	if err != nil {
		return copier.Root{}, nil, fmt.Errorf("files of %s: %w", name, err)
	}
	t, err := isolate.OpenTarget(int(w.MainPID), func() bool { return conn.IsMain(ctx, name, w.MainPID) })
	var maps inside.IDMaps
	if err == nil {
		if maps, err = inside.ReadIDMaps(t.PID()); err == nil {
			err = t.Alive() // the maps read were the payload's
		}
		if err != nil {
			t.Close()
		}
	}
	if err != nil {
		unlock()
		return copier.Root{}, nil, fmt.Errorf("files of %s: %w", name, err)
	}
	r := copier.Root{Dir: t.Root(), Maps: maps}
	r.Owner = func() (int, int, bool, error) { // its image's user, read from the store only when asked
		c, err := enter.Config(w.Launch)
		if err != nil {
			return 0, 0, false, err
		}
		return r.ConfigOwner(c)()
	}
	return r, func() { t.Close(); unlock() }, nil
}

// lockWritableLayer takes the lock of the writable layer of container c
// (inside.LockState), if it has one: a copy holds its overlay, which a
// restart must not make anew meanwhile.
func lockWritableLayer(c launch.Config) (func(), error) {
	if c.Image.Ref == "" || c.Volatile {
		return func() {}, nil
	}
	return inside.LockState(c.Image.StateDir)
}

// StoppedFiles implements Filer with isolate.StoppedRoot.
func (l *Local) StoppedFiles(c launch.Config, write bool) (copier.Root, func(), error) {
	c, err := enter.CompleteImage(c)
	if err != nil {
		return copier.Root{}, nil, fmt.Errorf("files of %s: %w", c.Name, err)
	}
	dir, release, ids, err := isolate.StoppedRoot(c, "/proc/self/exe", write) // this very binary holds the user namespace
	if err != nil {
		return copier.Root{}, nil, fmt.Errorf("files of %s: %w", c.Name, err)
	}
	r := copier.Root{Dir: dir, Maps: inside.IDMaps{UID: ids, GID: ids}}
	r.Owner = r.ConfigOwner(c)
	for _, m := range c.Mounts {
		r.Unmounted = append(r.Unmounted, m.Target)
	}
	return r, release, nil
}

// Changes implements Filer with the container's writable layer in its
// state directory, read from the host, against its image's layers.
func (l *Local) Changes(ctx context.Context, name string, c *launch.Config) ([]changes.Change, error) {
	c, err := l.layered(ctx, name, c)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", name, err)
	}
	upper := filepath.Join(c.Image.StateDir, launch.UpperDir)
	if _, err := os.Lstat(upper); errors.Is(err, os.ErrNotExist) {
		return []changes.Change{}, nil // never started
	}
	cc, err := enter.CompleteImage(*c)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", name, err)
	}
	return changes.Of(upper, cc.Image.Layers)
}

// WritableLayer implements Filer with the container's state directory,
// its recorded image digest, and its recorded user namespace IDs.
func (l *Local) WritableLayer(ctx context.Context, name string, c *launch.Config) (WritableLayer, func(), error) {
	c, err := l.layered(ctx, name, c)
	var unlock func()
	if err == nil {
		unlock, err = lockWritableLayer(*c)
	}
	if err != nil {
		return WritableLayer{}, nil, fmt.Errorf("writable layer of %s: %w", name, err)
	}
	wl := WritableLayer{Upper: filepath.Join(c.Image.StateDir, launch.UpperDir), Image: cmp.Or(stored.RunningDigest(name), c.Image.Ref)}
	if wl.IDs, err = layerIDs(name, *c, wl.Upper); err != nil {
		unlock()
		return WritableLayer{}, nil, fmt.Errorf("writable layer of %s: %w", name, err)
	}
	return wl, unlock, nil
}

// layered is the launcher configuration of image container name, c or
// (nil) its unit's; a volatile container's wraps isolate.ErrVolatile, one
// from a root directory's errNoWritableLayer.
func (l *Local) layered(ctx context.Context, name string, c *launch.Config) (*launch.Config, error) {
	if c == nil {
		var err error
		if c, err = l.unitConfig(ctx, name); err != nil {
			return nil, err
		}
	}
	switch {
	case c.Image.Ref == "":
		return nil, fmt.Errorf("a container from a root directory writes to it: %w", errNoWritableLayer)
	case c.Volatile:
		return nil, isolate.ErrVolatile
	}
	return c, nil
}

// layerIDs maps the IDs of the files of container name's writable layer
// upper to the container's: nil without a user namespace; its recorded
// IDs with one (a layer made without a record is refused).
func layerIDs(name string, c launch.Config, upper string) (image.IDMap, error) {
	if !spec.HasUserNS(c.UserNS) {
		return nil, nil
	}
	ids, ok, err := userns.Default().Lookup(name)
	switch {
	case err != nil:
		return nil, err
	case ok:
		return ids.Inside, nil
	}
	if _, err := os.Lstat(upper); err == nil {
		return nil, errors.New("its user namespace's IDs are not recorded: its files' owners cannot be told")
	}
	return nil, nil
}

// unitConfig is the launcher configuration of container name, read from
// its unit.
func (l *Local) unitConfig(ctx context.Context, name string) (*launch.Config, error) {
	_, w, err := l.probe(ctx, name)
	if err != nil {
		return nil, err
	}
	c, err := containerConfig(w)
	return &c, err
}

// probe is systemd's probe target of workload name, with the connection
// it came on.
func (l *Local) probe(ctx context.Context, name string) (*supervisor.Conn, supervisor.ProbeTarget, error) {
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, supervisor.ProbeTarget{}, err
	}
	w, err := conn.Probe(ctx, name)
	return conn, w, err
}

// containerConfig is the launcher configuration w's unit gives a
// container (not completed from its image); a VM is refused.
func containerConfig(w supervisor.ProbeTarget) (launch.Config, error) {
	if w.Launch == nil {
		return launch.Config{}, fmt.Errorf("a VM's files are its guest's (cove console)")
	}
	return launch.ParseArgs(w.Launch)
}
