package userns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/spec"
)

// newStore is a store in a temporary directory with the given passwd,
// group and subuid contents.
func newStore(t *testing.T, passwd, group, subuid string) *Store {
	d := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return &Store{Dir: filepath.Join(d, "userns"), Passwd: write("passwd", passwd), Group: write("group", group),
		SubUID: write("subuid", subuid), SubGID: filepath.Join(d, "no-subgid"), Nspawn: filepath.Join(d, "nspawn-uid"), Run: filepath.Join(d, "run")}
}

// TestAutoBlocks checks that auto hands out aligned 64K blocks from
// 0x80000, skips blocks holding a user, a group or a subordinate range,
// keeps a workload's block and gives it back on Release.
func TestAutoBlocks(t *testing.T) {
	s := newStore(t, "root:x:0:0::/root:/bin/sh\nodd:x:524300:100::/:/bin/sh\n", "g:x:589900:\n", "podman:655360:65536\n")
	a, err := s.Allocate("a", spec.UserNSAuto)
	if err != nil {
		t.Fatal(err)
	}
	// 0x80000 holds user 524300, 0x90000 group 589900, 0xA0000 podman's.
	if want := (spec.IDRange{Base: 0xB0000, Count: BlockSize}); a != want {
		t.Fatalf("a got %v, want %v", a, want)
	}
	b, _ := s.Allocate("b", spec.UserNSAuto)
	if b.Overlaps(a) || b.Base%BlockSize != 0 {
		t.Fatalf("b got %v, overlapping a's %v or unaligned", b, a)
	}
	if again, _ := s.Allocate("a", spec.UserNSAuto); again != a {
		t.Errorf("a again got %v, want its block %v", again, a)
	}
	if got, ok, err := s.Lookup("a"); err != nil || !ok || got != a {
		t.Errorf("Lookup a = %v, %v, %v", got, ok, err)
	}
	if err := s.Release("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Lookup("a"); ok {
		t.Error("a still recorded after Release")
	}
	if c, _ := s.Allocate("c", spec.UserNSAuto); c != a {
		t.Errorf("c got %v, want a's freed block %v", c, a)
	}
	if err := s.Release("never"); err != nil {
		t.Errorf("Release of nothing: %v", err)
	}
}

// TestExplicitOverlapRefused checks that a range overlapping another
// workload's is refused, naming that workload, and that a disjoint one
// is recorded.
func TestExplicitOverlapRefused(t *testing.T) {
	s := newStore(t, "", "", "")
	a, _ := s.Allocate("a", spec.UserNSAuto)
	_, err := s.Allocate("b", fmt.Sprintf("%d:10", a.Base+100))
	if err == nil || !strings.Contains(err.Error(), "workload a") {
		t.Fatalf("overlapping range: got %v, want an error naming workload a", err)
	}
	r, err := s.Allocate("b", "3000000:1000")
	if err != nil || r != (spec.IDRange{Base: 3000000, Count: 1000}) {
		t.Fatalf("disjoint range: %v, %v", r, err)
	}
	if c, _ := s.Allocate("c", "3000999:1"); c.Count != 0 {
		t.Errorf("a range inside b's was given: %v", c)
	}
}

// TestConcurrentAllocations checks that concurrent allocations get
// disjoint blocks.
func TestConcurrentAllocations(t *testing.T) {
	s := newStore(t, "", "", "")
	const n = 8
	got := make([]spec.IDRange, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Allocate(fmt.Sprintf("w%d", i), spec.UserNSAuto)
			if err != nil {
				t.Error(err)
			}
			got[i] = r
		}()
	}
	wg.Wait()
	for i := range got {
		for j := range i {
			if got[i].Overlaps(got[j]) {
				t.Errorf("w%d %v and w%d %v overlap", i, got[i], j, got[j])
			}
		}
	}
}

// TestReleaseCreatesNothing: releasing with no store (no workload ever
// had IDs, as after cove rm of an ordinary container) leaves no
// directory or lock behind.
func TestReleaseCreatesNothing(t *testing.T) {
	s := newStore(t, "", "", "")
	s.Dir = filepath.Join(t.TempDir(), "userns")
	if err := s.Release("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Release created %s: %v", s.Dir, err)
	}
}

// TestNspawnBlocksSkipped: a block a running nspawn holds (an open file
// description lock on NspawnDir/BASE, as systemd takes it) is skipped by
// auto and refused to an explicit range, naming it; a block whose file
// is there but not locked (its nspawn ended) is free.
func TestNspawnBlocksSkipped(t *testing.T) {
	s := newStore(t, "", "", "")
	if err := os.MkdirAll(s.Nspawn, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"524288", "589824"} {
		if err := os.WriteFile(filepath.Join(s.Nspawn, base), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(s.Nspawn, "524288"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Allocate("a", spec.UserNSAuto); err != nil || r.Base != 589824 {
		t.Errorf("auto next to a running nspawn's block: %v, %v; want 589824 (524288 held, 589824's lock free)", r, err)
	}
	_, err = s.Allocate("b", "530000:10")
	if err == nil || !strings.Contains(err.Error(), "running systemd-nspawn container") || !strings.Contains(err.Error(), "524288") {
		t.Errorf("an explicit range in a running nspawn's block: %v", err)
	}
}

// TestRunRecords: a workload whose runtime directory exists (a run removed
// when it ends) records its block there, where others see it taken and
// Lookup finds it; once systemd removes the directory the block is free
// and nothing is left in the store's directory.
func TestRunRecords(t *testing.T) {
	s := newStore(t, "", "", "")
	if err := os.MkdirAll(filepath.Join(s.Run, "once"), 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := s.Allocate("once", spec.UserNSAuto)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Run, "once", "ids")); err != nil || string(b) != a.String()+"\n" {
		t.Fatalf("the run's record: %q, %v; want %s", b, err, a)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "once")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a run's record is also in the store's directory: %v", err)
	}
	if got, ok, err := s.Lookup("once"); err != nil || !ok || got != a {
		t.Errorf("Lookup of a run: %v, %v, %v", got, ok, err)
	}
	if b, _ := s.Allocate("other", spec.UserNSAuto); b.Overlaps(a) {
		t.Errorf("another workload got %v, inside the run's %v", b, a)
	}
	os.RemoveAll(filepath.Join(s.Run, "once")) // systemd, when the unit stops
	if c, _ := s.Allocate("third", spec.UserNSAuto); c != a {
		t.Errorf("after the run's directory went, a new workload got %v, want the freed %v", c, a)
	}
}

// TestNSSOthers: only passwd and group sources beyond files, compat and
// systemd's modules make the store ask glibc; actions are not sources; a
// missing nsswitch.conf is files only.
func TestNSSOthers(t *testing.T) {
	d := t.TempDir()
	for conf, want := range map[string]bool{
		"passwd: files systemd\ngroup: files systemd\nhosts: files dns ldap\n": false,
		"passwd: compat\ngroup: files mymachines [NOTFOUND=return] systemd\n":  false,
		"passwd: files ldap\ngroup: files\n":                                   true,
		"passwd:\tfiles\ngroup:\tfiles sss\n":                                  true,
		"# passwd: ldap\n":                                                     false,
	} {
		p := filepath.Join(d, "nsswitch.conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := nssOthers(p); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", conf, got, err, want)
		}
	}
	if got, err := nssOthers(filepath.Join(d, "none")); err != nil || got {
		t.Errorf("no nsswitch.conf: %v, %v; want files only", got, err)
	}
}
