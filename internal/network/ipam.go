package network

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
)

// DefaultLeaseRoot is where leases live: ROOT/NETWORK/leases/ADDRESS
// holds the name of the workload the address is leased to on its first
// line and the workload's aliases (more names for the address, as the
// network's DNS answers them) one a line after it, and
// ROOT/NETWORK/lock is the per-network allocation lock.
const DefaultLeaseRoot = launch.NetworksDir

// ErrExhausted is returned when a network has no free address left.
var ErrExhausted = errors.New("no free address")

// ErrTaken is returned when a pinned address is leased to another workload.
var ErrTaken = errors.New("address already leased")

// Leases is cove's IPAM: one file per lease, named by the address and
// created with O_EXCL, so no two workloads ever hold one address, even
// across processes; allocation runs under an flock of the network's lock
// file so that a scan and its create are not raced. A lease lives until
// Release: the holder's release unit (a container's) or ExecStopPost (a
// VM's) releases it after the unit has ended;
// leases of holders that died without that are not reclaimed here (a
// later sweep compares them with the units systemd knows).
type Leases struct {
	Root string // DefaultLeaseRoot outside tests
	// Stale, if set, says whether the lease of workload on network may be
	// reclaimed (its holder is gone without releasing it); it is asked,
	// under the lock, only about leases older than StaleAfter and only
	// when an address is wanted that such a lease holds: the pinned one,
	// or any when the network is full. It may clean up what else the
	// holder left; the lease file is removed after it says yes.
	Stale func(network, workload string) bool
}

// StaleAfter is the age below which a lease is never reclaimed: a Join
// that has leased the address but not yet made its link.
const StaleAfter = 10 * time.Second

// dir is the lease directory of a network.
func (l Leases) dir(network string) string {
	return filepath.Join(l.Root, network, "leases")
}

// Allocate leases an IPv4 address of n to workload, with its aliases,
// and returns it. A workload that already holds one gets the same
// address again (idempotent; its aliases as they were). With pinned
// valid, that address or an error.
func (l Leases) Allocate(n plan.Network, workload string, pinned netip.Addr, aliases ...string) (netip.Addr, error) {
	for _, name := range append([]string{workload}, aliases...) {
		if err := checkWorkload(name); err != nil {
			return netip.Addr{}, err
		}
	}
	record := strings.Join(append([]string{workload}, aliases...), "\n")
	if pinned.IsValid() && !plan.Usable(n, pinned) {
		return netip.Addr{}, fmt.Errorf("allocate %v for %s on network %s: not a free host address of %v (gateway %v)", pinned, workload, n.Name, n.Subnet4, n.Gateway4)
	}
	unlock, err := l.lock(n.Name)
	if err != nil {
		return netip.Addr{}, err
	}
	defer unlock()
	held, err := l.list(n.Name)
	if err != nil {
		return netip.Addr{}, err
	}
	for a, w := range held {
		if w == workload && (!pinned.IsValid() || pinned == a) {
			return a, nil
		}
		if w == workload {
			return netip.Addr{}, fmt.Errorf("allocate %v for %s on network %s: it already holds %v", pinned, workload, n.Name, a)
		}
	}
	if pinned.IsValid() {
		if w, ok := held[pinned]; ok && l.reclaim(n.Name, pinned, w) {
			delete(held, pinned)
		}
		return pinned, l.create(n.Name, pinned, record, held)
	}
	a, err := l.first(n, record, held)
	if errors.Is(err, ErrExhausted) && l.reclaimAll(n.Name, held) {
		return l.first(n, record, held)
	}
	return a, err
}

// reclaim removes the lease of a held by w if it is stale (see Stale);
// it reports whether it did. The caller holds the lock.
func (l Leases) reclaim(network string, a netip.Addr, w string) bool {
	path := filepath.Join(l.dir(network), a.String())
	st, err := os.Stat(path)
	if l.Stale == nil || err != nil || time.Since(st.ModTime()) < StaleAfter || !l.Stale(network, w) {
		return false
	}
	return os.Remove(path) == nil
}

// reclaimAll reclaims every stale lease of network, deleting them from
// held; it reports whether any went.
func (l Leases) reclaimAll(network string, held map[netip.Addr]string) bool {
	any := false
	for a, w := range held {
		if l.reclaim(network, a, w) {
			delete(held, a)
			any = true
		}
	}
	return any
}

