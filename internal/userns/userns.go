// Package userns allocates the host user and group IDs of containers
// that run in a user namespace of their own (security.userns), and
// records them: one file per workload in the store's directory, holding
// "BASE:COUNT", written under an exclusive lock on the directory's lock
// file, so that concurrent starts never get the same IDs.
//
// "auto" follows systemd's allocation for containers (docs/UIDS-GIDS.md,
// systemd-nspawn --private-users=pick): 65536 IDs, a block aligned to
// 65536 in 0x00080000…0x6FFFFFFF, whose upper 16 bits are the container's
// number. A block is free when no other workload's record overlaps it, no
// user or group of /etc/passwd or /etc/group has an ID in it (nor, where
// nsswitch.conf names other sources, LDAP say, glibc's NSS knows one of
// its first or last but one ID: the check nspawn makes), no range of
// /etc/subuid or /etc/subgid (rootless podman's, nspawn's) overlaps it,
// and no running systemd-nspawn --private-users=pick holds it.
// A workload keeps its block across restarts, so its files keep their
// owners, until Release (cove rm). A run removed when it ends (cove run
// --rm) records its block in its unit's runtime directory instead
// (launch.UserNSRecord), which systemd removes with the unit: it frees
// the block with no process of cove's.
package userns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Dir is where cove records the allocations: Dir/NAME per workload
// (launch.UserNSRecord).
const Dir = launch.UserNSDir

// The auto blocks: BlockSize IDs each, from FirstBase to LastBase
// (systemd's container range 0x00080000…0x6FFFFFFF).
const (
	BlockSize = 0x10000
	FirstBase = 0x00080000
	LastBase  = 0x6FFF0000
)

// lockName is the lock file in the store's directory (not a workload
// name: those start with a letter or digit).
const lockName = ".lock"

// Store records allocations in Dir and checks blocks against the host's
// users, groups and subordinate ranges in the files it names.
type Store struct {
	Dir            string
	Passwd, Group  string // NSS files: no user or group ID may fall in a block
	SubUID, SubGID string // subordinate ranges: no block may overlap one
	Nspawn         string // NspawnDir: blocks running nspawn containers hold
	Run            string // launch.UserNSRunDir: the records of runs removed when they end
	NSSwitch       string // nsswitch.conf: its passwd and group sources beyond files are asked (nssHolds)
	Getent         string // glibc's getent, which asks them
}

// NspawnDir is where systemd-nspawn --private-users=pick locks the block
// it picked: while its container runs it holds an open file description
// lock on NspawnDir/BASE (systemd's uid_shift_pick).
const NspawnDir = "/run/systemd/nspawn-uid"

// Default is the host's store.
func Default() *Store {
	return &Store{Dir: Dir, Passwd: "/etc/passwd", Group: "/etc/group", SubUID: "/etc/subuid", SubGID: "/etc/subgid", Nspawn: NspawnDir, Run: launch.UserNSRunDir,
		NSSwitch: "/etc/nsswitch.conf", Getent: "/usr/bin/getent"}
}

// Allocate returns the host IDs of workload name for mode (spec.UserNSAuto
// or "UID:COUNT") and records them. Auto keeps the workload's recorded
// auto block, else takes the first free one; an explicit range overlapping
// another workload's is refused.
func (s *Store) Allocate(name, mode string) (spec.IDRange, error) {
	var r spec.IDRange
	err := s.locked(func() error {
		all, err := s.records()
		if err != nil {
			return err
		}
		if r, err = s.pick(name, mode, all); err != nil {
			return err
		}
		if old, ok := all[name]; ok && old == r {
			return nil
		}
		return s.write(name, r)
	})
	if err != nil {
		return spec.IDRange{}, fmt.Errorf("allocate user namespace IDs for %s: %w", name, err)
	}
	return r, nil
}

// pick chooses name's range for mode, given the recorded ones (all).
func (s *Store) pick(name, mode string, all map[string]spec.IDRange) (spec.IDRange, error) {
	others := func(r spec.IDRange) (string, bool) {
		for n, o := range all {
			if n != name && o.Overlaps(r) {
				return n, true
			}
		}
		return "", false
	}
	if mode != spec.UserNSAuto {
		r, err := spec.ParseIDRange(mode)
		if err != nil {
			return r, err
		}
		if n, ok := others(r); ok {
			return r, fmt.Errorf("security.userns = %q overlaps the IDs of workload %s (%s); choose a range outside it, or \"auto\"", mode, n, all[n])
		}
		held, err := nspawnBlocks(s.Nspawn)
		for _, b := range held {
			if b.Overlaps(r) {
				return r, fmt.Errorf("security.userns = %q overlaps the IDs %s of a running systemd-nspawn container (%s); choose a range outside it, or \"auto\"", mode, b, filepath.Join(s.Nspawn, strconv.FormatUint(uint64(b.Base), 10)))
			}
		}
		return r, err
	}
	if old, ok := all[name]; ok && isAutoBlock(old) {
		return old, nil
	}
	taken, err := s.hostIDs()
	if err != nil {
		return spec.IDRange{}, err
	}
	askNSS, err := nssOthers(s.NSSwitch)
	if err != nil {
		return spec.IDRange{}, err
	}
	for base := uint32(FirstBase); base <= LastBase; base += BlockSize {
		r := spec.IDRange{Base: base, Count: BlockSize}
		if _, ok := others(r); ok || taken.overlaps(r) {
			continue
		}
		if !askNSS {
			return r, nil
		}
		if held, err := nssHolds(s.Getent, r); err != nil || !held {
			return r, err
		}
	}
	return spec.IDRange{}, errors.New("no free block of 65536 IDs left in 0x00080000…0x6FFFFFFF")
}

