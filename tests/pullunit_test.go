package tests

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/tests/registry"
)

// TestPullUnitKilled: the pull unit of a declared image workload is
// SIGKILLed by systemd in the middle of a layer's download. The pull
// unit fails, the workload does not start, and the store shows no half
// layer and no image; the next start of the workload pulls again
// through its pull unit, runs, and leaves the store's tmp/ empty.
func TestPullUnitKilled(t *testing.T) {
	env.Need(t)
	ref, reg := testImage(t)
	stall, err := registry.StartStall(reg.Addr, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stall.Close)
	bigRef := stall.Addr + "/" + strings.TrimPrefix(pushBig(t, reg), reg.Addr+"/")
	conf := "[[registry]]\nlocation = \"" + reg.Addr + "\"\ninsecure = true\n[[registry]]\nlocation = \"" + stall.Addr + "\"\ninsecure = true\n"
	if r := insideStdin(t, conf, "sh", "-c", "cat > /etc/cove/registries.toml"); r.Code != 0 {
		t.Fatalf("write registries.toml: %s", r.Stderr)
	}
	t.Cleanup(func() { cove(t, "rmi", bigRef); cove(t, "rmi", ref); cove(t, "image", "prune") }) // after pruneAll's
	pruneAll(t)
	mustCove(t, "pull", ref)
	layersBefore := layerDirs(t)
	spec := "version = 1\nkind = \"container\"\n[container]\nimage = \"" + bigRef + "\"\ncommand = [\"sleep\", \"1000\"]\n[service]\nstop_timeout = \"1s\"\n"
	if r := insideStdin(t, spec, "sh", "-c", "cat > /etc/cove/pullkill.toml && systemctl daemon-reload && systemctl start --no-block cove-pullkill.service"); r.Code != 0 {
		t.Fatalf("declare pullkill: %s", r.Stderr)
	}
	select {
	case <-stall.Stalled:
	case <-time.After(60 * time.Second):
		t.Fatal("the pull unit's download never reached the stall")
	}
	if st := show(t, "cove-pullkill-pull.service", "ActiveState"); st != "activating" {
		t.Fatalf("the pull unit is %s mid-download, want activating", st)
	}
	if len(dirEntries(t, filepath.Join(workDir, "images", "tmp"))) == 0 {
		t.Fatal("tmp/ is empty mid-download: nothing for the kill to interrupt")
	}
	if r := inside(t, "systemctl", "kill", "--signal=SIGKILL", "cove-pullkill-pull.service"); r.Code != 0 {
		t.Fatalf("systemctl kill: %s", r.Stderr)
	}
	eventually(t, 30e9, "the killed pull unit to fail", func() bool {
		return show(t, "cove-pullkill-pull.service", "ActiveState") == "failed"
	})
	assertKilledPullInvisible(t, bigRef, layersBefore)
	stall.Release()
	if r := inside(t, "systemctl", "start", "cove-pullkill.service"); r.Code != 0 {
		t.Fatalf("start after the killed pull: %s\n%s", r.Stderr, inside(t, "journalctl", "--no-pager", "-u", "cove-pullkill-pull.service", "-u", "cove-pullkill.service").Stdout)
	}
	if !imageListed(t, bigRef) {
		t.Errorf("%s is not in cove images after the second pull", bigRef)
	}
	if got := dirEntries(t, filepath.Join(workDir, "images", "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after the second pull = %v", got)
	}
	if n := layerDirs(t); n != layersBefore+1 {
		t.Errorf("the store holds %d layers after the second pull, want %d", n, layersBefore+1)
	}
}

// assertKilledPullInvisible checks what a killed pull leaves: its
// workload not started, no image named ref, no new layer.
func assertKilledPullInvisible(t *testing.T, ref string, layers int) {
	t.Helper()
	if res := show(t, "cove-pullkill-pull.service", "Result"); res != "signal" {
		t.Errorf("the killed pull unit's result is %q, want signal", res)
	}
	if st := show(t, "cove-pullkill.service", "ActiveState"); st == "active" {
		t.Errorf("the workload is %s although its pull was killed", st)
	}
	if imageListed(t, ref) {
		t.Errorf("cove images lists %s after its pull was killed", ref)
	}
	if n := layerDirs(t); n != layers {
		t.Errorf("the store holds %d layers after the killed pull, want %d (no half layer)", n, layers)
	}
}

// pushBig pushes an image of the test rootfs and a layer of 16 MiB of
// random bytes (a download that takes a while) and returns its reference.
func pushBig(t *testing.T, reg *registry.Registry) string {
	t.Helper()
	dir := filepath.Join(workDir, "biglayer")
	mkdirs(t, dir)
	body := make([]byte, 16<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	return pushImage(t, reg, "cove/big:1", v1.Config{Env: []string{"PATH=/bin"}}, rootfs, dir)
}

// imageListed reports whether cove images --json has a row named ref.
func imageListed(t *testing.T, ref string) bool {
	t.Helper()
	var rows []struct{ Name string }
	if err := json.Unmarshal([]byte(mustCove(t, "images", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Name == ref {
			return true
		}
	}
	return false
}

// dirEntries lists dir's names (none when it does not exist).
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
