package units

import (
	"fmt"
	"strings"
	"testing"
)

// TestSliceOf: a workload always lands in the same sub-slice, a child of
// cove.slice by systemd's naming rule, and the names spread over all
// SliceBuckets of them.
func TestSliceOf(t *testing.T) {
	seen := map[string]int{}
	for i := range 1000 {
		s := SliceOf(fmt.Sprintf("web-%d", i))
		if s != SliceOf(fmt.Sprintf("web-%d", i)) || !strings.HasPrefix(s, strings.TrimSuffix(Slice, ".slice")+"-") || strings.Count(s, "-") != 1 {
			t.Fatalf("SliceOf(web-%d) = %q: not stable, or not a child of %s", i, s, Slice)
		}
		seen[s]++
	}
	if len(seen) != SliceBuckets {
		t.Errorf("1000 names went to %d sub-slices, want all %d", len(seen), SliceBuckets)
	}
	for s, n := range seen {
		if n > 3*1000/SliceBuckets {
			t.Errorf("%s got %d of 1000 workloads", s, n)
		}
	}
}
