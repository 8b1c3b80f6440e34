package network

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/launch"
)

// DefaultHolderRoot is where the holders of workloads' network state are
// recorded (see Holders).
const DefaultHolderRoot = launch.NetworkHoldersDir

// Holders records which run of each workload holds what Join took for it
// (leases, port claims, tables, links): ROOT/WORKLOAD holds the run's ID
// (its unit's invocation ID), and an flock of that file serialises Join,
// Connect, Disconnect and the release of one workload.
//
// A container's network state is given back after its unit has ended by
// another unit (units: cove-release@NAME.service, started on the unit's
// success or failure), which may run after the workload has started again.
// So the release gives back only what a run that has ended holds
// (ReleaseEnded), and a Join that finds what an earlier run left gives it
// back first (Hold).
type Holders struct {
	Root string // DefaultHolderRoot outside tests
	// give, if set, gives back what workload holds instead of
	// leaveLeased (unit tests of the decisions).
	give func(workload string) error
}

// giveBack gives back what workload holds on networks.
func (h Holders) giveBack(workload string) error {
	if h.give != nil {
		return h.give(workload)
	}
	return leaveLeased(workload)
}

// holder is a workload's locked holder file.
type holder struct{ f *os.File }

// open locks workload's holder file, creating it (empty: nothing held)
// if create; without, a missing file is fs.ErrNotExist. It locks the file
// the path names once locked: one Forget removed meanwhile is opened
// again.
func (h Holders) open(workload string, create bool) (holder, error) {
	if err := checkWorkload(workload); err != nil {
		return holder{}, err
	}
	if err := os.MkdirAll(h.Root, 0o755); err != nil {
		return holder{}, fmt.Errorf("holder of %s: %w", workload, err)
	}
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	for {
		hf, same, err := lockHolder(filepath.Join(h.Root, workload), flags)
		if err != nil || same {
			return hf, err
		}
	}
}

// lockHolder opens path with flags and flocks it; same is false (and the
// file closed) when path no longer names the file locked.
func lockHolder(path string, flags int) (hf holder, same bool, err error) {
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return holder{}, false, fmt.Errorf("holder %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return holder{}, false, fmt.Errorf("holder %s: flock: %w", path, err)
	}
	locked, err1 := f.Stat()
	named, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(locked, named) {
		f.Close()
		return holder{}, false, nil
	}
	return holder{f}, true, nil
}

// run is the run the file names ("" for none).
func (h holder) run() (string, error) {
	b, err := io.ReadAll(io.NewSectionReader(h.f, 0, 1<<10))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", h.f.Name(), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// set makes the file name run ("": none).
func (h holder) set(run string) error {
	if err := h.f.Truncate(0); err != nil {
		return fmt.Errorf("write %s: %w", h.f.Name(), err)
	}
	if _, err := h.f.WriteAt([]byte(run), 0); err != nil {
		return fmt.Errorf("write %s: %w", h.f.Name(), err)
	}
	return nil
}

// close unlocks the file.
func (h holder) close() { h.f.Close() }

// Hold locks workload's holder file for run's Join and returns the
// unlock. When the file names another run (one whose release has not run
// yet: a restart, or a new run right after the last), what that run held
// goes first (LeaveAll on every network workload holds a lease on); then
// the file names run.
func (h Holders) Hold(workload, run string) (unlock func(), err error) {
	hf, err := h.open(workload, true)
	if err != nil {
		return nil, err
	}
	if err := h.takeOver(hf, workload, run); err != nil {
		hf.close()
		return nil, fmt.Errorf("hold the network state of %s: %w", workload, err)
	}
	return hf.close, nil
}

// takeOver gives back what another run of workload than run holds, and
// records run.
func (h Holders) takeOver(hf holder, workload, run string) error {
	prev, err := hf.run()
	if err != nil {
		return err
	}
	if prev != "" && prev != run {
		if err := h.giveBack(workload); err != nil {
			return err
		}
	}
	return hf.set(run)
}

// Lock locks workload's holder file without changing it (Connect and
// Disconnect of a running workload) and returns the unlock.
func (h Holders) Lock(workload string) (unlock func(), err error) {
	hf, err := h.open(workload, true)
	if err != nil {
		return nil, err
	}
	return hf.close, nil
}

// ReleaseEnded gives back what workload's network state holds (LeaveAll
// on every network it holds a lease on) unless the run that holds it is
// still running, as live says; then the file names no run. A workload
// that holds nothing is no error.
func (h Holders) ReleaseEnded(workload string, live func(run string) (bool, error)) error {
	return h.existing(workload, func(hf holder) error { return h.release(hf, workload, live) })
}

// Forget gives back what workload's network state holds, whatever run
// holds it, and removes its holder file: the workload does not run and is
// being removed (cove rm) or created anew (cove apply of an added spec).
// None is no error.
func (h Holders) Forget(workload string) error {
	return h.existing(workload, func(hf holder) error {
		// Emptied first: a release waiting for the lock then finds nothing held.
		if err := h.release(hf, workload, func(string) (bool, error) { return false, nil }); err != nil {
			return err
		}
		if err := os.Remove(hf.f.Name()); err != nil {
			return fmt.Errorf("forget the network state of %s: %w", workload, err)
		}
		return nil
	})
}

// existing calls f with workload's locked holder file, if it has one.
func (h Holders) existing(workload string, f func(holder) error) error {
	hf, err := h.open(workload, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer hf.close()
	return f(hf)
}

// release gives back what the run hf names holds, unless live says that
// run still runs, and empties hf.
func (h Holders) release(hf holder, workload string, live func(run string) (bool, error)) error {
	run, err := hf.run()
	if err != nil || run == "" {
		return err
	}
	if running, err := live(run); err != nil || running {
		return err
	}
	if err := h.giveBack(workload); err != nil {
		return fmt.Errorf("release the network state of %s: %w", workload, err)
	}
	return hf.set("")
}

// leaveLeased is LeaveAll on every network workload holds a lease on.
func leaveLeased(workload string) error {
	nets, err := Leased(workload)
	return errors.Join(err, LeaveAll(nets, workload))
}
