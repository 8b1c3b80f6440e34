// This file keeps cove's declared workloads on disk: the spec
// directories (vendor defaults in /usr/share/cove, overridden by name in
// /etc/cove), atomic writes of specs, the copies of what was last applied,
// and the lock that serialises cove apply.

package declared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Paths are the directories of a host's declared workloads.
type Paths struct {
	Vendor  string // vendor defaults, e.g. /usr/share/cove
	Etc     string // the administrator's specs, e.g. /etc/cove; wins by name
	Applied string // copies of the specs last applied, e.g. /var/lib/cove/applied
	Run     string // runtime directory for the lock, e.g. /run/cove
	// Networks holds the network files (spec.NetworksDir); the generator
	// writes the units of those networks.
	Networks string
	// Launch is where the generator writes the declared containers'
	// launcher configurations (launch.ConfigDir); "" writes none.
	Launch string
	// Created holds the records of containers created through Docker's
	// API (package api's; /run, so they go with a reboot as transient
	// units do); "" has none.
	Created string
}

// Default are the paths of a real host.
var Default = Paths{
	Vendor:   "/usr/share/cove",
	Etc:      "/etc/cove",
	Applied:  "/var/lib/cove/applied",
	Run:      "/run/cove",
	Networks: spec.NetworksDir,
	Launch:   launch.ConfigDir,
	Created:  "/run/cove/created",
}

// File is a declared workload's spec file.
type File struct {
	Name string // workload name (the file's base name without .toml)
	Path string
}

