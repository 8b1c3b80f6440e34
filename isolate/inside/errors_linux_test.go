package inside

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// TestSyscallErrors checks that leaf errors name the syscall and its
// object and still wrap the errno. Every call fails on a path that does
// not exist, before it could change anything, as root or not.
func TestSyscallErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	root, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	for _, tc := range []struct {
		name string
		err  error
		want string
		// errno is what the call fails with; unprivileged, open_tree and
		// mount_setattr fail the permission check before the lookup.
		errno []unix.Errno
	}{
		{"open_tree", mountOne(root, spec.Mount{Type: spec.MountBind, Source: missing, Target: "/data"}, -1),
			"open_tree " + missing + ": ", []unix.Errno{unix.ENOENT, unix.EPERM}},
		{"mount_setattr", readOnlyRoot(launch.Config{Rootfs: missing, ReadOnly: true}),
			"mount_setattr(MOUNT_ATTR_RDONLY) " + missing + ": ", []unix.Errno{unix.ENOENT, unix.EPERM}},
		{"mount", readOnlyBind(missing, missing),
			"mount(MS_BIND|MS_REC) " + missing + " on " + missing + ": ", []unix.Errno{unix.ENOENT}},
		{"chdir", pivot(missing),
			"chdir " + missing + ": ", []unix.Errno{unix.ENOENT}},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, tc.err)
		if !strings.HasPrefix(tc.err.Error(), tc.want) {
			t.Errorf("%s: %q, want it to start with %q", tc.name, tc.err, tc.want)
		}
		matched := false
		for _, e := range tc.errno {
			matched = matched || errors.Is(tc.err, e)
		}
		if !matched {
			t.Errorf("%s: %v is not %v", tc.name, tc.err, tc.errno)
		}
	}
}
