//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/mountinfo"
)

// cgroupRoot is where every cgroup hierarchy must be mounted on the host; the
// inner step re-mounts the same hierarchies there, rooted at the namespace.
const cgroupRoot = "/sys/fs/cgroup"

// namePrefix starts the name of every sandbox cgroup.
const namePrefix = "cove-sandbox-"

// hierarchy is one cgroup hierarchy the test process belongs to.
type hierarchy struct {
	controllers string // as in /proc/self/cgroup: "memory", "name=systemd", "" for cgroup2
	path        string // the test process's cgroup path in this hierarchy
	mountPoint  string // where the hierarchy is mounted on the host
	fsType      string // "cgroup" or "cgroup2"
	mountOpts   string // -o options to mount the hierarchy again inside ("" for none)
	dir         string // host directory of the test process's cgroup
}

// isCpuset reports whether the hierarchy holds the v1 cpuset controller.
func (h hierarchy) isCpuset() bool {
	for _, c := range strings.Split(h.controllers, ",") {
		if c == "cpuset" {
			return true
		}
	}
	return false
}

// cgroupMount is one cgroup or cgroup2 line of /proc/self/mountinfo.
type cgroupMount struct {
	root, mountPoint, fsType string
	superOpts                []string
}

// readHierarchies reads /proc/self/cgroup (completely, before anything moves)
// and maps each hierarchy to its mount point on the host.
func readHierarchies() ([]hierarchy, error) {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	mounts, err := readCgroupMounts()
	if err != nil {
		return nil, err
	}
	var hs []hierarchy
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("sandbox: malformed /proc/self/cgroup line %q", line)
		}
		h := hierarchy{controllers: parts[1], path: parts[2]}
		m, ok := findCgroupMount(mounts, h.controllers)
		if !ok {
			return nil, fmt.Errorf("sandbox: cgroup hierarchy %q (line %q) is not mounted", h.controllers, line)
		}
		if !strings.HasPrefix(m.mountPoint, cgroupRoot+"/") {
			return nil, fmt.Errorf("sandbox: cgroup hierarchy %q is mounted at %s, not below %s (only v1/hybrid layouts are supported)", h.controllers, m.mountPoint, cgroupRoot)
		}
		rel, ok := strings.CutPrefix(h.path, m.root)
		if m.root == "/" {
			rel = h.path
		} else if !ok || (rel != "" && rel[0] != '/') {
			return nil, fmt.Errorf("sandbox: cgroup path %s lies outside the mount root %s of %s", h.path, m.root, m.mountPoint)
		}
		h.mountPoint, h.fsType = m.mountPoint, m.fsType
		h.dir = filepath.Join(m.mountPoint, rel)
		h.mountOpts = innerMountOpts(m)
		hs = append(hs, h)
	}
	if len(hs) == 0 {
		return nil, errors.New("sandbox: /proc/self/cgroup lists no hierarchy")
	}
	return hs, nil
}

// readCgroupMounts returns the cgroup and cgroup2 mounts of this process.
func readCgroupMounts() ([]cgroupMount, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var ms []cgroupMount
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		sep := -1
		for i, s := range f {
			if s == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(f) < sep+4 {
			continue
		}
		fsType := f[sep+1]
		if fsType != "cgroup" && fsType != "cgroup2" {
			continue
		}
		ms = append(ms, cgroupMount{
			root:       mountinfo.Unescape(f[3]),
			mountPoint: mountinfo.Unescape(f[4]),
			fsType:     fsType,
			superOpts:  strings.Split(f[sep+3], ","),
		})
	}
	return ms, nil
}

// findCgroupMount finds the mount of the hierarchy named by controllers, the
// second field of a /proc/self/cgroup line.
func findCgroupMount(ms []cgroupMount, controllers string) (cgroupMount, bool) {
	for _, m := range ms {
		if controllers == "" {
			if m.fsType == "cgroup2" {
				return m, true
			}
			continue
		}
		if m.fsType != "cgroup" {
			continue
		}
		have := map[string]bool{}
		for _, o := range m.superOpts {
			have[o] = true
		}
		all := true
		for _, c := range strings.Split(controllers, ",") {
			if !have[c] {
				all = false
			}
		}
		if all {
			return m, true
		}
	}
	return cgroupMount{}, false
}

// innerMountOpts gives the mount options that mount the same hierarchy again.
func innerMountOpts(m cgroupMount) string {
	var opts []string
	named := true
	for _, o := range m.superOpts {
		if o == "rw" || o == "ro" || o == "" {
			continue
		}
		if !strings.HasPrefix(o, "name=") {
			named = false
		}
		opts = append(opts, o)
	}
	if m.fsType == "cgroup" && named && len(opts) > 0 {
		// A named hierarchy without controllers, such as name=systemd.
		opts = append([]string{"none"}, opts...)
	}
	return strings.Join(opts, ",")
}

// createCgroups creates the cgroup name below the test process's cgroup in
// every hierarchy and moves pid into it. cpuset.cpus and cpuset.mems are
// copied from the parent first, as an empty cpuset refuses tasks.
func createCgroups(hs []hierarchy, name string, pid int) error {
	for _, h := range hs {
		dir := filepath.Join(h.dir, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("sandbox: create cgroup: %w", err)
		}
		if h.isCpuset() {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h.dir, f))
				if err != nil {
					return fmt.Errorf("sandbox: read cpuset: %w", err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("sandbox: write cpuset: %w", err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("sandbox: move pid %d into %s: %w", pid, dir, err)
		}
	}
	return nil
}

// removeCgroups removes the cgroup name and all its children, depth-first, in
// every hierarchy. rmdir is retried for a few seconds, as it fails while the
// last tasks exit; tasks still left in the sandbox's cgroups after a second
// are sent SIGKILL (they can only belong to this sandbox).
func removeCgroups(hs []hierarchy, name string) error {
	deadline := time.Now().Add(5 * time.Second)
	killAfter := time.Now().Add(time.Second)
	for {
		var left []string
		for _, h := range hs {
			root := filepath.Join(h.dir, name)
			dirs := cgroupDirs(root)
			for _, d := range dirs {
				if err := syscall.Rmdir(d); err != nil && err != syscall.ENOENT {
					left = append(left, d)
					if time.Now().After(killAfter) {
						killCgroupTasks(d)
					}
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox: cgroups not removed: %s", strings.Join(left, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cgroupDirs lists root and the directories below it, deepest first.
func cgroupDirs(root string) []string {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.SliceStable(dirs, func(i, j int) bool {
		return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/")
	})
	return dirs
}

// killCgroupTasks sends SIGKILL to the processes in one sandbox cgroup.
func killCgroupTasks(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// sweepStaleCgroups removes empty sandbox cgroups left behind by sandboxes
// whose owning process is gone (e.g. a test binary killed by a timeout). It
// only calls rmdir, which fails on cgroups that still hold tasks.
func sweepStaleCgroups(hs []hierarchy) {
	for _, h := range hs {
		matches, _ := filepath.Glob(filepath.Join(h.dir, namePrefix+"*"))
		for _, m := range matches {
			pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), namePrefix))
			if err != nil {
				continue
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				continue
			}
			for _, d := range cgroupDirs(m) {
				_ = syscall.Rmdir(d)
			}
		}
	}
}
