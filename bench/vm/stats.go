package main

import (
	"math/rand/v2"
	"sort"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// summarize fills in the statistics, the overheads and the phases.
func (rep *report) summarize() {
	for _, x := range rep.Benches {
		x.QMP, x.Marker, x.Exit = benchbox.Summarize(x.QMPMs), benchbox.Summarize(x.MarkerMs), benchbox.Summarize(x.ExitMs)
	}
	a, b := rep.Benches[0], rep.Benches[1]
	rep.MarkerOverhead = (a.Marker.Median/b.Marker.Median - 1) * 100
	rep.ExitOverhead = (a.Exit.Median/b.Exit.Median - 1) * 100
	rep.MarkerPairedDiff = pairedDiff(a.MarkerMs, b.MarkerMs)
	rep.ExitPairedDiff = pairedDiff(a.ExitMs, b.ExitMs)
	rep.Phases = phases(a, b)
}

// phase is a part of a run, from one event to the next: medians of A and
// B and the median of the per-round differences A−B.
type phase struct {
	Name       string  `json:"name"`
	A          float64 `json:"a_median_ms"`
	B          float64 `json:"b_median_ms"`
	PairedDiff diff    `json:"paired_diff"`
}

// phases splits the runs at the QMP socket and the marker.
func phases(a, b *bench) []phase {
	// spans returns, per run of x, the three phases' durations.
	spans := func(x *bench) [3][]float64 {
		var d [3][]float64
		for i := range x.ExitMs {
			d[0] = append(d[0], x.QMPMs[i])
			d[1] = append(d[1], x.MarkerMs[i]-x.QMPMs[i])
			d[2] = append(d[2], x.ExitMs[i]-x.MarkerMs[i])
		}
		return d
	}
	sa, sb := spans(a), spans(b)
	names := [3]string{
		"exec → QEMU up (qmp.sock created)",
		"QEMU up → COVE-GUEST-BOOTED (guest boot)",
		"COVE-GUEST-BOOTED → exit (poweroff, teardown)",
	}
	var out []phase
	for k, name := range names {
		out = append(out, phase{Name: name, A: benchbox.Summarize(sa[k]).Median, B: benchbox.Summarize(sb[k]).Median, PairedDiff: pairedDiff(sa[k], sb[k])})
	}
	return out
}

// diff is the median of per-round differences A−B with a 95 % bootstrap
// confidence interval of that median.
type diff struct {
	Median float64 `json:"median_ms"`
	Lo     float64 `json:"ci95_lo_ms"`
	Hi     float64 `json:"ci95_hi_ms"`
}

// pairedDiff is the median of the per-round differences a[i] − b[i], with
// a percentile bootstrap interval (fixed seed: the same samples give the
// same interval).
func pairedDiff(a, b []float64) diff {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	if len(d) == 0 {
		return diff{}
	}
	const resamples = 5000
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, resamples)
	re := make([]float64, len(d))
	for k := range meds {
		for i := range re {
			re[i] = d[rng.IntN(len(d))]
		}
		meds[k] = benchbox.Summarize(re).Median
	}
	sort.Float64s(meds)
	return diff{Median: benchbox.Summarize(d).Median, Lo: meds[resamples*25/1000], Hi: meds[resamples*975/1000-1]}
}
