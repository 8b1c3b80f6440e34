package tests

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-project/cove/spec"
)

// TestDockerRemoveRacingStart: docker rm -f racing a docker restart of
// the same container (sent at another point of the restart each round):
// a removal that succeeds leaves neither the container nor its unit nor
// its writable layer.
// Before, a restart that loaded its new unit after the removal had
// stopped the old one kept running without its record (docker inspect
// still found the workload).
func TestDockerRemoveRacingStart(t *testing.T) {
	needAPI(t)
	docker, ref := dockerWithImage(t)
	const name = "rmrace"
	t.Cleanup(func() {
		docker("rm", "-f", name)
		cove(t, "rm", name)
		cove(t, "rmi", "--force", ref)
		cove(t, "image", "prune")
	})
	for round := range 8 {
		if r := docker("run", "-d", "--name", name, ref, "sleep", "1000"); r.Code != 0 {
			t.Fatalf("round %d: docker run -d: exit %d: %s", round, r.Code, r.Stderr)
		}
		var wg sync.WaitGroup
		var restart, remove result
		wg.Add(2)
		go func() { defer wg.Done(); restart = docker("restart", "-t", "0", name) }()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round*15) * time.Millisecond) // at another point of the restart each round
			remove = docker("rm", "-f", name)
		}()
		wg.Wait()
		if remove.Code != 0 { // a 409: a start was under way
			if !strings.Contains(remove.Stderr, "under way") && !strings.Contains(remove.Stderr, "remove it again") {
				t.Errorf("round %d: docker rm -f: exit %d: %s (restart: exit %d %s)", round, remove.Code, remove.Stderr, restart.Code, restart.Stderr)
			}
			eventually(t, 15*time.Second, "a docker rm -f once the restart has ended", func() bool { return docker("rm", "-f", name).Code == 0 })
		}
		eventually(t, 15*time.Second, "the container removed by docker rm -f to be gone", func() bool {
			return show(t, spec.UnitName(name), "LoadState") == "not-found" && docker("inspect", name).Code != 0
		})
		if _, err := os.Stat(filepath.Join(workDir, "containers", name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("round %d: the removed container's writable layer: %v, want it gone", round, err)
		}
	}
}
