// Package stats reads what a running workload uses — CPU time, memory,
// processes, block I/O, network traffic — from its unit's cgroup (v1 or
// v2) and /proc, for cove stats and Docker's stats endpoint. Nothing
// collects in the background: each Read is a fresh look at the kernel's
// counters, and rates (CPU %) come from two samples.
package stats

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/cgroup"
)

// Sample is one reading of a workload's counters.
type Sample struct {
	Read   time.Time `json:"read"`
	CPU    CPU       `json:"cpu"`
	Memory Memory    `json:"memory"`
	Pids   Pids      `json:"pids"`
	// IO are the bytes read and written per device: ops "Read", "Write",
	// "Sync", "Async", "Discard", "Total" on v1, "read" and "write" on v2.
	IO []IOEntry `json:"io,omitempty"`
	// Networks are the interfaces of the workload's own network
	// namespace but lo; nil when it uses the host's network.
	Networks map[string]NetDev `json:"networks,omitempty"`
}

// CPU is the CPU time a workload used and the host's, in nanoseconds.
type CPU struct {
	Total  uint64 `json:"total_ns"`
	User   uint64 `json:"user_ns"`
	Kernel uint64 `json:"kernel_ns"`
	// System is the host's CPU time (/proc/stat), busy and idle, on all
	// CPUs: the denominator of Percent.
	System uint64 `json:"system_ns"`
	Online int    `json:"online_cpus"`
	// Throttling by a CPU quota: periods, periods throttled, time.
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledTime    uint64 `json:"throttled_ns"`
}

// Memory is a workload's memory use in bytes.
type Memory struct {
	Usage    uint64 `json:"usage"`
	MaxUsage uint64 `json:"max_usage,omitempty"` // v1 only
	Failcnt  uint64 `json:"failcnt,omitempty"`   // v1 only
	// Limit is the cgroup's limit, or the host's memory when it is larger
	// (or unlimited), as Docker shows it.
	Limit uint64 `json:"limit"`
	// Stats is the cgroup's memory.stat.
	Stats map[string]uint64 `json:"stats,omitempty"`
}

// Pids counts a workload's tasks; Limit 0 is no limit.
type Pids struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit,omitempty"`
}

// IOEntry is one counter of block I/O bytes on a device.
type IOEntry struct {
	Major uint64 `json:"major"`
	Minor uint64 `json:"minor"`
	Op    string `json:"op"`
	Value uint64 `json:"value"`
}

// NetDev are one network interface's counters.
type NetDev struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDropped uint64 `json:"tx_dropped"`
}

// Interval is the time between two samples, as docker stats takes them:
// of a stream or a refreshed table, and the two samples a CPU rate comes
// from.
const Interval = time.Second