// isAutoBlock reports whether r is a block auto hands out.
func isAutoBlock(r spec.IDRange) bool {
	return r.Count == BlockSize && r.Base%BlockSize == 0 && r.Base >= FirstBase && r.Base <= LastBase
}

// Lookup returns workload name's recorded IDs, if it has any.
func (s *Store) Lookup(name string) (spec.IDRange, bool, error) {
	p := s.record(name)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return spec.IDRange{}, false, nil
	}
	if err != nil {
		return spec.IDRange{}, false, fmt.Errorf("read the user namespace IDs of %s: %w", name, err)
	}
	r, err := spec.ParseIDRange(strings.TrimSpace(string(b)))
	if err != nil {
		return spec.IDRange{}, false, fmt.Errorf("read the user namespace IDs of %s: %s: %w", name, p, err)
	}
	return r, true, nil
}

// record is the path of workload name's record: in its runtime directory
// (s.Run/NAME, made by systemd for a run removed when it ends) if that
// exists, else s.Dir/NAME.
func (s *Store) record(name string) string {
	if s.Run != "" {
		if st, err := os.Stat(filepath.Join(s.Run, name)); err == nil && st.IsDir() {
			return filepath.Join(s.Run, name, runRecord)
		}
	}
	return filepath.Join(s.Dir, name)
}

// runRecord is the record's name in a runtime directory.
const runRecord = "ids"

// Release forgets workload name's IDs (none recorded is no error).
func (s *Store) Release(name string) error {
	if _, err := os.Stat(s.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil // no workload ever had IDs: nothing to release, and no store to create
	}
	err := s.locked(func() error {
		err := os.Remove(filepath.Join(s.Dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("release the user namespace IDs of %s: %w", name, err)
	}
	return nil
}

// locked runs f holding the store's lock.
func (s *Store) locked(f func() error) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(s.Dir, lockName)
	l, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := unix.Flock(int(l.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: flock: %w", p, err)
	}
	return f()
}

// records reads every workload's recorded range.
func (s *Store) records() (map[string]spec.IDRange, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, err
	}
	runs, err := os.ReadDir(s.Run)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	all := map[string]spec.IDRange{}
	for _, e := range append(entries, runs...) {
		if !e.Type().IsRegular() && !e.IsDir() || spec.ValidRef(e.Name()) != nil {
			continue // the lock, a temporary file
		}
		r, ok, err := s.Lookup(e.Name())
		if err != nil {
			return nil, err
		}
		if ok {
			all[e.Name()] = r
		}
	}
	return all, nil
}

// write records r for workload name (see record), atomically.
func (s *Store) write(name string, r spec.IDRange) error {
	p := s.record(name)
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
	if err := os.WriteFile(tmp, []byte(r.String()+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// hostRanges are host IDs that are in use outside cove.
type hostRanges []spec.IDRange

// overlaps reports whether any of h overlaps r.
func (h hostRanges) overlaps(r spec.IDRange) bool {
	for _, x := range h {
		if x.Overlaps(r) {
			return true
		}
	}
	return false
}

// hostIDs reads the IDs of the host's users and groups, its subordinate
// ranges and the blocks of running nspawn containers. A missing file has
// none.
func (s *Store) hostIDs() (hostRanges, error) {
	h, err := nspawnBlocks(s.Nspawn)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path        string
		first, last int // the fields: one ID (first = last) or a start and a count
	}{{s.Passwd, 2, 2}, {s.Passwd, 3, 3}, {s.Group, 2, 2}, {s.SubUID, 1, 2}, {s.SubGID, 1, 2}} {
		rs, err := readRanges(f.path, f.first, f.last)
		if err != nil {
			return nil, err
		}
		h = append(h, rs...)
	}
	return h, nil
}

// nspawnBlocks returns the blocks that running nspawn containers hold
// (see NspawnDir; "" or a missing dir: none). It only tests the locks.
func nspawnBlocks(dir string) ([]spec.IDRange, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the blocks of nspawn containers: %w", err)
	}
	var held []spec.IDRange
	for _, e := range entries {
		base, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		locked, err := lockHeld(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if locked {
			held = append(held, spec.IDRange{Base: uint32(base), Count: BlockSize})
		}
	}
	return held, nil
}

// lockHeld reports whether an open file description (or a process)
// holds a lock on the file path: fcntl(F_OFD_GETLK), which takes none.
func lockHeld(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // its nspawn ended and removed it
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("test the lock on %s: fcntl(F_OFD_GETLK): %w", path, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// readRanges reads the colon-separated file path: field first is an ID
// and, when last differs, field last the count of IDs from it. Lines
// that do not parse are skipped (comments, NIS "+" entries).
func readRanges(path string, first, last int) ([]spec.IDRange, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []spec.IDRange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) <= last {
			continue
		}
		id, err1 := strconv.ParseUint(fields[first], 10, 32)
		count, err2 := uint64(1), error(nil)
		if last != first {
			count, err2 = strconv.ParseUint(fields[last], 10, 32)
		}
		if err1 == nil && err2 == nil && count > 0 {
			out = append(out, spec.IDRange{Base: uint32(id), Count: uint32(min(count, 1<<32-1-id))})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}
