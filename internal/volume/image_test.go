package volume

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/spec"
)

// TestSizeOptions: a size out of range is refused before anything is
// made; a volume file's size applies to the volume it creates; an
// existing volume keeps its size, asked for another or not.
func TestSizeOptions(t *testing.T) {
	s := testStore(t)
	for _, size := range []uint64{1, 15 << 20, 17 << 40} {
		if _, err := s.Create("small", Options{Size: size}); !errors.Is(err, ErrSize) || !strings.Contains(err.Error(), "must be 16M to 16T") {
			t.Errorf("size %d: %v, want ErrSize", size, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "small")); !os.IsNotExist(err) {
		t.Errorf("a refused volume was made: %v", err)
	}
	if _, err := lookMkfs(); err != nil {
		t.Skip(err)
	}
	os.MkdirAll(s.Declared, 0o755)
	os.WriteFile(filepath.Join(s.Declared, "db.toml"), []byte("version = 1\nkind = \"volume\"\n[volume]\nsize = \"32M\"\n"), 0o644)
	if v, err := s.Get("db"); err != nil || v.Size != 32<<20 || !v.CreatedAt.IsZero() {
		t.Errorf("declared, not created: %+v, %v", v, err)
	}
	v, err := s.Create("db", Options{})
	if err != nil || v.Size != 32<<20 {
		t.Fatalf("create a declared volume with a size: %+v, %v", v, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(s.image("db"), &st); err != nil || st.Size != 32<<20 || st.Blocks*512 >= st.Size {
		t.Errorf("image: size %d, %d bytes allocated, %v; want a sparse 32M file", st.Size, st.Blocks*512, err)
	}
	if n, err := s.Size("db"); err != nil || n != st.Blocks*512 {
		t.Errorf("Size: %d, %v; want the image's allocated %d", n, err, st.Blocks*512)
	}
	if again, err := s.Create("db", Options{Size: 32 << 20}); err != nil || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("create again with the same size: %+v, %v", again, err)
	}
	if _, err := s.Create("db", Options{Size: 64 << 20}); !errors.Is(err, ErrSize) || !strings.Contains(err.Error(), "created with 32M") {
		t.Errorf("create again with another size: %v", err)
	}
	os.WriteFile(filepath.Join(s.Declared, "db.toml"), []byte("version = 1\nkind = \"volume\"\n[volume]\nsize = \"1G\"\n"), 0o644)
	if err := s.Mount("db", loopMount); !errors.Is(err, ErrSize) || !strings.Contains(err.Error(), "says size 1G, but volume db was created with 32M") {
		t.Errorf("mount with the volume file's size changed: %v", err)
	}
	if _, err := s.Prepare("db", nil, spec.IDRange{}); err == nil || !strings.Contains(err.Error(), "is not mounted") {
		t.Errorf("prepare of a volume whose file system is not mounted: %v", err)
	}
}

// TestMount: a volume with a size is loop-mounted once however often
// Mount runs; the image's content is copied into its file system on
// first use (ext4's lost+found gone); writes beyond the size fail with
// ENOSPC; Remove unmounts it and the loop device goes with the mount.
func TestMount(t *testing.T) {
	if _, err := os.Stat("/dev/loop-control"); os.Geteuid() != 0 || err != nil {
		t.Skip("needs root and loop devices")
	}
	if _, err := lookMkfs(); err != nil {
		t.Skip(err)
	}
	s := testStore(t)
	if _, err := s.Create("qv", Options{Size: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(s.Mountpoint("qv"), unix.MNT_DETACH) })
	for range 2 {
		if err := s.Mount("qv", loopMount); err != nil {
			t.Fatalf("mount: %v", err)
		}
	}
	if err := unix.Unmount(s.Mountpoint("qv"), 0); err != nil {
		t.Fatalf("unmount the one mount: %v", err)
	}
	if ok, err := s.mounted("qv"); ok || err != nil {
		t.Fatalf("mounted twice: %v %v", ok, err)
	}
	if err := s.Mount("qv", loopMount); err != nil {
		t.Fatalf("mount again: %v", err)
	}
	img := t.TempDir()
	os.WriteFile(filepath.Join(img, "f"), []byte("hi"), 0o640)
	os.Chmod(img, 0o751)
	data := prepare(t, s, "qv", img)
	entries, _ := os.ReadDir(data)
	if len(entries) != 1 || entries[0].Name() != "f" {
		t.Errorf("the volume's file system holds %v, want the image's f only", entries)
	}
	checkOwner(t, data, 0, 0, 0o751)
	var fs unix.Statfs_t
	if err := unix.Statfs(data, &fs); err != nil || fs.Blocks*uint64(fs.Bsize) > 16<<20 {
		t.Errorf("statfs: %+v, %v; want its own file system of at most 16M", fs, err)
	}
	err := os.WriteFile(filepath.Join(data, "big"), make([]byte, 17<<20), 0o644)
	if !errors.Is(err, unix.ENOSPC) {
		t.Errorf("writing 17M: %v, want ENOSPC", err)
	}
	var st unix.Stat_t
	unix.Stat(data, &st)
	dev := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := s.Remove("qv"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dev, "loop", "backing_file")); len(b) > 0 {
		t.Errorf("loop device %s still backed by %s", dev, b)
	}
}

// loopMount is a MountFunc: mount(8) -o loop, as systemd's mount unit
// runs it for the launcher.
func loopMount(image, fstype, target string) error {
	if out, err := exec.Command("mount", "-t", fstype, "-o", "loop", image, target).CombinedOutput(); err != nil {
		return fmt.Errorf("mount %s: %w: %s", image, err, out)
	}
	return nil
}
