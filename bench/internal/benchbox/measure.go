package benchbox

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Millis converts d to milliseconds with microsecond resolution.
func Millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// Stats summarise samples; the JSON names are those of the benchmarks'
// -json output, which embed Stats in their series.
type Stats struct {
	Median float64 `json:"median_ms"`
	P90    float64 `json:"p90_ms"`
	Min    float64 `json:"min_ms"`
	Mean   float64 `json:"mean_ms"`
}

// Summarize computes median, p90 (nearest rank), min and mean; all zero
// without samples.
func Summarize(samples []float64) Stats {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return Stats{}
	}
	var st Stats
	if n%2 == 1 {
		st.Median = s[n/2]
	} else {
		st.Median = (s[n/2-1] + s[n/2]) / 2
	}
	st.P90 = s[int(math.Ceil(0.9*float64(n)))-1]
	st.Min = s[0]
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	st.Mean = sum / float64(n)
	return st
}

// Rounds calls fn for warmup+n rounds, round counting from 0; measure is
// false in the warm-up rounds. With announce, it says on stderr when the
// warm-up is done.
func Rounds(warmup, n int, announce bool, fn func(round int, measure bool) error) error {
	for round := 0; round < warmup+n; round++ {
		if announce && round == warmup {
			Progress(fmt.Sprintf("warm-up done (%d rounds); measuring %d rounds", warmup, n))
		}
		if err := fn(round, round >= warmup); err != nil {
			return err
		}
	}
	return nil
}
