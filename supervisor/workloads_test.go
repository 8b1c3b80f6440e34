package supervisor

import (
	"math"
	"testing"
)

// TestParseUint64Variant reads godbus's text of a uint64 variant.
func TestParseUint64Variant(t *testing.T) {
	for v, want := range map[string]uint64{"@t 4915": 4915, "@t 18446744073709551615": math.MaxUint64, "12": 12} {
		if got, err := parseUint64Variant(v); err != nil || got != want {
			t.Errorf("parseUint64Variant(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, bad := range []string{"", "@t", "@t -1", "uint64 x"} {
		if _, err := parseUint64Variant(bad); err == nil {
			t.Errorf("parseUint64Variant(%q) read a number", bad)
		}
	}
}