// first leases the lowest free address of n to record (a lease's text
// without its newline: the workload, then its aliases).
func (l Leases) first(n plan.Network, record string, held map[netip.Addr]string) (netip.Addr, error) {
	workload, _, _ := strings.Cut(record, "\n")
	p := n.Subnet4.Masked()
	for a := p.Addr().Next(); p.Contains(a); a = a.Next() {
		if _, taken := held[a]; taken || !plan.Usable(n, a) {
			continue
		}
		err := l.create(n.Name, a, record, held)
		if errors.Is(err, ErrTaken) {
			continue // leased behind our back (a holder that ignores the lock)
		}
		return a, err
	}
	return netip.Addr{}, fmt.Errorf("allocate address for %s on network %s (%v): %w", workload, n.Name, n.Subnet4, ErrExhausted)
}

// create writes the lease file of a with O_EXCL: record (see first).
func (l Leases) create(network string, a netip.Addr, record string, held map[netip.Addr]string) error {
	workload, _, _ := strings.Cut(record, "\n")
	if w, ok := held[a]; ok {
		return fmt.Errorf("allocate %v for %s on network %s: leased to %s: %w", a, workload, network, w, ErrTaken)
	}
	path := filepath.Join(l.dir(network), a.String())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("allocate %v for %s on network %s: open %s O_EXCL: %w", a, workload, network, path, ErrTaken)
	}
	if err != nil {
		return fmt.Errorf("allocate %v for %s on network %s: %w", a, workload, network, err)
	}
	_, err = f.WriteString(record + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("allocate %v for %s on network %s: write %s: %w", a, workload, network, path, err)
	}
	return nil
}

// Release removes every lease workload holds on network; none is no error.
func (l Leases) Release(network, workload string) error {
	unlock, err := l.lock(network)
	if err != nil {
		return err
	}
	defer unlock()
	held, err := l.list(network)
	if err != nil {
		return err
	}
	for a, w := range held {
		if w != workload {
			continue
		}
		path := filepath.Join(l.dir(network), a.String())
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("release %v of %s on network %s: %w", a, workload, network, err)
		}
	}
	return nil
}

// List is every lease of network: address to workload.
func (l Leases) List(network string) (map[netip.Addr]string, error) {
	return l.list(network)
}

// Names is every lease of network: address to the names its DNS answers
// with it, the workload first, then its aliases.
func (l Leases) Names(network string) (map[netip.Addr][]string, error) {
	return l.read(network)
}

// AliasesOf are the aliases of workload's lease on network (none without
// one).
func (l Leases) AliasesOf(network, workload string) ([]string, error) {
	names, err := l.read(network)
	for _, n := range names {
		if n[0] == workload {
			return n[1:], err
		}
	}
	return nil, err
}

// ErrNoLease is returned by Of for a workload holding no address.
var ErrNoLease = errors.New("no address leased")

// Of is the IPv4 address workload holds on network.
func (l Leases) Of(network, workload string) (netip.Addr, error) {
	held, err := l.list(network)
	if err != nil {
		return netip.Addr{}, err
	}
	for a, w := range held {
		if w == workload {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("address of %s on network %s: %w", workload, network, ErrNoLease)
}

// list reads the lease directory (read): address to workload.
func (l Leases) list(network string) (map[netip.Addr]string, error) {
	names, err := l.read(network)
	held := make(map[netip.Addr]string, len(names))
	for a, n := range names {
		held[a] = n[0]
	}
	return held, err
}

// read reads the lease directory: address to the lease's lines, the
// workload first (never none); a missing directory is no lease.
func (l Leases) read(network string) (map[netip.Addr][]string, error) {
	entries, err := os.ReadDir(l.dir(network))
	if errors.Is(err, fs.ErrNotExist) {
		return map[netip.Addr][]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list leases of network %s: %w", network, err)
	}
	held := make(map[netip.Addr][]string, len(entries))
	for _, e := range entries {
		a, err := netip.ParseAddr(e.Name())
		if err != nil {
			continue // not a lease (an editor's temporary file, say)
		}
		b, err := os.ReadFile(filepath.Join(l.dir(network), e.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list leases of network %s: %w", network, err)
		}
		if err == nil {
			held[a] = strings.Split(strings.TrimSpace(string(b)), "\n")
		}
	}
	return held, nil
}

// lock takes the network's allocation lock (flock LOCK_EX), creating the
// lease directory first; the returned function releases it.
func (l Leases) lock(network string) (func(), error) {
	if err := checkWorkload(network); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.dir(network), 0o755); err != nil {
		return nil, fmt.Errorf("lock leases of network %s: %w", network, err)
	}
	unlock, err := flock(filepath.Join(l.Root, network, "lock"))
	if err != nil {
		return nil, fmt.Errorf("lease on network %s: %w", network, err)
	}
	return unlock, nil
}

// checkWorkload refuses names that could escape the lease directory or
// break the one-line lease format.
func checkWorkload(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\n\x00") {
		return fmt.Errorf("lease: bad name %q", name)
	}
	return nil
}
