package isolate

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// JoinCgroups moves the calling process into every cgroup process pid is
// in (one per hierarchy: cgroup v2, or each v1 controller), so that the
// limits and the device policy of pid's unit apply to it and to what it
// starts, and stopping the unit ends them too. systemd's own
// AttachProcessesToUnit would do it only for units with Delegate=yes.
func JoinCgroups(pid int) error {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("join the cgroups of pid %d: %w", pid, err)
	}
	groups, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("join the cgroups of pid %d: %w", pid, err)
	}
	dirs, err := cgroupDirs(string(mounts), string(groups))
	if err != nil {
		return fmt.Errorf("join the cgroups of pid %d: %w", pid, err)
	}
	self := []byte(strconv.Itoa(os.Getpid()))
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), self, 0); err != nil {
			return fmt.Errorf("join the cgroups of pid %d: %w", pid, err)
		}
	}
	return nil
}

// cgroupDirs maps the lines of a /proc/PID/cgroup file to cgroup
// directories, using the cgroup mounts of a /proc/self/mountinfo file. A
// hierarchy that is not mounted here is skipped, unless it is the v1
// devices hierarchy (the device policy) or none is mounted.
func cgroupDirs(mountinfo, cgroups string) ([]string, error) {
	type mount struct {
		root, dir string
		v2        bool
		ctrls     []string // v1: the controllers (or "name=…") in its options
	}
	var mounts []mount
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS…] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, p := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(p) < 3 || (p[0] != "cgroup" && p[0] != "cgroup2") {
			continue
		}
		mounts = append(mounts, mount{root: UnescapeMountinfo(f[3]), dir: UnescapeMountinfo(f[4]), v2: p[0] == "cgroup2", ctrls: strings.Split(p[2], ",")})
	}
	var dirs, missing []string
	for _, line := range strings.Split(strings.TrimSpace(cgroups), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("malformed cgroup line %q", line)
		}
		want, path := parts[1], parts[2]
		joined := false
		for _, m := range mounts {
			match := m.v2 && want == ""
			if !m.v2 && want != "" {
				match = true
				for _, c := range strings.Split(want, ",") {
					match = match && slices.Contains(m.ctrls, c)
				}
			}
			if match && (path == m.root || strings.HasPrefix(path, strings.TrimSuffix(m.root, "/")+"/")) {
				dirs = append(dirs, filepath.Join(m.dir, strings.TrimPrefix(path, strings.TrimSuffix(m.root, "/"))))
				joined = true
				break
			}
		}
		if !joined {
			missing = append(missing, want)
		}
	}
	// The device policy lives in the v1 devices hierarchy, or in v2.
	if slices.Contains(missing, "devices") || len(dirs) == 0 {
		return nil, fmt.Errorf("cgroup hierarchies %q are not mounted here", missing)
	}
	return dirs, nil
}

// UnescapeMountinfo undoes the octal escapes of /proc/*/mountinfo
// fields (\040 for a space).
func UnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
