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
// Connect, Disconnect and the release of one workload. A file that names
// no run is removed by whoever holds its lock last.
//
// A container's network state is given back after its unit has ended by
// another unit (units: cove-release@NAME.service, started on the unit's
// success or failure), which may run after the workload has started again.
// So the release gives back only what a run that has ended holds
// (ReleaseEnded), and a Join that finds what an earlier run left gives it
// back first (Hold). A run that joined before there were holder files
// holds what it leased without one; its release asks about it as the
// run "". One case is left to those others: a release unit started while
// the same one still runs (a run that ended during the release of the
// last) merges into that start, which may have found the run live; what
// that run holds then stays until the workload's next Join, cove rm,
// cove network rm, or a start that wants its port or address
// (FreeEnded).
type Holders struct {
	Root string // DefaultHolderRoot outside tests
	// give and holds, if set, stand for leaveLeased and for whether
	// workload holds a lease (unit tests of the decisions).
	give  func(workload string) error
	holds func(workload string) bool
}

// Live says whether workload's unit still runs as run (an invocation ID;
// for "", whether it runs at all): supervisor.Conn.Runs.
type Live func(workload, run string) (bool, error)

// giveBack gives back what workload holds on networks.
func (h Holders) giveBack(workload string) error {
	if h.give != nil {
		return h.give(workload)
	}
	return leaveLeased(workload)
}

// holdsAny reports whether workload holds a lease (an error counts as
// yes: the release then tries and reports it).
func (h Holders) holdsAny(workload string) bool {
	if h.holds != nil {
		return h.holds(workload)
	}
	nets, err := Leased(workload)
	return err != nil || len(nets) > 0
}

// holder is a workload's locked holder file.
type holder struct{ f *os.File }

// errBusy is open's error, without wait, for a file another holds locked.
var errBusy = errors.New("held by another process")

// open locks workload's holder file, creating it (empty: nothing held);
// with wait false it fails with errBusy rather than wait for the lock. It
// locks the file the path names once locked: one removed meanwhile is
// opened again.
func (h Holders) open(workload string, wait bool) (holder, error) {
	if err := checkWorkload(workload); err != nil {
		return holder{}, fmt.Errorf("holder of %q: %w", workload, err)
	}
	if err := os.MkdirAll(h.Root, 0o755); err != nil {
		return holder{}, fmt.Errorf("holder of %s: %w", workload, err)
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		hf, same, err := lockHolder(filepath.Join(h.Root, workload), how)
		if err != nil || same {
			return hf, err
		}
	}
}

// lockHolder opens path, creating it, and flocks it (how); same is false
// (and the file closed) when path no longer names the file locked.
func lockHolder(path string, how int) (hf holder, same bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return holder{}, false, fmt.Errorf("holder %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return holder{}, false, fmt.Errorf("holder %s: %w", path, errBusy)
		}
		return holder{}, false, fmt.Errorf("holder %s: flock: %w", path, err)
	}
	locked, err := f.Stat()
	if err != nil {
		f.Close()
		return holder{}, false, fmt.Errorf("holder %s: fstat: %w", path, err)
	}
	named, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !os.SameFile(locked, named) {
		f.Close()
		return holder{}, false, nil
	}
	if err != nil {
		f.Close()
		return holder{}, false, fmt.Errorf("holder %s: %w", path, err)
	}
	return holder{f}, true, nil
}

// run is the run the file names ("" for none).
func (hf holder) run() (string, error) {
	b, err := io.ReadAll(io.NewSectionReader(hf.f, 0, 1<<10))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", hf.f.Name(), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// set makes the file name run ("": none).
func (hf holder) set(run string) error {
	if err := hf.f.Truncate(0); err != nil {
		return fmt.Errorf("write %s: %w", hf.f.Name(), err)
	}
	if _, err := hf.f.WriteAt([]byte(run), 0); err != nil {
		return fmt.Errorf("write %s: %w", hf.f.Name(), err)
	}
	return nil
}

// close removes the file if it names no run, and unlocks it.
func (hf holder) close() {
	if run, err := hf.run(); err == nil && run == "" {
		os.Remove(hf.f.Name())
	}
	hf.f.Close()
}

// with calls f with workload's locked holder file (see open).
func (h Holders) with(workload string, wait bool, f func(holder) error) error {
	hf, err := h.open(workload, wait)
	if err != nil {
		return err
	}
	defer hf.close()
	return f(hf)
}

// RunOf is the run workload's holder file names ("" for none, or no
// file), read without its lock: for a check that changes nothing.
func (h Holders) RunOf(workload string) (string, error) {
	if err := checkWorkload(workload); err != nil {
		return "", fmt.Errorf("holder of %q: %w", workload, err)
	}
	b, err := os.ReadFile(filepath.Join(h.Root, workload))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("holder of %s: %w", workload, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Hold locks workload's holder file for run's Join and returns the
// unlock. When the file names another run (one whose release has not run
// yet: a restart, or a new run right after the last), what that run held
// goes first (LeaveAll on every network workload holds a lease on); then
// the file names run. (A file that names no run is not asked about: to
// learn whether a run from before holder files left leases would read
// every lease of every network at each start.)
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
func (h Holders) ReleaseEnded(workload string, live Live) error {
	return h.with(workload, true, func(hf holder) error { return h.release(hf, workload, live) })
}

// releaseIfFree is ReleaseEnded unless another process holds workload's
// holder file (a Join, a release under way): then it does nothing.
func (h Holders) releaseIfFree(workload string, live Live) error {
	err := h.with(workload, false, func(hf holder) error { return h.release(hf, workload, live) })
	if errors.Is(err, errBusy) {
		return nil
	}
	return err
}

// Forget gives back what the run workload's holder file names holds,
// whether that run has ended or not, and removes the file: the workload
// does not run and is being removed (cove rm) or created anew (cove apply
// of an added spec). A workload whose file names no run (most: it never
// joined a network) costs one failed read: a run from before holder files
// is its release unit's to give back (ReleaseEnded), since learning
// whether it left leases reads every lease of every network, for each of
// the workloads an apply adds or a scale removes.
func (h Holders) Forget(workload string) error {
	if run, err := h.RunOf(workload); err != nil || run == "" {
		return err
	}
	return h.with(workload, true, func(hf holder) error {
		return h.release(hf, workload, func(string, string) (bool, error) { return false, nil })
	})
}

// release gives back what the run hf names holds (for none, whatever
// workload holds), unless live says that run still runs, and makes hf
// name no run.
func (h Holders) release(hf holder, workload string, live Live) error {
	run, err := hf.run()
	if err != nil {
		return err
	}
	if run == "" && !h.holdsAny(workload) {
		return nil
	}
	running, err := live(workload, run)
	if err != nil {
		return fmt.Errorf("release the network state of %s: %w", workload, err)
	}
	if running {
		return nil
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
