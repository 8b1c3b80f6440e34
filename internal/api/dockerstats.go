package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cove-project/cove/internal/stats"
)

// dockerStats is Docker's stats object (StatsJSON of API 1.41).
type dockerStats struct {
	Read         time.Time               `json:"read"`
	PreRead      time.Time               `json:"preread"`
	PidsStats    dockerPids              `json:"pids_stats"`
	BlkioStats   dockerBlkio             `json:"blkio_stats"`
	NumProcs     uint32                  `json:"num_procs"`
	StorageStats struct{}                `json:"storage_stats"`
	CPUStats     dockerCPU               `json:"cpu_stats"`
	PreCPUStats  dockerCPU               `json:"precpu_stats"`
	MemoryStats  dockerMemory            `json:"memory_stats"`
	Name         string                  `json:"name,omitempty"`
	ID           string                  `json:"id,omitempty"`
	Networks     map[string]stats.NetDev `json:"networks,omitempty"`
}

// dockerPids are Docker's pids_stats.
type dockerPids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// dockerBlkio are Docker's blkio_stats: cove fills the bytes only, the
// other lists are null, as Docker's on cgroup v2.
type dockerBlkio struct {
	IoServiceBytesRecursive []stats.IOEntry `json:"io_service_bytes_recursive"`
	IoServicedRecursive     []stats.IOEntry `json:"io_serviced_recursive"`
	IoQueuedRecursive       []stats.IOEntry `json:"io_queue_recursive"`
	IoServiceTimeRecursive  []stats.IOEntry `json:"io_service_time_recursive"`
	IoWaitTimeRecursive     []stats.IOEntry `json:"io_wait_time_recursive"`
	IoMergedRecursive       []stats.IOEntry `json:"io_merged_recursive"`
	IoTimeRecursive         []stats.IOEntry `json:"io_time_recursive"`
	SectorsRecursive        []stats.IOEntry `json:"sectors_recursive"`
}

// dockerCPU are Docker's cpu_stats and precpu_stats.
type dockerCPU struct {
	CPUUsage struct {
		TotalUsage        uint64 `json:"total_usage"`
		UsageInKernelmode uint64 `json:"usage_in_kernelmode"`
		UsageInUsermode   uint64 `json:"usage_in_usermode"`
	} `json:"cpu_usage"`
	SystemUsage    uint64 `json:"system_cpu_usage,omitempty"`
	OnlineCPUs     uint32 `json:"online_cpus,omitempty"`
	ThrottlingData struct {
		Periods          uint64 `json:"periods"`
		ThrottledPeriods uint64 `json:"throttled_periods"`
		ThrottledTime    uint64 `json:"throttled_time"`
	} `json:"throttling_data"`
}

// dockerMemory are Docker's memory_stats.
type dockerMemory struct {
	Usage    uint64            `json:"usage,omitempty"`
	MaxUsage uint64            `json:"max_usage,omitempty"`
	Stats    map[string]uint64 `json:"stats,omitempty"`
	Failcnt  uint64            `json:"failcnt,omitempty"`
	Limit    uint64            `json:"limit,omitempty"`
}

// dockerStatsOf is sample cur of workload name in Docker's shape, with
// pre as the previous sample (zero: none).
func dockerStatsOf(name string, pre, cur stats.Sample) dockerStats {
	return dockerStats{
		Read: cur.Read, PreRead: pre.Read,
		PidsStats:   dockerPids(cur.Pids),
		BlkioStats:  dockerBlkio{IoServiceBytesRecursive: cur.IO},
		CPUStats:    dockerCPUOf(cur.CPU),
		PreCPUStats: dockerCPUOf(pre.CPU),
		MemoryStats: dockerMemory{Usage: cur.Memory.Usage, MaxUsage: cur.Memory.MaxUsage, Stats: cur.Memory.Stats,
			Failcnt: cur.Memory.Failcnt, Limit: cur.Memory.Limit},
		Name: "/" + name, ID: dockerID(name), Networks: cur.Networks,
	}
}

// dockerCPUOf is c in Docker's shape.
func dockerCPUOf(c stats.CPU) dockerCPU {
	var d dockerCPU
	d.CPUUsage.TotalUsage, d.CPUUsage.UsageInKernelmode, d.CPUUsage.UsageInUsermode = c.Total, c.Kernel, c.User
	d.SystemUsage, d.OnlineCPUs = c.System, uint32(c.Online)
	d.ThrottlingData.Periods, d.ThrottlingData.ThrottledPeriods, d.ThrottlingData.ThrottledTime = c.Periods, c.ThrottledPeriods, c.ThrottledTime
	return d
}

