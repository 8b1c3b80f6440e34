package image

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The helper mode: the test binary re-executed with helperEnv set pulls
// and prints one line per progress event; at the event named by
// helperStall it stops (as a stalled network would) until killed.
const (
	helperEnv   = "COVE_IMAGE_TEST_HELPER"
	helperRoot  = "COVE_IMAGE_TEST_ROOT"
	helperRef   = "COVE_IMAGE_TEST_REF"
	helperReg   = "COVE_IMAGE_TEST_REGISTRY"
	helperStall = "COVE_IMAGE_TEST_STALL"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "pull" {
		os.Exit(helperPull())
	}
	os.Exit(m.Run())
}

// helperPull is the child's pull; its exit status is 0 only on success.
func helperPull() int {
	reg := &Registries{Registry: []Registry{{Location: os.Getenv(helperReg), Insecure: true}}}
	s, err := Open(os.Getenv(helperRoot), reg)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	stall := LayerState(os.Getenv(helperStall))
	opt := PullOptions{Keychain: testKeychain, Parallel: 1, Progress: func(p Progress) {
		fmt.Printf("%s %s %d/%d\n", p.State, p.Digest, p.Done, p.Total)
		if p.State == stall && (stall != Downloading || p.Done > 0) {
			time.Sleep(time.Hour)
		}
	}}
	if _, err := s.Pull(context.Background(), os.Getenv(helperRef), opt); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// killPullAt runs a pull of ref into s in a child process and SIGKILLs it
// when it reports a layer in state stall (with bytes, for downloading).
func killPullAt(t *testing.T, s *Store, r *testRegistry, ref string, stall LayerState) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=pull", helperRoot+"="+s.Root(), helperRef+"="+ref, helperReg+"="+r.host, helperStall+"="+string(stall))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) == 3 && f[0] == string(stall) && (stall != Downloading || !strings.HasPrefix(f[2], "0/")) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			t.Logf("killed the pull at %q", lines.Text())
			return
		}
		t.Logf("child: %s", lines.Text())
	}
	t.Fatalf("the child pull ended before %s", stall)
}

// TestKilledPull kills a pull mid-download, and after one layer is in
// place but before the record: no half layer, record or name is visible,
// the dead pull's debris is swept by the next pull, and that pull
// succeeds (reusing the complete layer).
func TestKilledPull(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, false)
	base := mkLayer(t, tarOf(t, tfile{name: "base", body: randomBody(2 << 20)}), ociGzip)
	top := mkLayer(t, tarOf(t, tfile{name: "top", body: randomBody(2 << 20)}), ociGzip)
	ref := r.push(t, "test/killed:1", mkImage(t, true, "amd64", base, top))
	t.Run("mid-download", func(t *testing.T) {
		s := newStore(t, r.registries())
		killPullAt(t, s, r, ref, Downloading)
		assertNothingVisible(t, s, nil)
		if len(entries(t, s.TmpDir())) == 0 {
			t.Error("tmp/ is empty: the child was not killed mid-pull")
		}
		repull(t, s, ref, 0)
	})
	t.Run("before-record", func(t *testing.T) {
		s := newStore(t, r.registries())
		killPullAt(t, s, r, ref, Done)
		if got := entries(t, s.ImagesDir()); len(got) != 0 {
			t.Errorf("images/ = %v after the kill", got)
		}
		if got := entries(t, s.LayersDir()); len(got) != 1 {
			t.Errorf("layers/ = %v after the kill, want the one complete layer", got)
		}
		repull(t, s, ref, 1)
	})
}

// repull pulls ref again after a killed pull: it succeeds, finds
// reused layers already there, and leaves tmp/ empty.
func repull(t *testing.T, s *Store, ref string, reused int) {
	t.Helper()
	ev := &events{}
	rec := mustPull(t, s, ref, ev)
	found := map[v1.Hash]bool{}
	for _, p := range ev.all {
		if p.State == AlreadyExists {
			found[p.DiffID] = true
		}
	}
	if len(found) != reused {
		t.Errorf("the new pull found %d layers already there, want %d", len(found), reused)
	}
	if _, err := s.LayerDirs(rec); err != nil {
		t.Error(err)
	}
	if got := entries(t, s.TmpDir()); len(got) != 0 {
		t.Errorf("tmp/ after the new pull = %v", got)
	}
}
