package api

import (
	"testing"
	"time"
)

// TestUntilFilter: the until filter reads Docker's timestamps (a
// duration back from now, Unix seconds with a fraction, RFC 3339, a local
// date and time or date); a bad one or two are a 400; none is the zero
// time.
func TestUntilFilter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Time
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.25", time.Unix(1700000000, 250000000)},
		{"2026-12-01T10:00:00Z", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
		{"2026-12-01T10:00:00+01:00", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)},
		{"2026-12-01T10:00:00", time.Date(2026, 12, 1, 10, 0, 0, 0, time.Local)},
		{"2026-12-01", time.Date(2026, 12, 1, 0, 0, 0, 0, time.Local)},
	} {
		got, err := untilFilter(filters{"until": {c.v}}, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("until %q: %v, %v; want %v", c.v, got, err, c.want)
		}
	}
	for _, bad := range [][]string{{"yesterday"}, {"-5"}, {"1.1234567890"}, {"1h", "2h"}} {
		if got, err := untilFilter(filters{"until": bad}, now); err == nil || err.Code != CodeBadRequest {
			t.Errorf("until %q: %v, %v; want a 400", bad, got, err)
		}
	}
	if got, err := untilFilter(nil, now); err != nil || !got.IsZero() {
		t.Errorf("no until filter: %v, %v; want the zero time", got, err)
	}
}
