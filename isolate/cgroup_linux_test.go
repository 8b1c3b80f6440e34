package isolate

import (
	"reflect"
	"strings"
	"testing"
)

func TestCgroupDirs(t *testing.T) {
	mountinfo := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /sub /sys/fs/cgroup/dev\040ices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	cgroups := `9:name=systemd:/cove.slice/cove-web.service
5:devices:/sub/cove.slice/cove-web.service
4:memory:/cove.slice/cove-web.service
2:cpuacct,cpu:/cove.slice
7:blkio:/not-mounted
0::/cove.slice/cove-web.service
`
	got, err := cgroupDirs(mountinfo, cgroups)
	want := []string{
		"/sys/fs/cgroup/systemd/cove.slice/cove-web.service",
		"/sys/fs/cgroup/dev ices/cove.slice/cove-web.service",
		"/sys/fs/cgroup/memory/cove.slice/cove-web.service",
		"/sys/fs/cgroup/cpu,cpuacct/cove.slice",
		"/sys/fs/cgroup/unified/cove.slice/cove-web.service",
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("cgroupDirs = %q, %v\nwant %q", got, err, want)
	}
	for _, bad := range []string{"garbage", "5:devices:/x\n4:memory:/x", "0::/x"} {
		if _, err := cgroupDirs(mountinfo[:strings.Index(mountinfo, "36 31")], bad); err == nil {
			t.Errorf("cgroups %q: no error (malformed, or the devices hierarchy or every one not mounted)", bad)
		}
	}
}
