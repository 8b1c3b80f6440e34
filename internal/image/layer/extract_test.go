package layer

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// swapper reads r and, once it has passed after bytes, runs swap once: what
// a running container may do to the directory of an Extract meanwhile.
type swapper struct {
	r     io.Reader
	after int
	swap  func()
}

// Read reads at most a block, then swaps when it is time.
func (s *swapper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p[:min(len(p), blockSize)])
	if s.after -= n; s.after < 0 && s.swap != nil {
		s.swap()
		s.swap = nil
	}
	return n, err
}

// TestExtractNeverFollowsASwappedSymlink: a file replaced by a symlink to
// a file outside the directory while its data is read keeps the
// attributes its entry gives to the file written (set through its
// descriptor), and the file outside keeps its mode (a chmod by name would
// follow the symlink: fchmodat2(AT_SYMLINK_NOFOLLOW) fails on one, and
// plain fchmodat follows it).
func TestExtractNeverFollowsASwappedSymlink(t *testing.T) {
	parent := t.TempDir()
	dir, victim := filepath.Join(parent, "dir"), filepath.Join(parent, "victim")
	if err := errors.Join(os.Mkdir(dir, 0o755), os.WriteFile(victim, []byte("host"), 0o600)); err != nil {
		t.Fatal(err)
	}
	extractSwapped(t, dir, func(tmp string) error { return os.Symlink(victim, tmp) })
	if st, err := os.Stat(victim); err != nil || st.Mode() != 0o600 {
		t.Errorf("the file outside the directory is now %v (%v), want -rw-------", st.Mode(), err)
	}
}

// TestExtractHardLinkSwap: a file replaced, while its data is read, by a
// hard link to a file of the container's user does not give that file
// the entry's owner and setuid mode.
func TestExtractHardLinkSwap(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "mine")
	if err := errors.Join(os.WriteFile(mine, []byte("mine"), 0o644), os.Chown(mine, 1000, 1000)); err != nil {
		t.Fatal(err)
	}
	extractSwapped(t, dir, func(tmp string) error { return os.Link(mine, tmp) })
	st := lstatT(t, mine)
	if st.Uid != 1000 || st.Mode&0o7777 != 0o644 {
		t.Errorf("the user's file is now %d-owned, mode %#o; want 1000, 0644", st.Uid, st.Mode&0o7777)
	}
}

// extractSwapped extracts into dir a setuid root file x, which, while its
// data is read, is replaced by what replace makes at the path it is given
// (renamed over x, as a container would).
func extractSwapped(t *testing.T, dir string, replace func(tmp string) error) {
	t.Helper()
	e := regEnt("x", strings.Repeat("d", 4*blockSize))
	e.Mode = 0o4777
	tmp := filepath.Join(dir, "tmp")
	stream := &swapper{r: bytes.NewReader(layerTar(t, e)), after: 5 * blockSize, swap: func() {
		if err := errors.Join(replace(tmp), os.Rename(tmp, filepath.Join(dir, "x"))); err != nil {
			t.Error(err)
		}
	}}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Extract(f, stream, ExtractOptions{}); err != nil {
		t.Errorf("Extract with x swapped: %v", err)
	}
}
