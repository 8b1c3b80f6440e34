package api

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/units"
)

// containerRecord is what cove keeps of a container created through
// Docker's API (POST /containers/create): systemd has no "created but not
// started" transient unit, so the request waits here until a start
// compiles it into one; the record stays, so that later starts run it
// again and Docker's views show its image and command, until the
// container is removed (or, with AutoRemove, its run ends).
type containerRecord struct {
	Name     string       `json:"name"`
	Created  time.Time    `json:"created"`
	Image    string       `json:"image"`     // the image, pinned: REGISTRY/REPO@DIGEST (or the manifest digest)
	ImageID  string       `json:"image_id"`  // its Docker ID (sha256:CONFIG)
	ImageCmd []string     `json:"image_cmd"` // its CMD, for an entrypoint reset to none
	Config   dockerCreate `json:"config"`    // the request, as cove read it
	// RunNetwork is what Docker's default network ("", "default",
	// "bridge") was on this host at create (hostconf's run network);
	// "" in records of a cove that had none: the host's network.
	RunNetwork string `json:"run_network,omitempty"`
	Started    bool   `json:"started"` // a start succeeded; then ExitCode is the last run's
	ExitCode   int    `json:"exit_code"`
	// FormerIDs are the Docker IDs of the names the container had before
	// a rename (its ID is made of its name): a client that holds one
	// still finds it.
	FormerIDs []string `json:"former_ids,omitempty"`
	// AnonymousVolumes are the volumes its create named and made
	// (anonymousVolumes), which Config's mounts name too, and which docker
	// rm -v and the end of an AutoRemove run remove
	// (dropAnonymousVolumes).
	AnonymousVolumes []string `json:"anonymous_volumes,omitempty"`
}

// spec is the record's workload spec (see containerSpec).
func (r *containerRecord) spec() (*spec.Spec, error) {
	sp, _, err := containerSpec(r.Name, &r.Config, r.Image, r.ImageCmd, cmp.Or(r.RunNetwork, spec.NetworkHost))
	if err != nil {
		return nil, err
	}
	return sp, nil
}

// launchConfig is the launcher configuration a start of the record's
// container gives it (units.LaunchConfig of its spec).
func (r *containerRecord) launchConfig() (launch.Config, error) {
	sp, err := r.spec()
	if err != nil {
		return launch.Config{}, err
	}
	return units.LaunchConfig(sp), nil
}

// containerRecords keeps the records, one file NAME.json (mode 0600) each
// in a directory of root's (mode 0700).
type containerRecords struct{ dir string }

// path is name's record file; name is a valid workload name.
func (rs containerRecords) path(name string) string {
	return declared.Paths{Created: rs.dir}.CreatedRecord(name)
}

// create stores a new record; it fails with fs.ErrExist when name has one.
func (rs containerRecords) create(r *containerRecord) error {
	tmp, err := rs.temp(r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, rs.path(r.Name)); err != nil {
		return fmt.Errorf("record container %s: %w", r.Name, err)
	}
	return nil
}

// write replaces name's record.
func (rs containerRecords) write(r *containerRecord) error {
	tmp, err := rs.temp(r)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, rs.path(r.Name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record container %s: %w", r.Name, err)
	}
	return nil
}

// temp writes r to a new temporary file in the directory.
func (rs containerRecords) temp(r *containerRecord) (string, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("record container %s: %w", r.Name, err)
	}
	if err := os.MkdirAll(rs.dir, 0o700); err != nil {
		return "", fmt.Errorf("record container %s: %w", r.Name, err)
	}
	f, err := os.CreateTemp(rs.dir, ".new-*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("record container %s: %w", r.Name, err)
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("record container %s: %w", r.Name, err)
	}
	return f.Name(), nil
}

// errNoRecord is returned by update and rename for a container without
// a record.
var errNoRecord = errors.New("container has no record")

