package cli

import (
	"strings"
	"testing"
	"time"
)

// TestLogTime: --since and --until take durations before now, RFC 3339
// and Unix seconds, and name the forms they take otherwise.
func TestLogTime(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                       now.Add(-10 * time.Minute),
		"1h30m":                     now.Add(-90 * time.Minute),
		"2024-05-01T09:00:00.5Z":    now.Add(-59*time.Minute - 59*time.Second - 500*time.Millisecond),
		"1714550400.25":             time.Unix(1714550400, 250000000),
		"0":                         {},
		"2024-05-01T12:00:00+02:00": now,
	} {
		var got time.Time
		if err := logTime(&got, in, now); err != nil || !got.Equal(want) {
			t.Errorf("logTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-10m", "yesterday", "10x"} {
		var got time.Time
		if err := logTime(&got, in, now); err == nil || !strings.HasSuffix(err.Error(), "or a duration ago (10m)") {
			t.Errorf("logTime(%q) = %v, %v; want an error naming the forms", in, got, err)
		}
	}
}
