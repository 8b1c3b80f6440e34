package qmp

import (
	"context"
	"encoding/json"
	"fmt"
)

// Resources is what QEMU reports of a running VM's resources.
type Resources struct {
	VCPUThreads []int   // the host thread ID of each vCPU (query-cpus-fast)
	MemoryBytes uint64  // the guest's RAM (query-memory-size-summary's base-memory)
	Disks       []Drive // each drive's I/O since QEMU started (query-blockstats)
}

// Drive is one drive's I/O counters.
type Drive struct {
	ID        string `json:"id"` // the drive's id (disk0, cd0, seed), or its device's path
	ReadBytes uint64 `json:"read_bytes"`
	Written   uint64 `json:"written_bytes"`
	ReadOps   uint64 `json:"read_ops"`
	WriteOps  uint64 `json:"write_ops"`
}

// Resources asks QEMU for the VM's vCPU threads, memory size and drive
// I/O.
func (q *QMP) Resources(ctx context.Context) (Resources, error) {
	var r Resources
	var cpus []struct {
		ThreadID int `json:"thread-id"`
	}
	var mem struct {
		Base uint64 `json:"base-memory"`
	}
	var blocks []struct {
		Device string `json:"device"`
		QDev   string `json:"qdev"`
		Stats  struct {
			RdBytes      uint64 `json:"rd_bytes"`
			WrBytes      uint64 `json:"wr_bytes"`
			RdOperations uint64 `json:"rd_operations"`
			WrOperations uint64 `json:"wr_operations"`
		} `json:"stats"`
	}
	for _, c := range []struct {
		cmd string
		out any
	}{{"query-cpus-fast", &cpus}, {"query-memory-size-summary", &mem}, {"query-blockstats", &blocks}} {
		raw, err := q.Execute(ctx, c.cmd, nil)
		if err != nil {
			return r, err
		}
		if err := json.Unmarshal(raw, c.out); err != nil {
			return r, fmt.Errorf("qmp %s: %w", c.cmd, err)
		}
	}
	for _, c := range cpus {
		r.VCPUThreads = append(r.VCPUThreads, c.ThreadID)
	}
	r.MemoryBytes = mem.Base
	for _, b := range blocks {
		id := b.Device
		if id == "" {
			id = b.QDev
		}
		r.Disks = append(r.Disks, Drive{ID: id, ReadBytes: b.Stats.RdBytes, Written: b.Stats.WrBytes, ReadOps: b.Stats.RdOperations, WriteOps: b.Stats.WrOperations})
	}
	return r, nil
}
