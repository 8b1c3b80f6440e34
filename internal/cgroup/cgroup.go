// Package cgroup finds, reads and joins the control groups systemd gives
// cove's units, on the unified (v2), legacy (v1) and hybrid layouts. It is
// the one place cove maps a cgroup to a directory: through the cgroup
// mounts of its own mount table, never by assuming where they are.
package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cove-project/cove/internal/mountinfo"
)

// Member is one line of /proc/PID/cgroup: the cgroup a process is in for
// one hierarchy, and its directory where that hierarchy is mounted.
type Member struct {
	Controllers string // "" for v2, else the v1 controllers, e.g. "cpu,cpuacct" or "name=systemd"
	Path        string // the cgroup, e.g. "/cove.slice/cove-web.service"
	Dir         string // its directory, "" if the hierarchy is not mounted here
}

// Of returns the cgroups of process pid.
func Of(pid int) ([]Member, error) {
	ms, err := mountinfo.Read()
	if err != nil {
		return nil, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	return Members(ms, string(b))
}

// Members maps the lines of a /proc/PID/cgroup file to directories, using
// the cgroup mounts in ms.
func Members(ms []mountinfo.Mount, procCgroup string) ([]Member, error) {
	var out []Member
	for _, line := range strings.Split(strings.TrimSpace(procCgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("malformed cgroup line %q", line)
		}
		m := Member{Controllers: parts[1], Path: parts[2]}
		m.Dir = Dir(ms, m.Controllers, m.Path)
		out = append(out, m)
	}
	return out, nil
}

// Dir returns the directory of cgroup path in the hierarchy of
// controllers ("" for v2) among the mounts ms, or "" if that hierarchy is
// not mounted or its mount does not reach path.
func Dir(ms []mountinfo.Mount, controllers, path string) string {
	for _, m := range ms {
		if !serves(m, controllers) {
			continue
		}
		root := strings.TrimSuffix(m.Root, "/")
		if path == m.Root || strings.HasPrefix(path, root+"/") {
			return filepath.Join(m.MountPoint, strings.TrimPrefix(path, root))
		}
	}
	return ""
}

// serves reports whether mount m is the hierarchy of controllers.
func serves(m mountinfo.Mount, controllers string) bool {
	switch {
	case m.FSType == "cgroup2":
		return controllers == ""
	case m.FSType != "cgroup" || controllers == "":
		return false
	}
	for _, c := range strings.Split(controllers, ",") {
		if !slices.Contains(m.SuperOpts, c) {
			return false
		}
	}
	return true
}

// Join moves the calling process into every cgroup process pid is in (one
// per hierarchy: cgroup v2, or each v1 controller), so that the limits and
// the device policy of pid's unit apply to it and to what it starts, and
// stopping the unit ends them too. systemd's own AttachProcessesToUnit
// would do it only for units with Delegate=yes. A hierarchy that is not
// mounted here is skipped, unless it is the v1 devices hierarchy (the
// device policy) or none is mounted.
func Join(pid int) error {
	members, err := Of(pid)
	if err != nil {
		return fmt.Errorf("join the cgroups of pid %d: %w", pid, err)
	}
	dirs, err := joinable(members)
	if err != nil {
		return fmt.Errorf("join the cgroups of pid %d: %w", pid, err)
	}
	self := []byte(strconv.Itoa(os.Getpid()))
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), self, 0); err != nil {
			return fmt.Errorf("join the cgroups of pid %d: write %s: %w", pid, d, err)
		}
	}
	return nil
}

// joinable returns the directories of members, refusing when the device
// policy's hierarchy (v1 devices, or v2) is not among them.
func joinable(members []Member) ([]string, error) {
	var dirs, missing []string
	for _, m := range members {
		if m.Dir == "" {
			missing = append(missing, m.Controllers)
			continue
		}
		dirs = append(dirs, m.Dir)
	}
	if slices.Contains(missing, "devices") || len(dirs) == 0 {
		return nil, fmt.Errorf("cgroup hierarchies %q are not mounted here", missing)
	}
	return dirs, nil
}
