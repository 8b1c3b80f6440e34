package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/sandbox"
)

// measure runs the commands interleaved round-robin, warm-up rounds
// first, and fills in the statistics and ratios.
func measure(ctx context.Context, sb *sandbox.Sandbox, rep *report) error {
	err := benchbox.Rounds(rep.Warmup, rep.Rounds, true, func(round int, measure bool) error {
		for _, b := range rep.Benches {
			d, err := benchbox.TimeOnce(ctx, sb, benchbox.CmdTimeout, b.Env, b.Argv)
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, b.Name, err)
			}
			if measure {
				b.Samples = append(b.Samples, d)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, b := range rep.Benches {
		b.Stats = benchbox.Summarize(b.Samples)
	}
	ratios(rep)
	return nil
}

// find returns the bench with key k, or nil.
func find(rep *report, k string) *bench {
	for _, b := range rep.Benches {
		if b.Key == k {
			return b
		}
	}
	return nil
}

// ratios compares the medians, as measured and net of the nsenter floor.
func ratios(rep *report) {
	a, b, c, d := find(rep, "A"), find(rep, "B"), find(rep, "C"), find(rep, "D")
	rep.Ratios["cove/systemd-run"] = a.Median / b.Median
	rep.Ratios["cove/systemd-run net of floor"] = (a.Median - d.Median) / (b.Median - d.Median)
	if e := find(rep, "E"); e != nil {
		rep.Ratios["cove userns=auto/cove"] = e.Median / a.Median
	}
	if c != nil {
		rep.Ratios["podman/cove"] = c.Median / a.Median
		rep.Ratios["podman/cove net of floor"] = (c.Median - d.Median) / (a.Median - d.Median)
	}
}
