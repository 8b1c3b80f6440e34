package stats

import (
	"reflect"
	"testing"
)

func TestParseUint(t *testing.T) {
	for text, want := range map[string]uint64{"67108864\n": 67108864, "max\n": 0, "0": 0} {
		if got, err := ParseUint(text); err != nil || got != want {
			t.Errorf("ParseUint(%q) = %d, %v; want %d", text, got, err, want)
		}
	}
	if _, err := ParseUint("lots"); err == nil {
		t.Error("ParseUint(lots): no error")
	}
}

// The v1 files of a unit with a 64 MiB limit.
const (
	v1MemoryStat = `cache 135168
rss 10665984
inactive_file 4096
active_file 131072
hierarchical_memory_limit 67108864
total_cache 135168
total_rss 10665984
total_inactive_file 8192
total_active_file 131072
`
	v1CpuacctStat = "user 150\nsystem 25\n"
	v1Blkio       = `8:0 Read 1048576
8:0 Write 4096
8:0 Sync 1052672
8:0 Async 0
8:0 Discard 0
8:0 Total 1052672
Total 1052672
`
)

// The v2 files of the same.
const (
	v2MemoryStat = "anon 10665984\nfile 135168\ninactive_file 4096\nactive_file 131072\n"
	v2CPUStat    = `usage_usec 1750000
user_usec 1500000
system_usec 250000
nr_periods 20
nr_throttled 3
throttled_usec 12000
`
	v2IOStat = "8:0 rbytes=1048576 wbytes=4096 rios=16 wios=1 dbytes=0 dios=0\n253:1 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n"
)

func TestParseKeyValues(t *testing.T) {
	st := ParseKeyValues(v1MemoryStat + "garbage line here\nnan x\n")
	if st["total_inactive_file"] != 8192 || st["rss"] != 10665984 || len(st) != 9 {
		t.Errorf("v1 memory.stat: %v", st)
	}
	cpu := ParseKeyValues(v2CPUStat)
	if cpu["usage_usec"] != 1750000 || cpu["throttled_usec"] != 12000 {
		t.Errorf("v2 cpu.stat: %v", cpu)
	}
	if acct := ParseKeyValues(v1CpuacctStat); acct["user"] != 150 || acct["system"] != 25 {
		t.Errorf("v1 cpuacct.stat: %v", acct)
	}
}

func TestParseProcStat(t *testing.T) {
	text := `cpu  904667 0 657045 2345271 16219 0 52916 7 0 0
cpu0 438156 0 321082 1198797 3734 0 25954 0 0 0
cpu1 466510 0 335963 1146474 12485 0 26961 0 0 0
intr 1 2 3
ctxt 99
`
	sys, online, err := ParseProcStat(text)
	want := uint64(904667+657045+2345271+16219+52916) * 1e7 // steal (7) does not count, as in Docker
	if err != nil || sys != want || online != 2 {
		t.Errorf("ParseProcStat = %d, %d, %v; want %d, 2", sys, online, err, want)
	}
	for _, bad := range []string{"intr 1\n", "cpu 1 2 3\n", "cpu a b c d e f g\n"} {
		if _, _, err := ParseProcStat(bad); err == nil {
			t.Errorf("ParseProcStat(%q): no error", bad)
		}
	}
}

func TestParsePidStat(t *testing.T) {
	// utime 150, stime 25, cutime 10, cstime 5 ticks; a command with ") (".
	text := "4242 (a) (b c) R 1 4242 4242 0 -1 4194560 100 0 0 0 150 25 10 5 20 0 1 0 100 1000 10 18446744073709551615\n"
	user, kernel, err := ParsePidStat(text)
	if err != nil || user != 160*1e7 || kernel != 30*1e7 {
		t.Errorf("ParsePidStat = %d, %d, %v; want 1.6 s and 0.3 s", user, kernel, err)
	}
	for _, bad := range []string{"4242 no command", "4242 (a) R 1 2 3"} {
		if _, _, err := ParsePidStat(bad); err == nil {
			t.Errorf("ParsePidStat(%q): no error", bad)
		}
	}
}

