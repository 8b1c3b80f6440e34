package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/stats"
)

// TestDockerStatsShape: a sample becomes Docker's stats object with the
// keys the docker CLI and the SDKs read, and the client reads it back.
func TestDockerStatsShape(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	pre := stats.Sample{Read: t0, CPU: stats.CPU{Total: 1e9, System: 100e9, Online: 2}}
	cur := stats.Sample{
		Read: t0.Add(time.Second),
		CPU:  stats.CPU{Total: 1.5e9, User: 1.2e9, Kernel: 0.3e9, System: 102e9, Online: 2, Periods: 5, ThrottledPeriods: 1, ThrottledTime: 7},
		Memory: stats.Memory{Usage: 11 << 20, MaxUsage: 12 << 20, Failcnt: 1, Limit: 64 << 20,
			Stats: map[string]uint64{"total_inactive_file": 4096}},
		Pids:     stats.Pids{Current: 3, Limit: 128},
		IO:       []stats.IOEntry{{Major: 8, Op: "Read", Value: 4096}},
		Networks: map[string]stats.NetDev{"eth0": {RxBytes: 1296, RxPackets: 15, TxBytes: 936, TxPackets: 11}},
	}
	d := dockerStatsOf("web", pre, cur)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, key := range []string{
		`"read":"2024-05-01T12:00:01Z"`, `"preread":"2024-05-01T12:00:00Z"`, `"pids_stats":{"current":3,"limit":128}`,
		`"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":4096}]`, `"io_serviced_recursive":null`,
		`"num_procs":0`, `"storage_stats":{}`,
		`"cpu_stats":{"cpu_usage":{"total_usage":1500000000,"usage_in_kernelmode":300000000,"usage_in_usermode":1200000000},"system_cpu_usage":102000000000,"online_cpus":2,"throttling_data":{"periods":5,"throttled_periods":1,"throttled_time":7}}`,
		`"precpu_stats":{"cpu_usage":{"total_usage":1000000000,`, `"system_cpu_usage":100000000000`,
		`"memory_stats":{"usage":11534336,"max_usage":12582912,"stats":{"total_inactive_file":4096},"failcnt":1,"limit":67108864}`,
		`"name":"/web"`, `"id":"` + dockerID("web") + `"`,
		`"networks":{"eth0":{"rx_bytes":1296,"rx_packets":15,"rx_errors":0,"rx_dropped":0,"tx_bytes":936,"tx_packets":11,"tx_errors":0,"tx_dropped":0}}`,
	} {
		if !strings.Contains(text, key) {
			t.Errorf("stats JSON lacks %s:\n%s", key, text)
		}
	}
	var back dockerStats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.sample(); !reflect.DeepEqual(got, cur) {
		t.Errorf("sample() = %+v\nwant %+v", got, cur)
	}
	// Host networking and no limits: no networks key, no pids limit.
	none, _ := json.Marshal(dockerStatsOf("h", stats.Sample{}, stats.Sample{Read: t0}))
	if s := string(none); strings.Contains(s, `"networks"`) || !strings.Contains(s, `"pids_stats":{}`) {
		t.Errorf("stats of a host-network workload: %s", s)
	}
}
