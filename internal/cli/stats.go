package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/stats"
	"github.com/cove-project/cove/supervisor"
)

// sampler reads a running workload's counters: api.Local reads them from
// its cgroup, api.Client asks the server.
type sampler interface {
	Stats(ctx context.Context, name string) (stats.Sample, error)
}

// statsRow is one workload's line of cove stats, and its --json object.
type statsRow struct {
	Name        string  `json:"name"`
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryUsage uint64  `json:"memory_usage"`
	MemoryLimit uint64  `json:"memory_limit"`
	MemPercent  float64 `json:"memory_percent"`
	NetRx       uint64  `json:"net_rx_bytes"`
	NetTx       uint64  `json:"net_tx_bytes"`
	BlockRead   uint64  `json:"block_read_bytes"`
	BlockWrite  uint64  `json:"block_write_bytes"`
	Pids        uint64  `json:"pids"`
}

// statsCommand is cove stats: a live table of what workloads use.
func statsCommand(env *Env) *cobra.Command {
	var noStream, asJSON bool
	c := &cobra.Command{
		Use:   "stats [flags] [NAME...]",
		Short: "show live CPU, memory, network, block I/O and pids of workloads",
		Long: `Show what workloads use, read from their cgroups and network namespaces, as
docker stats does: CPU %, memory use and limit, network and block I/O, pids.
Without names, every running workload. The table is refreshed every second
until interrupted; --no-stream prints it once (CPU % over one second).`,
		Example: `  cove stats
  cove stats --no-stream web db
  cove stats --no-stream --json`,
		ValidArgsFunction: completeWorkloads(env, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			return statsRun(cmd.Context(), env, args, !noStream, asJSON)
		},
	}
	c.Flags().BoolVar(&noStream, "no-stream", false, "print one table and exit")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON object per workload and line")
	return viaAPI(c)
}

// statsRun shows what workloads names (none: every running one) use, as
// docker stats does: a table refreshed every second until ctx ends, or
// one table with stream false (CPU % over one second either way); with
// asJSON, a JSON object per workload and line instead of each table.
func statsRun(ctx context.Context, env *Env, names []string, stream, asJSON bool) error {
	return withBackend(ctx, env, func(b api.Backend) error {
		s, ok := b.(sampler)
		if !ok {
			return fmt.Errorf("stats: the backend %T cannot read counters", b)
		}
		redraw := stream && !asJSON && isTerminal(env.Stdout)
		return showStats(ctx, env.Stdout, b, s, names, stream, asJSON, redraw)
	})
}

// showStats is statsRun's loop over backend b and its sampler s.
func showStats(ctx context.Context, w io.Writer, b api.Backend, s sampler, names []string, stream, asJSON, redraw bool) error {
	prev, err := sampleAll(ctx, b, s, names)
	if err != nil {
		return err
	}
	for stats.Wait(ctx) {
		cur, err := sampleAll(ctx, b, s, names)
		if err != nil {
			return err
		}
		if err := printStats(w, statsRows(prev, cur), asJSON, redraw); err != nil || !stream {
			return err
		}
		prev = cur
	}
	return nil
}

// workloadSample is one workload's sample.
type workloadSample struct {
	name   string
	sample stats.Sample
}

// sampleAll samples workloads names, or every running workload when
// there are none: one that is not running (or stopped meanwhile) is an
// error only when named.
func sampleAll(ctx context.Context, b api.Backend, s sampler, names []string) ([]workloadSample, error) {
	all := len(names) == 0
	if all {
		ws, err := b.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			if w.MainPID != 0 {
				names = append(names, w.Name)
			}
		}
	}
	var out []workloadSample
	for _, n := range names {
		sm, err := s.Stats(ctx, n)
		switch {
		case err == nil:
			out = append(out, workloadSample{n, sm})
		case !all || (!errors.Is(err, supervisor.ErrNotFound) && !isConflict(err)):
			return nil, named(n, err)
		}
	}
	return out, nil
}

// isConflict reports whether err is the API's conflict (not running).
func isConflict(err error) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == api.CodeConflict
}

// statsRows are the rows of the workloads in cur, with CPU % since their
// sample in prev (0 for one not there).
func statsRows(prev, cur []workloadSample) []statsRow {
	before := map[string]stats.CPU{}
	for _, p := range prev {
		before[p.name] = p.sample.CPU
	}
	rows := make([]statsRow, len(cur))
	for i, c := range cur {
		sm := c.sample
		r := statsRow{Name: c.name, MemoryUsage: sm.Memory.InUse(), MemoryLimit: sm.Memory.Limit, Pids: sm.Pids.Current,
			BlockRead: stats.Bytes(sm.IO, "read"), BlockWrite: stats.Bytes(sm.IO, "write")}
		if pre, ok := before[c.name]; ok {
			r.CPUPercent = stats.Percent(pre, sm.CPU)
		}
		if r.MemoryLimit > 0 {
			r.MemPercent = float64(r.MemoryUsage) / float64(r.MemoryLimit) * 100
		}
		r.NetRx, r.NetTx = stats.Traffic(sm.Networks)
		rows[i] = r
	}
	return rows
}

// printStats writes rows as a table (after clearing a terminal's screen
// with redraw) or as JSON lines.
func printStats(w io.Writer, rows []statsRow, asJSON, redraw bool) error {
	if asJSON {
		for _, r := range rows {
			if err := printJSONLine(w, r); err != nil {
				return err
			}
		}
		return nil
	}
	if redraw {
		io.WriteString(w, "\033[H\033[2J")
	}
	tw := newTable(w, 3)
	fmt.Fprintln(tw, "NAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%s / %s\t%d\n", r.Name, r.CPUPercent,
			binarySize(r.MemoryUsage), binarySize(r.MemoryLimit), r.MemPercent,
			decimalSize(r.NetRx), decimalSize(r.NetTx), decimalSize(r.BlockRead), decimalSize(r.BlockWrite), r.Pids)
	}
	return tw.Flush()
}

// printJSONLine writes v as one line of JSON.
func printJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// binarySize is n bytes as docker stats shows memory: 1024-based, four
// significant digits ("10.52MiB", "64MiB").
func binarySize(n uint64) string {
	return humanSize(n, 1024, "%.4g%s", []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"})
}

// decimalSize is n bytes as docker stats shows traffic: 1000-based,
// three significant digits ("1.3kB", "936B").
func decimalSize(n uint64) string {
	return humanSize(n, 1000, "%.3g%s", []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"})
}

// humanSize scales n by base until it is below base and formats it with
// the unit.
func humanSize(n uint64, base float64, format string, units []string) string {
	f, i := float64(n), 0
	for f >= base && i < len(units)-1 {
		f, i = f/base, i+1
	}
	return fmt.Sprintf(format, f, units[i])
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