// Wait waits one Interval; false when ctx ends first.
func Wait(ctx context.Context) bool {
	t := time.NewTimer(Interval)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Read samples the workload whose main process is pid. Counters of a
// controller systemd did not enable for the unit are 0, except the CPU
// time on v1 without cpuacct: then it comes from the unified hierarchy
// of a hybrid layout, else it is summed from /proc/PID/stat of the
// unit's processes (and the children they waited for). It fails when pid
// is gone.
func Read(pid int) (Sample, error) {
	path, err := cgroup.UnitPath(pid)
	if err != nil {
		return Sample{}, fmt.Errorf("stats of pid %d: %w", pid, err)
	}
	s := Sample{Read: time.Now()}
	if s.CPU, err = readCPU(pid, path); err != nil {
		return Sample{}, fmt.Errorf("stats of pid %d: %w", pid, err)
	}
	s.Memory = readMemory(path)
	s.Pids = Pids{Current: readUint("pids", path, "pids.current"), Limit: readUint("pids", path, "pids.max")}
	s.IO = readIO(pid, path)
	if s.Networks, err = readNetworks(pid); err != nil {
		return Sample{}, fmt.Errorf("stats of pid %d: %w", pid, err)
	}
	return s, nil
}

// read returns file name of controller's directory of cgroup path
// (controller "": the unified hierarchy), "" when it cannot be read (the
// controller is not enabled for the unit, the hierarchy not mounted).
func read(controller, path, name string) string {
	dir := cgroup.ControllerDir(controller, path)
	if dir == "" {
		return ""
	}
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return string(b)
}

// readUint reads a file of one number (0 when it cannot be read).
func readUint(controller, path, name string) uint64 {
	n, _ := ParseUint(read(controller, path, name))
	return n
}

// readCPU reads the CPU times of cgroup path (of pid's unit) and the host.
func readCPU(pid int, path string) (CPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPU{}, fmt.Errorf("read host CPU time: %w", err)
	}
	var c CPU
	if c.System, c.Online, err = ParseProcStat(string(b)); err != nil {
		return CPU{}, err
	}
	if cgroup.Unified() {
		st := ParseKeyValues(read("cpu", path, "cpu.stat"))
		c.Total, c.User, c.Kernel = usage(st)
		c.Periods, c.ThrottledPeriods, c.ThrottledTime = st["nr_periods"], st["nr_throttled"], st["throttled_usec"]*1000
		return c, nil
	}
	st := ParseKeyValues(read("cpu", path, "cpu.stat"))
	c.Periods, c.ThrottledPeriods, c.ThrottledTime = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
	if total := read("cpuacct", path, "cpuacct.usage"); total != "" {
		c.Total, _ = ParseUint(total)
		acct := ParseKeyValues(read("cpuacct", path, "cpuacct.stat"))
		c.User, c.Kernel = acct["user"]*tickNS, acct["system"]*tickNS
		return c, nil
	}
	// Hybrid layout: the unified hierarchy counts every cgroup's CPU time.
	if hybrid := read("", path, "cpu.stat"); hybrid != "" {
		c.Total, c.User, c.Kernel = usage(ParseKeyValues(hybrid))
		return c, nil
	}
	c.User, c.Kernel, err = procTimes(pid)
	c.Total = c.User + c.Kernel
	return c, err
}

// usage is the CPU time in nanoseconds of a v2 cpu.stat: total, user
// and kernel.
func usage(st map[string]uint64) (total, user, kernel uint64) {
	return st["usage_usec"] * 1000, st["user_usec"] * 1000, st["system_usec"] * 1000
}

// procTimes sums the CPU times of the processes of pid's unit.
func procTimes(pid int) (user, kernel uint64, err error) {
	err = eachProc(pid, "stat", func(p int, text string) error {
		u, k, err := ParsePidStat(text)
		if err != nil {
			return fmt.Errorf("CPU time of pid %d: %w", p, err)
		}
		user, kernel = user+u, kernel+k
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return user, kernel, nil
}

// eachProc calls fn with the PID and the text of /proc/PID/name of each
// process of pid's unit that still runs (one that exited meanwhile is
// skipped) and returns fn's first error, or cgroup.Procs's.
func eachProc(pid int, name string, fn func(p int, text string) error) error {
	procs, err := cgroup.Procs(pid)
	if err != nil {
		return err
	}
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p, name))
		if err != nil {
			continue
		}
		if err := fn(p, string(b)); err != nil {
			return err
		}
	}
	return nil
}

// readMemory reads the memory counters of cgroup path.
func readMemory(path string) Memory {
	var m Memory
	if cgroup.Unified() {
		m.Usage, m.Limit = readUint("memory", path, "memory.current"), readUint("memory", path, "memory.max")
	} else {
		m.Usage, m.Limit = readUint("memory", path, "memory.usage_in_bytes"), readUint("memory", path, "memory.limit_in_bytes")
		m.MaxUsage, m.Failcnt = readUint("memory", path, "memory.max_usage_in_bytes"), readUint("memory", path, "memory.failcnt")
	}
	if st := ParseKeyValues(read("memory", path, "memory.stat")); len(st) > 0 {
		m.Stats = st
	}
	m.Limit = HostLimit(m.Limit, hostMemory())
	return m
}