// update changes name's record under a lock that every update and
// removal holds (lock): f gets the record as it is now and says whether
// to write it back. Two updates of one record cannot lose each other's
// change, nor can an update bring a removed record back.
func (rs containerRecords) update(name string, f func(*containerRecord) (bool, error)) error {
	return rs.withRecord("update", name, func(r *containerRecord) error {
		write, err := f(r)
		if errors.Is(err, errRemove) {
			return rs.unlink(name)
		}
		if err != nil || !write {
			return err
		}
		return rs.write(r)
	})
}

// withRecord runs f on name's record under the records' lock (lock); it
// fails with errNoRecord, op naming the change, when name has none.
func (rs containerRecords) withRecord(op, name string, f func(*containerRecord) error) error {
	unlock, err := rs.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := rs.read(name)
	switch {
	case err != nil:
		return err
	case r == nil:
		return fmt.Errorf("%s container %s: %w", op, name, errNoRecord)
	}
	return f(r)
}

// errStarted is returned by rename for a container that has started.
var errStarted = errors.New("container has started")

// errRemove, returned by an update's function, removes the record.
var errRemove = errors.New("remove the record")

// lock takes the records' lock (flock on the directory's .lock, so
// across processes too) for a change of name's record.
func (rs containerRecords) lock(name string) (unlock func(), err error) {
	if err := os.MkdirAll(rs.dir, 0o700); err != nil {
		return nil, fmt.Errorf("change the record of container %s: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(rs.dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("change the record of container %s: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("change the record of container %s: flock %s: %w", name, f.Name(), err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// read returns name's record, or nil when it has none.
func (rs containerRecords) read(name string) (*containerRecord, error) {
	data, err := os.ReadFile(rs.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the record of container %s: %w", name, err)
	}
	r := &containerRecord{}
	if err := json.Unmarshal(data, r); err != nil || spec.ValidName(r.Name) != nil {
		return nil, fmt.Errorf("read the record of container %s: %s is corrupt", name, rs.path(name))
	}
	if r.Name != name { // a rename killed between its two steps: finish it
		r.renamed(name)
	}
	return r, nil
}

// renamed gives r the name new, keeping its Docker ID among FormerIDs
// (a client that holds it still finds it).
func (r *containerRecord) renamed(new string) {
	if id := dockerID(r.Name); !slices.Contains(r.FormerIDs, id) {
		r.FormerIDs = append(r.FormerIDs, id)
	}
	r.Name = new
}

// rename moves old's record to the name new under the records' lock,
// adding old's Docker ID to its FormerIDs; it fails with fs.ErrExist
// when new has a record, with errNoRecord when old has none, with
// errStarted when old has started (checked under the lock, so that a
// start that got in first wins). The move is one renameat2 that never
// replaces (RENAME_NOREPLACE), then the record is rewritten with its new
// name; a kill between the two leaves one record under the new name,
// which read finishes.
func (rs containerRecords) rename(old, new string) error {
	return rs.withRecord("rename", old, func(r *containerRecord) error {
		if r.Started {
			return fmt.Errorf("rename container %s: %w", old, errStarted)
		}
		if err := unix.Renameat2(unix.AT_FDCWD, rs.path(old), unix.AT_FDCWD, rs.path(new), unix.RENAME_NOREPLACE); err != nil {
			return fmt.Errorf("rename container %s to %s: renameat2: %w", old, new, err)
		}
		r.renamed(new)
		return rs.write(r)
	})
}

// remove deletes name's record, if it has one, under the records' lock.
func (rs containerRecords) remove(name string) error {
	unlock, err := rs.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	return rs.unlink(name)
}

// unlink deletes name's record, if it has one.
func (rs containerRecords) unlink(name string) error {
	if err := os.Remove(rs.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the record of container %s: %w", name, err)
	}
	return nil
}

// list returns every record by name; unreadable ones are skipped.
func (rs containerRecords) list() map[string]*containerRecord {
	out := map[string]*containerRecord{}
	ents, _ := os.ReadDir(rs.dir)
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || spec.ValidName(name) != nil {
			continue
		}
		if r, err := rs.read(name); err == nil && r != nil {
			out[name] = r
		}
	}
	return out
}