// SpecFiles returns the spec file of every declared workload, sorted by
// name: the *.toml files of Vendor and Etc, where Etc wins, except cove's
// own configuration files (spec.ReservedNames). Missing directories are
// empty, and so are unset ones (a zero Paths declares nothing).
func (p Paths) SpecFiles() ([]File, error) {
	byName := map[string]string{}
	for _, dir := range []string{p.Vendor, p.Etc} {
		if dir == "" {
			continue
		}
		matches, err := filepath.Glob(filepath.Join(dir, "*.toml"))
		if err != nil {
			return nil, fmt.Errorf("list specs in %s: %w", dir, err)
		}
		for _, m := range matches {
			if name := strings.TrimSuffix(filepath.Base(m), ".toml"); !slices.Contains(spec.ReservedNames, name) {
				byName[name] = m
			}
		}
	}
	files := make([]File, 0, len(byName))
	for name, path := range byName {
		files = append(files, File{Name: name, Path: path})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// EachSpec calls fn with every declared spec that loads; those that do
// not are left out (cove apply and the generator report them).
func (p Paths) EachSpec(fn func(*spec.Spec)) error {
	files, err := p.SpecFiles()
	if err != nil {
		return err
	}
	for _, f := range files {
		if s, err := spec.Load(f.Path, f.Name); err == nil {
			fn(s)
		}
	}
	return nil
}

// VMs returns the declared VMs other than the workload named except, for
// checks across specs (hostcheck.SharedDisks).
func (p Paths) VMs(except string) []*spec.Spec {
	var vms []*spec.Spec
	p.EachSpec(func(s *spec.Spec) {
		if s.Name != except && s.Kind == spec.KindVM {
			vms = append(vms, s)
		}
	})
	return vms
}

// WriteFile writes data to path atomically and durably: a temporary file
// in the same directory is written, synced and renamed over path, and the
// directory is synced. Readers see the old or the new content, never a
// mix; a crash leaves one of them.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: no such file
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// Remove deletes path (a missing file is fine) and syncs its directory.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Lock takes the apply lock (an flock on Run/apply.lock), waiting for
// another holder until ctx ends (then its cause). The returned function
// releases it.
func (p Paths) Lock(ctx context.Context) (func(), error) { return p.lockUntil(ctx, "apply.lock") }

// LockFor is Lock for a request that must not wait long: it gives up
// after LockWait with ErrApplyBusy (a cove apply holds the lock: its
// pulls and starts can take minutes), or when parent ends with its
// cause.
func (p Paths) LockFor(parent context.Context) (func(), error) {
	ctx, cancel := context.WithTimeout(parent, LockWait)
	defer cancel()
	unlock, err := p.Lock(ctx)
	if err != nil && parent.Err() == nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w (%s held for %s)", ErrApplyBusy, filepath.Join(p.Run, "apply.lock"), LockWait)
	}
	return unlock, err
}

// lockUntil takes an flock on Run/name (see flock); the returned function
// releases it.
func (p Paths) lockUntil(ctx context.Context, name string) (func(), error) {
	f, _, err := p.flock(ctx, name)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// flock opens Run/name and takes an flock on it, waiting while another
// holds it until ctx ends: in flock itself for a context that never ends,
// else polling (flock cannot be cancelled). Closing the file releases it.
func (p Paths) flock(ctx context.Context, name string) (*os.File, string, error) {
	f, path, err := p.lockFile(name)
	if err != nil {
		return nil, "", err
	}
	how := unix.LOCK_EX | unix.LOCK_NB
	if ctx.Done() == nil {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		switch {
		case err == nil:
			return f, path, nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			f.Close()
			return nil, "", fmt.Errorf("lock %s: flock: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, "", fmt.Errorf("lock %s: %w", path, context.Cause(ctx))
		case <-time.After(lockPoll):
		}
	}
}

// LockName takes workload name's lock (an flock on Run/names/NAME.lock,
// removed when it is released), waiting for another holder until ctx
// ends. Every cove run holds it from the check that its name is free (no
// spec declares it, no record of Docker's create; for an image, no unit
// loaded either), through the removal of what an earlier image container
// of that name left (ForgetState), until its unit is loaded; cove apply
// holds the names it adds from its own check (after its pulls) until
// their starts have ended; Docker's create holds it from its own check
// through its ForgetState, Docker's rename (for the new name) until the
// record has it, and Docker's start until its start job ends; cove rm
// holds it, once the unit is stopped, while it drops what the workload
// left (ForgetState), unless a start took the name meanwhile. So of two
// of one name started through cove at once, the later finds the
// earlier's unit or record, and never removes the writable layer, IDs or
// addresses the earlier is starting with; nor does a removal (a declared
// unit's start by systemd itself, systemctl start or a dependency, takes
// no lock). The returned function releases the lock; called again, it
// does nothing (it must not remove a later holder's file). With no Run
// there is no lock (a no-op).
func (p Paths) LockName(ctx context.Context, name string) (func(), error) {
	if err := spec.ValidRef(name); err != nil {
		return nil, fmt.Errorf("lock the name %q: %w", name, err)
	}
	if p.Run == "" {
		return func() {}, nil
	}
	for {
		f, path, err := p.flock(ctx, filepath.Join("names", name+".lock"))
		if err != nil {
			return nil, err
		}
		if stored.StillAt(f, path) {
			return sync.OnceFunc(func() { os.Remove(path); f.Close() }), nil
		}
		f.Close() // its holder removed it while this waited: lock the next
	}
}

// LockNameSaying is LockName, writing to w that it waits once it has
// waited lockNotice: cove run, cove apply and cove rm tell their user so.
// With a nil w it is LockName.
func (p Paths) LockNameSaying(ctx context.Context, name string, w io.Writer) (func(), error) {
	if w == nil {
		return p.LockName(ctx, name)
	}
	soon, cancel := context.WithTimeout(ctx, lockNotice)
	unlock, err := p.LockName(soon, name)
	cancel()
	if err != nil && soon.Err() != nil && ctx.Err() == nil {
		fmt.Fprintf(w, "waiting for the name %s: a cove run, cove apply, cove rm or Docker's create, rename or start of it is under way\n", name)
		unlock, err = p.LockName(ctx, name)
	}
	return unlock, err
}

// lockNotice is how long LockNameSaying waits before it says so.
const lockNotice = time.Second

// lockPoll is how often flock tries a taken lock again.
const lockPoll = 50 * time.Millisecond

// LockWait is how long LockFor waits for the apply lock.
const LockWait = 30 * time.Second

// ErrApplyBusy is LockFor's error when the apply lock stays taken.
var ErrApplyBusy = errors.New("a cove apply is under way; try again when it has finished")

// lockLaunch takes the lock of the launcher configuration files (an
// flock on Run/launch.lock), which the generator holds while it reads the
// specs and writes the files, and cove apply while it writes one, so that
// a generator run that read a spec before apply changed it cannot write
// the old file after apply's. The apply lock cannot do it: apply holds
// that across its reload, which waits for the generator. With no Run
// there is no lock (a no-op).
func (p Paths) lockLaunch() (func(), error) {
	if p.Run == "" {
		return func() {}, nil
	}
	return p.lockUntil(context.Background(), "launch.lock")
}

// lockFile opens (creating it) the lock file Run/name.
func (p Paths) lockFile(name string) (*os.File, string, error) {
	path := filepath.Join(p.Run, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, "", fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("lock %s: %w", path, err)
	}
	return f, path, nil
}

// CreatedRecord is the file of the record of container name, created
// through Docker's API, in Created.
func (p Paths) CreatedRecord(name string) string { return filepath.Join(p.Created, name+".json") }

// Recorded reports whether a container created through Docker's API has
// name (a record in Created): docker start would run on its writable
// layer, so neither cove run nor an added declared workload may take the
// name.
func (p Paths) Recorded(name string) (bool, error) {
	if p.Created == "" {
		return false, nil
	}
	_, err := os.Stat(p.CreatedRecord(name))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("look for a record of Docker's create: %w", err)
}

// EtcPath is where workload name's spec lives in Etc.
func (p Paths) EtcPath(name string) string { return filepath.Join(p.Etc, name+".toml") }

// VendorPath is where workload name's vendor default lives in Vendor.
func (p Paths) VendorPath(name string) string { return filepath.Join(p.Vendor, name+".toml") }

// SpecOf returns the spec file that declares workload name: Etc's, else
// Vendor's (an unset directory has none); "" when neither does.
func (p Paths) SpecOf(name string) (string, error) {
	for _, f := range []struct{ dir, path string }{{p.Etc, p.EtcPath(name)}, {p.Vendor, p.VendorPath(name)}} {
		if f.dir == "" {
			continue
		}
		switch _, err := os.Stat(f.path); {
		case err == nil:
			return f.path, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("look for a spec of %s: %w", name, err)
		}
	}
	return "", nil
}

// AppliedPath is where the last applied copy of name's spec lives.
func (p Paths) AppliedPath(name string) string { return filepath.Join(p.Applied, name+".toml") }
