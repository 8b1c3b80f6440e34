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
// a file outside the directory while its data is read is refused, and
// the file outside keeps its mode (a chmod by name would follow the
// symlink: fchmodat2(AT_SYMLINK_NOFOLLOW) fails on one, and plain
// fchmodat follows it).
func TestExtractNeverFollowsASwappedSymlink(t *testing.T) {
	parent := t.TempDir()
	dir, victim := filepath.Join(parent, "dir"), filepath.Join(parent, "victim")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := regEnt("x", strings.Repeat("d", 4*blockSize))
	e.Mode = 0o4777
	stream := &swapper{r: bytes.NewReader(layerTar(t, e)), after: 5 * blockSize, swap: func() {
		if err := errors.Join(os.Symlink(victim, filepath.Join(dir, "tmp")), os.Rename(filepath.Join(dir, "tmp"), filepath.Join(dir, "x"))); err != nil {
			t.Error(err)
		}
	}}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Extract(f, stream, ExtractOptions{}); !errors.Is(err, ErrRefused) {
		t.Errorf("Extract with x swapped for a symlink: %v, want refused", err)
	}
	if st, err := os.Stat(victim); err != nil || st.Mode() != 0o600 {
		t.Errorf("the file outside the directory is now %v (%v), want -rw-------", st.Mode(), err)
	}
}
