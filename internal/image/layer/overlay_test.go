package layer

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// overlayHelperEnv, set to "lowers:upper:work:merged", makes the test
// binary a helper that mounts that overlay and prints the merged tree.
const overlayHelperEnv = "COVE_LAYER_OVERLAY_HELPER"

// TestMain runs the overlay helper when asked, the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(overlayHelperEnv); spec != "" {
		if err := overlayHelper(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// overlayHelper mounts an overlay of spec ("lower1,lower2:upper:work:merged",
// top lower first) and prints each path of the merged tree with, for a
// regular file, its contents. It runs in a mount namespace of its own, so
// the mount goes with it.
func overlayHelper(spec string) error {
	p := strings.Split(spec, ":")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.ReplaceAll(p[0], ",", ":"), p[1], p[2])
	if err := unix.Mount("overlay", p[3], "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay %s: %w", opts, err)
	}
	return filepath.WalkDir(p[3], func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(p[3], path)
		if d.Type().IsRegular() {
			data, err := os.ReadFile(path)
			fmt.Printf("%s=%s\n", rel, data)
			return err
		}
		fmt.Println(rel)
		return nil
	})
}

// TestOverlayMerge mounts a real overlay of two unpacked layers and an
// upper directory, in a private mount namespace, and checks the merged
// view a container would see: the upper layer's whiteout hides the lower
// file and directory, its opaque directory hides the lower children, and
// a plain directory merges.
func TestOverlayMerge(t *testing.T) {
	lower := mustUnpack(t, regEnt("f", "lower"), regEnt("keep", "lower"), dirEnt("d"), regEnt("d/x", "lower"),
		dirEnt("o"), regEnt("o/y", "lower"), dirEnt("gone"), regEnt("gone/z", "lower"))
	top := mustUnpack(t, regEnt(".wh.f", ""), regEnt(".wh.gone", ""), dirEnt("d"), regEnt("d/w", "top"),
		dirEnt("o"), regEnt("o/.wh..wh..opq", ""), regEnt("o/z", "top"))
	base := t.TempDir()
	var dirs []string
	for _, n := range []string{"upper", "work", "merged"} {
		dirs = append(dirs, filepath.Join(base, n))
		if err := os.Mkdir(dirs[len(dirs)-1], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), overlayHelperEnv+"="+strings.Join(append([]string{top + "," + lower}, dirs...), ":"))
	// A new mount namespace; os/exec makes its mounts private (MS_REC|
	// MS_PRIVATE on /) before exec, so nothing reaches the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("overlay helper: %v\n%s", err, out)
	}
	want := ".\nd\nd/w=top\nd/x=lower\nkeep=lower\no\no/z=top\n"
	if string(out) != want {
		t.Errorf("merged view:\n%s\nwant:\n%s", out, want)
	}
}
