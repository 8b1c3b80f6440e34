package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/internal/image/stored"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// pullWork is one pull's claim on tmp/: the directory pull-ID/ its layers
// are unpacked in, the lock pull-ID.lock it holds while it lives, and its
// lease pull-ID.lease (the diffIDs it will reference).
type pullWork struct {
	s    *Store
	id   string
	lock *os.File
}

func (w *pullWork) dir() string       { return filepath.Join(w.s.TmpDir(), "pull-"+w.id) }
func (w *pullWork) LockPath() string  { return w.dir() + ".lock" }
func (w *pullWork) leasePath() string { return w.dir() + ".lease" }

// beginPull sweeps stale work from tmp/ and claims a new pull's share of
// it. The lock file is created and locked under the store lock, so a
// sweep never sees it unlocked. The caller calls end.
func (s *Store) beginPull() (*pullWork, error) {
	w := &pullWork{s: s, id: stored.RandomID()}
	var trash []string
	err := s.withLock(func() error {
		var err error
		if trash, err = s.sweep(); err != nil {
			return err
		}
		f, err := os.OpenFile(w.LockPath(), os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		w.lock = f
		if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return err
		}
		return os.Mkdir(w.dir(), 0o700)
	})
	removeAll(trash)
	if err != nil {
		w.end()
		return nil, fmt.Errorf("start pull in %s: %w", s.Root(), err)
	}
	return w, nil
}

// lease records, under the store lock, the layers this pull will
// reference, so that Prune keeps them until the pull ends.
func (w *pullWork) lease(ids []v1.Hash) error {
	data, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	return w.s.withLock(func() error {
		if err := os.WriteFile(w.leasePath(), data, 0o600); err != nil {
			return fmt.Errorf("pull lease: %w", err)
		}
		return nil
	})
}

// end removes the pull's work, its lease and its lock.
func (w *pullWork) end() {
	_ = os.RemoveAll(w.dir())
	_ = os.Remove(w.leasePath())
	if w.lock != nil {
		_ = os.Remove(w.LockPath())
		w.lock.Close()
	}
}

// leases are the diffIDs named by the leases of live pulls. Called under
// the store lock after sweep, so every lease left belongs to a live pull.
func (s *Store) leases() (map[v1.Hash]bool, error) {
	paths, err := filepath.Glob(filepath.Join(s.TmpDir(), "pull-*.lease"))
	if err != nil {
		return nil, err
	}
	held := map[v1.Hash]bool{}
	for _, p := range paths {
		var ids []v1.Hash
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err == nil {
			err = json.Unmarshal(data, &ids)
		}
		if err != nil {
			return nil, fmt.Errorf("pull lease %s: %w", p, err)
		}
		for _, id := range ids {
			held[id] = true
		}
	}
	return held, nil
}

// sweep clears tmp/ of what dead pulls, writers and prunes left, under
// the store lock: a pull's files when its lock can be taken (renamed to
// trash, returned for removal after the lock is released), free layer
// locks, atomic-write temporaries, and trash.
func (s *Store) sweep() (trash []string, err error) {
	ents, err := os.ReadDir(s.TmpDir())
	if err != nil {
		return nil, fmt.Errorf("sweep %s: %w", s.TmpDir(), err)
	}
	for _, e := range ents {
		p := filepath.Join(s.TmpDir(), e.Name())
		switch n := e.Name(); {
		case strings.HasPrefix(n, "pull-") && strings.HasSuffix(n, ".lock"):
			trash = append(trash, s.sweepPull(strings.TrimSuffix(p, ".lock"))...)
		case strings.HasPrefix(n, "pull-") && !strings.Contains(n, "."):
			if ok, _ := stored.Exists(p + ".lock"); !ok {
				trash = append(trash, p) // its lock went first: a dead pull's
			}
		case strings.HasPrefix(n, "layer-") && strings.HasSuffix(n, ".lock"):
			if f, _ := tryLock(p); f != nil {
				_ = os.Remove(p)
				f.Close()
			}
		case strings.HasPrefix(n, "write-"), strings.HasPrefix(n, "trash-"):
			trash = append(trash, p)
		}
	}
	return trash, nil
}

// sweepPull removes the lease and lock of the pull whose directory is
// dir when its lock is free, and returns dir for removal.
func (s *Store) sweepPull(dir string) []string {
	f, _ := tryLock(dir + ".lock")
	if f == nil {
		return nil // alive
	}
	defer f.Close()
	_ = os.Remove(dir + ".lease")
	if ok, _ := stored.Exists(dir); !ok {
		_ = os.Remove(dir + ".lock")
		return nil
	}
	t := filepath.Join(s.TmpDir(), "trash-"+stored.RandomID())
	if err := os.Rename(dir, t); err != nil {
		return nil // tried again at the next sweep
	}
	_ = os.Remove(dir + ".lock")
	return []string{t}
}

// removeAll removes the given trees, ignoring errors (what is left is
// swept again later).
func removeAll(paths []string) {
	for _, p := range paths {
		_ = os.RemoveAll(p)
	}
}
