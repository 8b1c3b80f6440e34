package cgroup

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/mountinfo"
)

// Root is where the cgroup file system is mounted.
const Root = "/sys/fs/cgroup"

// Unified reports whether Root is the unified (v2) hierarchy (not the v1
// or hybrid layout).
var Unified = sync.OnceValue(func() bool {
	var st unix.Statfs_t
	return unix.Statfs(Root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
})

// Counter is a cgroup counter file: its unified (v2) name, and its
// legacy (v1) controller and name.
type Counter struct{ Unified, Controller, Legacy string }

// The counters systemd reads for MemoryCurrent and TasksCurrent.
var (
	Memory = Counter{"memory.current", "memory", "memory.usage_in_bytes"}
	Tasks  = Counter{"pids.current", "pids", "pids.current"}
)

// mounts is the calling process's mount table, read once: cgroup mounts
// do not move while cove runs.
var mounts = sync.OnceValue(func() []mountinfo.Mount {
	ms, _ := mountinfo.Read()
	return ms
})

// Read returns counter c of cgroup path (as systemd's ControlGroup
// property gives it); 0 when it cannot be read, like systemd's "unknown".
func Read(c Counter, path string) uint64 {
	dir, name := ControllerDir(c.Controller, path), c.Unified
	if !Unified() {
		name = c.Legacy
	}
	if dir == "" {
		return 0
	}
	n, err := readNumber(filepath.Join(dir, name))
	if err != nil {
		return 0
	}
	return n
}

// readNumber reads the decimal number in the small file at path with
// plain open, read and close: os.ReadFile's registration of every file
// with the runtime's poller (epoll_ctl twice) was about a third of the
// time of listing 1000 workloads' counters (bench/api -workloads 1000).
func readNumber(path string) (uint64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var buf [32]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(buf[:n])), 10, 64)
}

// ControllerDir returns the directory of cgroup path (as systemd's
// ControlGroup property gives it) that holds the files of controller
// (a v1 name such as "cpuacct"; "" for the unified hierarchy, also the
// one a hybrid layout mounts beside v1's): in the unified layout the one
// v2 directory, else the directory in that controller's hierarchy; ""
// when the hierarchy is not mounted here. On v1 the directory exists only
// when systemd enabled the controller for the unit (else the unit's
// processes sit in an ancestor's cgroup of that hierarchy).
func ControllerDir(controller, path string) string {
	if Unified() {
		return Dir(mounts(), "", path)
	}
	return Dir(mounts(), controller, path)
}

// UnitPath returns the cgroup of process pid in systemd's own hierarchy
// (the unified one, or v1's name=systemd): its unit's ControlGroup.
func UnitPath(pid int) (string, error) {
	members, err := Of(pid)
	if err != nil {
		return "", err
	}
	for _, m := range members {
		if m.Controllers == "name=systemd" || (m.Controllers == "" && Unified()) {
			return m.Path, nil
		}
	}
	return "", fmt.Errorf("cgroup of pid %d: no systemd hierarchy in /proc/%d/cgroup", pid, pid)
}

// Procs returns the processes of pid's systemd cgroup (its unit's): in the
// unified hierarchy, or in the named systemd hierarchy of a v1 or hybrid
// layout.
func Procs(pid int) ([]int, error) {
	members, err := Of(pid)
	if err != nil {
		return nil, err
	}
	var tried []string
	for _, m := range members {
		if m.Dir == "" || (m.Controllers != "" && m.Controllers != "name=systemd") {
			continue
		}
		tried = append(tried, m.Dir)
		if procs, err := readPids(filepath.Join(m.Dir, "cgroup.procs")); err == nil && len(procs) > 0 {
			return procs, nil
		}
	}
	return nil, fmt.Errorf("find the cgroup of process %d: none of %v lists it", pid, tried)
}

// readPids reads a cgroup.procs file.
func readPids(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pids []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, sc.Err()
}
