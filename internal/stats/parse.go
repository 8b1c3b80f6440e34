package stats

import (
	"fmt"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the times in /proc/stat,
// /proc/PID/stat and cpuacct.stat: 100 on every Linux architecture.
const clockTicks = 100

// tickNS is one clock tick in nanoseconds.
const tickNS = 1e9 / clockTicks

// ParseUint reads a file of one number, such as memory.current; "max"
// (no limit) is 0.
func ParseUint(text string) (uint64, error) {
	s := strings.TrimSpace(text)
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %.32q: want a number: %w", s, err)
	}
	return n, nil
}

// ParseKeyValues reads a file of "KEY VALUE" lines (memory.stat,
// cpu.stat, cpuacct.stat). Lines that are not a key and a number are
// skipped.
func ParseKeyValues(text string) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			m[f[0]] = n
		}
	}
	return m
}

// ParseProcStat reads /proc/stat: the host's CPU time in nanoseconds, as
// Docker counts it (user, nice, system, idle, iowait, irq and softirq of
// the "cpu" line), and the number of online CPUs (its "cpuN" lines).
func ParseProcStat(text string) (systemNS uint64, online int, err error) {
	found := false
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || !strings.HasPrefix(f[0], "cpu"):
		case f[0] != "cpu":
			online++
		case len(f) < 8:
			return 0, 0, fmt.Errorf("parse /proc/stat: short cpu line %q", line)
		default:
			for _, v := range f[1:8] {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("parse /proc/stat: cpu line %q: %w", line, err)
				}
				systemNS += n * tickNS
			}
			found = true
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("parse /proc/stat: no cpu line")
	}
	return systemNS, online, nil
}

// ParsePidStat reads /proc/PID/stat: the CPU time of the process and of
// its children it has waited for, in nanoseconds (utime, stime, cutime
// and cstime), split into user and kernel time.
func ParsePidStat(text string) (user, kernel uint64, err error) {
	i := strings.LastIndexByte(text, ')') // the command may hold spaces and parentheses
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/PID/stat: no command in %.64q", text)
	}
	f := strings.Fields(text[i+1:]) // f[0] is field 3, the state
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("parse /proc/PID/stat: %d fields after the command, want at least 15", len(f))
	}
	var t [4]uint64 // fields 14 to 17
	for j := range t {
		if t[j], err = strconv.ParseUint(f[11+j], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("parse /proc/PID/stat: field %d: %w", 14+j, err)
		}
	}
	return (t[0] + t[2]) * tickNS, (t[1] + t[3]) * tickNS, nil
}

// ParseBlkio reads a v1 blkio.throttle.io_service_bytes file ("MAJ:MIN
// Op VALUE" lines and a "Total N" line, which is left out).
func ParseBlkio(text string) ([]IOEntry, error) {
	var out []IOEntry
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue // "Total N", blank
		}
		e := IOEntry{Op: f[1]}
		if err := parseDevice(f[0], &e); err != nil {
			return nil, fmt.Errorf("parse blkio line %q: %w", line, err)
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse blkio line %q: %w", line, err)
		}
		e.Value = v
		out = append(out, e)
	}
	return out, nil
}

// ParseIOStat reads a v2 io.stat file ("MAJ:MIN rbytes=N wbytes=N …"
// lines) into a "read" and a "write" entry per device, as Docker does.
func ParseIOStat(text string) ([]IOEntry, error) {
	var out []IOEntry
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var dev IOEntry
		if err := parseDevice(f[0], &dev); err != nil {
			return nil, fmt.Errorf("parse io.stat line %q: %w", line, err)
		}
		kv := map[string]uint64{}
		for _, pair := range f[1:] {
			k, v, _ := strings.Cut(pair, "=")
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				kv[k] = n
			}
		}
		for _, op := range [][2]string{{"read", "rbytes"}, {"write", "wbytes"}} {
			e := dev
			e.Op, e.Value = op[0], kv[op[1]]
			out = append(out, e)
		}
	}
	return out, nil
}

// parseDevice reads "MAJ:MIN" into e.
func parseDevice(s string, e *IOEntry) error {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("device %q: want MAJOR:MINOR", s)
	}
	var err1, err2 error
	e.Major, err1 = strconv.ParseUint(maj, 10, 64)
	e.Minor, err2 = strconv.ParseUint(min, 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("device %q: want MAJOR:MINOR", s)
	}
	return nil
}

// ParseNetDev reads /proc/PID/net/dev: the counters of every interface
// but the loopback (Docker shows a container's own interfaces only).
func ParseNetDev(text string) (map[string]NetDev, error) {
	out := map[string]NetDev{}
	for _, line := range strings.Split(text, "\n") {
		name, counters, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" { // the two header lines hold no ":"
			continue
		}
		f := strings.Fields(counters)
		if len(f) != 16 {
			return nil, fmt.Errorf("parse /proc/net/dev line %q: %d counters, want 16", line, len(f))
		}
		var n [16]uint64
		for i, v := range f {
			var err error
			if n[i], err = strconv.ParseUint(v, 10, 64); err != nil {
				return nil, fmt.Errorf("parse /proc/net/dev line %q: %w", line, err)
			}
		}
		out[name] = NetDev{RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11]}
	}
	return out, nil
}