// HostLimit is a cgroup's memory limit as Docker shows it: the host's
// memory when the limit is larger or unset (0).
func HostLimit(limit, host uint64) uint64 {
	if limit == 0 || (host > 0 && limit > host) {
		return host
	}
	return limit
}

// hostMemory is the host's RAM in bytes (0 when unknown).
func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// readIO reads the block I/O bytes of cgroup path, pid's unit's (nil
// when the controller is not enabled for the unit). On v1, where recent
// kernels count blkio's throttle bytes only on a device with a throttle
// limit (Linux 6.18 here: Total 0 after 4 MiB of O_DIRECT I/O), counters
// that are all zero give way to those of the unit's processes
// (procIO).
func readIO(pid int, path string) []IOEntry {
	if cgroup.Unified() {
		es, _ := ParseIOStat(read("io", path, "io.stat"))
		return es
	}
	es, _ := ParseBlkio(read("blkio", path, "blkio.throttle.io_service_bytes"))
	if Bytes(es, "read")+Bytes(es, "write") > 0 {
		return es
	}
	return procIO(pid)
}

// procIO sums the storage bytes the processes of pid's unit read and
// wrote (read_bytes, write_bytes of /proc/PID/io: what they caused to be
// fetched from or sent to block devices) as one Read and one Write
// entry of device 0:0; a process's I/O goes with it when it exits. nil
// when none can be read.
func procIO(pid int) []IOEntry {
	var rd, wr uint64
	seen := false
	err := eachProc(pid, "io", func(_ int, text string) error {
		kv := ParseKeyValues(strings.ReplaceAll(text, ":", ""))
		rd, wr, seen = rd+kv["read_bytes"], wr+kv["write_bytes"], true
		return nil
	})
	if err != nil || !seen {
		return nil
	}
	return []IOEntry{{Op: "Read", Value: rd}, {Op: "Write", Value: wr}}
}

// readNetworks reads the interfaces of pid's network namespace, nil when
// it is the host's (that of PID 1).
func readNetworks(pid int) (map[string]NetDev, error) {
	own, err := netns(pid)
	if err != nil {
		return nil, err
	}
	host, err := netns(1)
	if err != nil || own == host {
		return nil, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, fmt.Errorf("read network counters: %w", err)
	}
	return ParseNetDev(string(b))
}

// netns identifies pid's network namespace by its inode.
func netns(pid int) (uint64, error) {
	var st unix.Stat_t
	p := fmt.Sprintf("/proc/%d/ns/net", pid)
	if err := unix.Stat(p, &st); err != nil {
		return 0, fmt.Errorf("network namespace of pid %d: stat %s: %w", pid, p, err)
	}
	return st.Ino, nil
}

// InUse is the memory Docker shows as used: the usage without the
// inactive file cache (total_inactive_file on v1, inactive_file on v2).
func (m Memory) InUse() uint64 {
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := m.Stats[k]; ok && v < m.Usage {
			return m.Usage - v
		}
	}
	return m.Usage
}

// Percent is the CPU used between samples prev and cur, as Docker
// computes it: the workload's share of the host's CPU time times the
// online CPUs, in percent (200 = two CPUs busy). 0 without progress.
func Percent(prev, cur CPU) float64 {
	if cur.Total <= prev.Total || cur.System <= prev.System {
		return 0
	}
	return float64(cur.Total-prev.Total) / float64(cur.System-prev.System) * float64(cur.Online) * 100
}

// Bytes sums the block I/O entries of op ("read" or "write", in any
// case).
func Bytes(es []IOEntry, op string) uint64 {
	var n uint64
	for _, e := range es {
		if strings.EqualFold(e.Op, op) {
			n += e.Value
		}
	}
	return n
}

// Traffic sums the bytes received and sent on all interfaces.
func Traffic(ns map[string]NetDev) (rx, tx uint64) {
	for _, n := range ns {
		rx, tx = rx+n.RxBytes, tx+n.TxBytes
	}
	return rx, tx
}
