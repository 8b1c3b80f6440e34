package main

import (
	"os"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// order lists benches as they run in a round.
func order(bs []*bench) string {
	var ks []string
	for _, b := range bs {
		ks = append(ks, b.Key+" "+b.Name)
	}
	return strings.Join(ks, ", ")
}

// summarize computes each bench's statistics.
func summarize(bs []*bench) {
	for _, b := range bs {
		b.Stats = benchbox.Summarize(b.Samples)
	}
}

// find returns the bench with key k, or nil.
func find(bs []*bench, k string) *bench {
	for _, b := range bs {
		if b.Key == k {
			return b
		}
	}
	return nil
}

// ratio records a's median / b's median (and the same of the p90s) as
// name, if both ran.
func ratio(rep *report, name string, a, b *bench) {
	if a == nil || b == nil {
		return
	}
	rep.Ratios[name] = a.Median / b.Median
	rep.Ratios[name+" p90"] = a.P90 / b.P90
}

// netRatio is ratio of the medians with the floor's median subtracted
// from both.
func netRatio(rep *report, name string, a, b, floor *bench) {
	if a == nil || b == nil || floor == nil {
		return
	}
	rep.Ratios[name] = (a.Median - floor.Median) / (b.Median - floor.Median)
}

// leftovers counts what cove run --rm left in the containers directory.
func leftovers(f *fixture) int {
	es, _ := os.ReadDir(f.box.Dirs[containersDir])
	return len(es)
}
