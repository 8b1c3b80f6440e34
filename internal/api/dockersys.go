package api

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/buildinfo"
	"github.com/cove-project/cove/internal/cgroup"
)

// dockerVersion is the answer to GET /version.
type dockerVersion struct {
	Platform struct {
		Name string `json:"Name"`
	} `json:"Platform"`
	Components    []dockerComponent `json:"Components"`
	Version       string            `json:"Version"`
	APIVersion    string            `json:"ApiVersion"`
	MinAPIVersion string            `json:"MinAPIVersion"`
	GitCommit     string            `json:"GitCommit"`
	GoVersion     string            `json:"GoVersion"`
	Os            string            `json:"Os"`
	Arch          string            `json:"Arch"`
	KernelVersion string            `json:"KernelVersion"`
}

// dockerComponent is one entry of Version.Components.
type dockerComponent struct {
	Name    string            `json:"Name"`
	Version string            `json:"Version"`
	Details map[string]string `json:"Details"`
}

// versionInfo describes this cove as a Docker engine.
func versionInfo() dockerVersion {
	v := dockerVersion{
		Version: buildinfo.Version(), APIVersion: dockerAPIVersion, MinAPIVersion: dockerMinAPIVersion,
		GitCommit: buildinfo.Commit(), GoVersion: runtime.Version(), Os: "linux",
		Arch: runtime.GOARCH, KernelVersion: uname().release,
	}
	v.Platform.Name = "cove"
	v.Components = []dockerComponent{{Name: "cove", Version: v.Version, Details: map[string]string{
		"ApiVersion": dockerAPIVersion, "MinAPIVersion": dockerMinAPIVersion, "GitCommit": v.GitCommit,
	}}}
	return v
}

// unameInfo is what uname(2) tells.
type unameInfo struct{ release, machine, node string }

// uname reads uname(2).
func uname() unameInfo {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return unameInfo{}
	}
	return unameInfo{
		release: unix.ByteSliceToString(u.Release[:]),
		machine: unix.ByteSliceToString(u.Machine[:]),
		node:    unix.ByteSliceToString(u.Nodename[:]),
	}
}

// dockerInfo is the answer to GET /info.
type dockerInfo struct {
	ID                string   `json:"ID"`
	Containers        int      `json:"Containers"`
	ContainersRunning int      `json:"ContainersRunning"`
	ContainersPaused  int      `json:"ContainersPaused"`
	ContainersStopped int      `json:"ContainersStopped"`
	Images            int      `json:"Images"`
	Driver            string   `json:"Driver"`
	Name              string   `json:"Name"`
	ServerVersion     string   `json:"ServerVersion"`
	OperatingSystem   string   `json:"OperatingSystem"`
	OSType            string   `json:"OSType"`
	Architecture      string   `json:"Architecture"`
	KernelVersion     string   `json:"KernelVersion"`
	NCPU              int      `json:"NCPU"`
	MemTotal          int64    `json:"MemTotal"`
	CgroupDriver      string   `json:"CgroupDriver"`
	CgroupVersion     string   `json:"CgroupVersion"`
	DockerRootDir     string   `json:"DockerRootDir"`
	SecurityOptions   []string `json:"SecurityOptions"`
	Labels            []string `json:"Labels"`
	Warnings          []string `json:"Warnings"`
}

// systemInfo describes the host and counts the workloads ws.
func systemInfo(ws []Workload) dockerInfo {
	u := uname()
	i := dockerInfo{
		Containers: len(ws), Driver: "cove", Name: u.node, ServerVersion: buildinfo.Version(),
		OperatingSystem: osName(), OSType: "linux", Architecture: u.machine, KernelVersion: u.release,
		NCPU: runtime.NumCPU(), CgroupDriver: "systemd", CgroupVersion: cgroupVersion(),
		DockerRootDir: "/var/lib/cove", Labels: []string{}, Warnings: []string{},
		SecurityOptions: []string{"name=seccomp,profile=default", "name=no-new-privileges"},
	}
	if id, err := os.ReadFile("/etc/machine-id"); err == nil {
		i.ID = strings.TrimSpace(string(id))
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		i.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	for _, w := range ws {
		switch dockerState(w) {
		case "running", "restarting":
			i.ContainersRunning++
		case "paused":
			i.ContainersPaused++
		default:
			i.ContainersStopped++
		}
	}
	return i
}

// osName is PRETTY_NAME from /etc/os-release.
func osName() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// dockerTop is the answer to GET /containers/ID/top.
type dockerTop struct {
	Titles    []string   `json:"Titles"`
	Processes [][]string `json:"Processes"`
}

// topOf lists the processes in the cgroup of process pid.
func topOf(pid int) (dockerTop, error) {
	pids, err := cgroup.Procs(pid)
	if err != nil {
		return dockerTop{}, err
	}
	t := dockerTop{Titles: []string{"UID", "PID", "PPID", "CMD"}, Processes: [][]string{}}
	for _, p := range pids {
		uid, ppid, ok := procStatus(p)
		if !ok {
			continue // exited meanwhile
		}
		t.Processes = append(t.Processes, []string{uid, strconv.Itoa(p), ppid, procCmd(p)})
	}
	return t, nil
}

// procStatus reads a process's real uid and parent pid.
func procStatus(pid int) (uid, ppid string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", "", false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, found := strings.CutPrefix(line, "Uid:"); found {
			if f := strings.Fields(v); len(f) > 0 {
				uid = f[0]
			}
		} else if v, found := strings.CutPrefix(line, "PPid:"); found {
			ppid = strings.TrimSpace(v)
		}
	}
	return uid, ppid, true
}

// procCmd is a process's command line, or [comm] for kernel threads and
// zombies.
func procCmd(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if cmd := strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " ")); cmd != "" {
		return cmd
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return "[" + strings.TrimSpace(string(comm)) + "]"
}

// cgroupVersion is "2" on a unified hierarchy, else "1".
func cgroupVersion() string {
	if cgroup.Unified() {
		return "2"
	}
	return "1"
}