// sample is the current sample of a Docker stats object (what
// dockerStatsOf made of it).
func (d dockerStats) sample() stats.Sample {
	c := d.CPUStats
	return stats.Sample{
		Read: d.Read,
		CPU: stats.CPU{Total: c.CPUUsage.TotalUsage, User: c.CPUUsage.UsageInUsermode, Kernel: c.CPUUsage.UsageInKernelmode,
			System: c.SystemUsage, Online: int(c.OnlineCPUs), Periods: c.ThrottlingData.Periods,
			ThrottledPeriods: c.ThrottlingData.ThrottledPeriods, ThrottledTime: c.ThrottlingData.ThrottledTime},
		Memory: stats.Memory{Usage: d.MemoryStats.Usage, MaxUsage: d.MemoryStats.MaxUsage, Failcnt: d.MemoryStats.Failcnt,
			Limit: d.MemoryStats.Limit, Stats: d.MemoryStats.Stats},
		Pids:     stats.Pids(d.PidsStats),
		IO:       d.BlkioStats.IoServiceBytesRecursive,
		Networks: d.Networks,
	}
}

// dockerContainerStats answers GET /containers/ID/stats?stream=&one-shot=:
// with stream (the default) an object per stats.Interval until the client
// goes or the container stops; else one object, whose precpu_stats are a
// sample stats.Interval before (none with one-shot). A container that does
// not run gets one object of zeros, as from Docker.
func (s *Server) dockerContainerStats(c *call) {
	q := c.r.URL.Query()
	stream, oneShot := true, false
	var err *Error
	if q.Get("stream") != "" {
		if stream, err = queryBool(q, "stream"); err != nil {
			c.fail(err)
			return
		}
	}
	if oneShot, err = queryBool(q, "one-shot"); err != nil {
		c.fail(err)
		return
	}
	if oneShot && stream {
		c.fail(errorf(CodeBadRequest, "cannot have stream=true and one-shot=true"))
		return
	}
	w, ok := s.lookup(c)
	switch {
	case !ok:
	case w.MainPID == 0:
		c.reply(http.StatusOK, dockerStats{Name: "/" + w.Name, ID: dockerID(w.Name)})
	case stream:
		s.streamStats(c, w.Name, int(w.MainPID))
	default:
		s.oneStats(c, w.Name, int(w.MainPID), !oneShot)
	}
}

// oneStats answers with one stats object of pid, workload name's main
// process; with rates, two samples stats.Interval apart.
func (s *Server) oneStats(c *call, name string, pid int, rates bool) {
	var pre stats.Sample
	if rates {
		c.long()
		var err error
		if pre, err = stats.Read(pid); err != nil {
			c.failWith(err)
			return
		}
		if !stats.Wait(c.ctx()) {
			return
		}
	}
	cur, err := stats.Read(pid)
	if err != nil {
		c.failWith(err)
		return
	}
	c.reply(http.StatusOK, dockerStatsOf(name, pre, cur))
}

// streamStats streams a stats object of pid, workload name's main
// process, every stats.Interval until the request ends or pid is gone.
func (s *Server) streamStats(c *call, name string, pid int) {
	c.w.Header().Set("Content-Type", "application/json")
	fw := c.stream(true)
	enc := json.NewEncoder(fw)
	var pre stats.Sample
	for {
		cur, err := stats.Read(pid)
		if err != nil || enc.Encode(dockerStatsOf(name, pre, cur)) != nil || !stats.Wait(c.ctx()) {
			return // the container stopped, the client went away
		}
		pre = cur
	}
}

// Stats samples the counters of workload name, which must be running.
func (l *Local) Stats(ctx context.Context, name string) (stats.Sample, error) {
	w, err := l.Status(ctx, name)
	if err != nil {
		return stats.Sample{}, err
	}
	if w.MainPID == 0 {
		return stats.Sample{}, notRunning(name)
	}
	return stats.Read(int(w.MainPID))
}

// notRunning is the error of Stats of workload name when it does not run.
func notRunning(name string) error {
	return &Error{Code: CodeConflict, Message: fmt.Sprintf("stats of %s: it is not running", name)}
}

// Stats asks the server for a sample of workload name's counters (one
// Docker stats object, one-shot), which must be running.
func (c *Client) Stats(ctx context.Context, name string) (stats.Sample, error) {
	path := "/containers/" + url.PathEscape(name) + "/stats?stream=0&one-shot=1"
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return stats.Sample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		e := dockerError{Message: fmt.Sprintf("GET %s on the cove API at %s: %s", path, c.host, resp.Status)}
		json.NewDecoder(io.LimitReader(resp.Body, MaxBodyBytes)).Decode(&e)
		return stats.Sample{}, &Error{Code: codeOf(resp.StatusCode), Message: e.Message}
	}
	var d dockerStats
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return stats.Sample{}, fmt.Errorf("stats of %s from the cove API at %s: decode the answer: %w", name, c.host, err)
	}
	if d.Read.IsZero() {
		return stats.Sample{}, notRunning(name)
	}
	return d.sample(), nil
}
