package cgroup

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/mountinfo"
)

const hybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /sub /sys/fs/cgroup/dev\040ices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestMembers(t *testing.T) {
	cgroups := `9:name=systemd:/cove.slice/cove-web.service
5:devices:/sub/cove.slice/cove-web.service
4:memory:/cove.slice/cove-web.service
2:cpuacct,cpu:/cove.slice
7:blkio:/not-mounted
0::/cove.slice/cove-web.service
`
	got, err := Members(mountinfo.Parse(hybrid), cgroups)
	want := []Member{
		{"name=systemd", "/cove.slice/cove-web.service", "/sys/fs/cgroup/systemd/cove.slice/cove-web.service"},
		{"devices", "/sub/cove.slice/cove-web.service", "/sys/fs/cgroup/dev ices/cove.slice/cove-web.service"},
		{"memory", "/cove.slice/cove-web.service", "/sys/fs/cgroup/memory/cove.slice/cove-web.service"},
		{"cpuacct,cpu", "/cove.slice", "/sys/fs/cgroup/cpu,cpuacct/cove.slice"},
		{"blkio", "/not-mounted", ""},
		{"", "/cove.slice/cove-web.service", "/sys/fs/cgroup/unified/cove.slice/cove-web.service"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Members = %q, %v\nwant %q", got, err, want)
	}
	if _, err := joinable(got); err != nil {
		t.Errorf("joinable: %v", err)
	}
	if _, err := Members(nil, "garbage"); err == nil {
		t.Error("a malformed line gave no error")
	}
	// Without the devices hierarchy, or with none, Join must refuse.
	partial := mountinfo.Parse(hybrid[:strings.Index(hybrid, "36 31")])
	for _, bad := range []string{"5:devices:/x\n4:memory:/x", "0::/x"} {
		ms, err := Members(partial, bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := joinable(ms); err == nil {
			t.Errorf("cgroups %q: joinable without the devices hierarchy or any", bad)
		}
	}
}

func TestDirV2(t *testing.T) {
	ms := mountinfo.Parse("30 23 0:26 /ns /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
	if got := Dir(ms, "", "/ns/cove.slice/a.service"); got != "/sys/fs/cgroup/cove.slice/a.service" {
		t.Errorf("Dir = %q", got)
	}
	if got := Dir(ms, "", "/nsx/a.service"); got != "" {
		t.Errorf("Dir outside the mount's root = %q, want \"\"", got)
	}
	if got := Dir(ms, "memory", "/ns/a.service"); got != "" {
		t.Errorf("Dir of a v1 controller on a v2 mount = %q, want \"\"", got)
	}
}

// TestFrozenEvent reads the frozen line of cgroup.events, and refuses a
// file without one.
func TestFrozenEvent(t *testing.T) {
	for text, want := range map[string]bool{"populated 1\nfrozen 1\n": true, "populated 1\nfrozen 0\n": false} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := frozenEvent(dir); err != nil || got != want {
			t.Errorf("cgroup.events %q: %v, %v; want %v", text, got, err, want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\n"), 0o644)
	if _, err := frozenEvent(dir); err == nil {
		t.Error("cgroup.events without a frozen line: no error")
	}
}
