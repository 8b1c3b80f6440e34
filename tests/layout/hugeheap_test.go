package layout

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// earlyAlloc is what the packages initialised before internal/hugeheap
// may allocate at their init, together (4.5 kB in Go 1.26: sync,
// encoding, syscall's tables): those bytes are on small pages, and a
// package that allocates more (unicode's tables: 11 kB) must come after.
const earlyAlloc = 8192

// TestHugeHeapInitFirst builds cove and runs cove version with
// GODEBUG=inittrace=1: internal/hugeheap must be initialised, after
// packages that allocate no more than earlyAlloc bytes together. (The
// stage and inside binaries must not link it: notStaged.)
func TestHugeHeapInitFirst(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command(goTool(t), "build", "-o", dir+"/", "./cmd/cove")
	build.Dir, build.Env = root(t), append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(dir, "cove"), "version")
	cmd.Env = append(cmd.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cove version: %v\n%s", err, out)
	}
	if err := hugeHeapFirst(string(out)); err != nil {
		t.Error(err)
	}
}

// hugeHeapFirst checks inittrace output ("init PKG @T ms, C ms clock, B
// bytes, N allocs" per package, in order).
func hugeHeapFirst(trace string) error {
	before := 0
	for _, line := range strings.Split(trace, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "init" {
			continue
		}
		if f[1] == module+"/internal/hugeheap" {
			return nil
		}
		n, _ := strconv.Atoi(f[7])
		if before += n; before > earlyAlloc {
			return errors.New("the packages initialised before internal/hugeheap allocate " + strconv.Itoa(before) + " bytes at their init (up to " + f[1] + ")")
		}
	}
	return errors.New("internal/hugeheap is not initialised (not linked?)")
}
