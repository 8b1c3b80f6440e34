package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/stats"
	"github.com/cove-project/cove/supervisor"
)

// fakeStats is a backend with two workloads, web running and old
// stopped; every sample of web adds half a CPU-second over a second of
// two CPUs.
type fakeStats struct {
	api.Backend // only List is called
	calls       int
}

func (f *fakeStats) List(context.Context) ([]api.Workload, error) {
	return []api.Workload{
		{Workload: supervisor.Workload{Name: "old"}},
		{Workload: supervisor.Workload{Name: "web", MainPID: 42}},
	}, nil
}

func (f *fakeStats) Stats(_ context.Context, name string) (stats.Sample, error) {
	if name != "web" {
		return stats.Sample{}, fmt.Errorf("stats of %s: %w", name, supervisor.ErrNotFound)
	}
	f.calls++
	n := uint64(f.calls)
	return stats.Sample{
		CPU:      stats.CPU{Total: n * 0.5e9, System: n * 2e9, Online: 2},
		Memory:   stats.Memory{Usage: 11<<20 + 4096, Limit: 64 << 20, Stats: map[string]uint64{"total_inactive_file": 4096}},
		Pids:     stats.Pids{Current: 2},
		IO:       []stats.IOEntry{{Op: "Read", Value: 1 << 20}, {Op: "Write", Value: 4096}, {Op: "Total", Value: 1<<20 + 4096}},
		Networks: map[string]stats.NetDev{"eth0": {RxBytes: 1296, TxBytes: 936}},
	}, nil
}

// TestShowStats: cove stats --no-stream prints one table of the running
// workloads with docker's columns and units, CPU % over the interval;
// --json one object per workload; a named workload that is not there
// is an error.
func TestShowStats(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	if err := showStats(ctx, &out, &fakeStats{}, &fakeStats{}, nil, false, false, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^web +50\.00% +11MiB / 64MiB +17\.19% +1\.3kB / 936B +1\.05MB / 4\.1kB +2$`).MatchString(lines[1]) {
		t.Errorf("cove stats --no-stream printed:\n%s", out.String())
	}
	out.Reset()
	f := &fakeStats{}
	if err := showStats(ctx, &out, f, f, []string{"web"}, false, true, false); err != nil {
		t.Fatal(err)
	}
	var row statsRow
	if err := json.Unmarshal(out.Bytes(), &row); err != nil || row.Name != "web" || row.CPUPercent != 50 ||
		row.MemoryUsage != 11<<20 || row.NetRx != 1296 || row.BlockRead != 1<<20 || row.Pids != 2 {
		t.Errorf("cove stats --json printed %s (%v)", out.String(), err)
	}
	if err := showStats(ctx, &out, f, f, []string{"nosuch"}, false, false, false); err == nil {
		t.Error("stats of a named workload that is not there: no error")
	}
	// Streaming ends with the context.
	ctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	out.Reset()
	if err := showStats(ctx, &out, f, f, nil, true, false, false); err != nil || strings.Count(out.String(), "NAME") != 2 {
		t.Errorf("two seconds of cove stats: %v\n%s", err, out.String())
	}
}

func TestSizes(t *testing.T) {
	for n, want := range map[uint64][2]string{
		0: {"0B", "0B"}, 936: {"936B", "936B"}, 1296: {"1.266KiB", "1.3kB"},
		1536 << 10: {"1.5MiB", "1.57MB"}, 64 << 20: {"64MiB", "67.1MB"}, 8 << 30: {"8GiB", "8.59GB"},
	} {
		if b, d := binarySize(n), decimalSize(n); b != want[0] || d != want[1] {
			t.Errorf("sizes of %d = %s, %s; want %s, %s", n, b, d, want[0], want[1])
		}
	}
}
