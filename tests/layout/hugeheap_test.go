package layout

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mains are cove's binaries: each is started at every container start.
var mains = []string{"cove", "cove-launch", "cove-init"}

// earlyAlloc is what a package initialised before internal/hugeheap may
// allocate at its init: those bytes are on small pages.
const earlyAlloc = 4096

// TestHugeHeapInitFirst builds each binary and runs it with
// GODEBUG=inittrace=1 (cove version; the stage binaries with no stage,
// a usage error after every package's init): internal/hugeheap must be
// initialised, and before any package whose initialisation allocates
// more than earlyAlloc bytes.
func TestHugeHeapInitFirst(t *testing.T) {
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/"}
	for _, m := range mains {
		args = append(args, "./cmd/"+m)
	}
	build := exec.Command(goTool(t), args...)
	build.Dir, build.Env = root(t), append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, m := range mains {
		cmd := exec.Command(filepath.Join(dir, m), "version")
		cmd.Env = append(cmd.Environ(), "GODEBUG=inittrace=1")
		out, err := cmd.CombinedOutput()
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			t.Fatalf("%s: %v", m, err)
		}
		if err := hugeHeapFirst(string(out)); err != "" {
			t.Errorf("%s: %s", m, err)
		}
	}
}

// hugeHeapFirst checks inittrace output ("init PKG @T ms, C ms clock, B
// bytes, N allocs" per package, in order) and returns what is wrong.
func hugeHeapFirst(trace string) string {
	for _, line := range strings.Split(trace, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "init" {
			continue
		}
		if f[1] == module+"/internal/hugeheap" {
			return ""
		}
		if n, _ := strconv.Atoi(f[7]); n > earlyAlloc {
			return f[1] + " allocates " + f[7] + " bytes at its init, before internal/hugeheap's"
		}
	}
	return "internal/hugeheap is not initialised (not linked?)"
}