func TestParseBlkioAndIOStat(t *testing.T) {
	v1, err := ParseBlkio(v1Blkio)
	if err != nil || len(v1) != 6 || v1[0] != (IOEntry{8, 0, "Read", 1048576}) {
		t.Fatalf("ParseBlkio = %v, %v", v1, err)
	}
	if r, w := Bytes(v1, "read"), Bytes(v1, "write"); r != 1048576 || w != 4096 {
		t.Errorf("v1 bytes read %d, written %d", r, w)
	}
	if es, err := ParseBlkio("Total 0\n"); err != nil || es != nil {
		t.Errorf("ParseBlkio of an idle cgroup = %v, %v", es, err)
	}
	v2, err := ParseIOStat(v2IOStat)
	want := []IOEntry{{8, 0, "read", 1048576}, {8, 0, "write", 4096}, {253, 1, "read", 512}, {253, 1, "write", 0}}
	if err != nil || !reflect.DeepEqual(v2, want) {
		t.Errorf("ParseIOStat = %v, %v\nwant %v", v2, err, want)
	}
	if r := Bytes(v2, "Read"); r != 1048576+512 {
		t.Errorf("v2 bytes read %d", r)
	}
	for _, bad := range []string{"8-0 Read 1\n", "8:x Read 1\n", "8:0 Read many\n"} {
		if _, err := ParseBlkio(bad); err == nil {
			t.Errorf("ParseBlkio(%q): no error", bad)
		}
	}
	if _, err := ParseIOStat("sda rbytes=1\n"); err == nil {
		t.Error("ParseIOStat without a device number: no error")
	}
}

func TestParseNetDev(t *testing.T) {
	text := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0:    1296      15    1    2    0     0          0         0      936      11    3    4    0     0       0          0
`
	got, err := ParseNetDev(text)
	want := map[string]NetDev{"eth0": {RxBytes: 1296, RxPackets: 15, RxErrors: 1, RxDropped: 2, TxBytes: 936, TxPackets: 11, TxErrors: 3, TxDropped: 4}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseNetDev = %v, %v\nwant %v", got, err, want)
	}
	if rx, tx := Traffic(got); rx != 1296 || tx != 936 {
		t.Errorf("Traffic = %d, %d", rx, tx)
	}
	if _, err := ParseNetDev("eth0: 1 2 3\n"); err == nil {
		t.Error("ParseNetDev of a short line: no error")
	}
}

func TestMemory(t *testing.T) {
	v1 := Memory{Usage: 11 << 20, Stats: ParseKeyValues(v1MemoryStat)}
	if got := v1.InUse(); got != 11<<20-8192 {
		t.Errorf("v1 InUse = %d, want usage - total_inactive_file", got)
	}
	v2 := Memory{Usage: 11 << 20, Stats: ParseKeyValues(v2MemoryStat)}
	if got := v2.InUse(); got != 11<<20-4096 {
		t.Errorf("v2 InUse = %d, want usage - inactive_file", got)
	}
	if got := (Memory{Usage: 100, Stats: map[string]uint64{"inactive_file": 200}}).InUse(); got != 100 {
		t.Errorf("InUse with more inactive cache than usage = %d, want the usage", got)
	}
	const host = 8 << 30
	for _, c := range [][2]uint64{{64 << 20, 64 << 20}, {0, host}, {9223372036854771712, host}} {
		if got := HostLimit(c[0], host); got != c[1] {
			t.Errorf("HostLimit(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}

func TestPercent(t *testing.T) {
	prev := CPU{Total: 1e9, System: 100e9, Online: 2}
	cur := CPU{Total: 1.5e9, System: 102e9, Online: 2} // half a CPU of two for a second
	if got := Percent(prev, cur); got != 50 {
		t.Errorf("Percent = %v, want 50", got)
	}
	if got := Percent(cur, cur); got != 0 {
		t.Errorf("Percent without progress = %v, want 0", got)
	}
}
