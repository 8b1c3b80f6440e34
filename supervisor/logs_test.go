package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseLogTime: Docker's Unix seconds with up to nine fractional
// digits and RFC 3339 parse exactly; "" and "0" are no bound; anything
// else is an error; FormatLogTime reads back to the same time.
func TestParseLogTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":                               {},
		"0":                              {},
		"1700000000":                     time.Unix(1700000000, 0),
		"1700000000.5":                   time.Unix(1700000000, 500000000),
		"1700000000.123456789":           time.Unix(1700000000, 123456789),
		"1700000000.000001":              time.Unix(1700000000, 1000),
		"2024-05-01T10:00:00.123456789Z": time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC),
		"2024-05-01T12:00:00+02:00":      time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseLogTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseLogTime(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseLogTime(FormatLogTime(got)); err != nil || !back.Equal(got) {
			t.Errorf("ParseLogTime(FormatLogTime(%v)) = %v, %v", got, back, err)
		}
	}
	for _, in := range []string{"x", "-1", "+5", "1.", ".5", "1.1234567890", "1.-5", "1e9", "1969-12-31T23:59:59Z", "2024-05-01"} {
		if got, err := ParseLogTime(in); err == nil {
			t.Errorf("ParseLogTime(%q) = %v, want an error", in, got)
		}
	}
}

// TestJournalArgs: journalctl's arguments for each option; Since rounds up
// and Until down to the journal's microseconds, and Since after Until
// runs nothing.
func TestJournalArgs(t *testing.T) {
	at := func(us int64, ns int) time.Time { return time.UnixMicro(us).Add(time.Duration(ns)) }
	base := []string{"--no-pager", "--quiet", "-o", "cat", "-u", "w"}
	for _, tc := range []struct {
		opt  LogOptions
		want []string // after base
	}{
		{LogOptions{}, nil},
		{LogOptions{Lines: 5}, []string{"-n", "5"}},
		{LogOptions{Lines: NoLines, Follow: true}, []string{"-n", "0", "-f"}},
		{LogOptions{Follow: true}, []string{"--no-tail", "-f"}},
		{LogOptions{Since: at(1700000000123456, 0), Until: at(1700000000123456, 0)},
			[]string{"--since=@1700000000.123456", "--until=@1700000000.123456"}},
		{LogOptions{Since: at(1700000000123456, 1), Until: at(1700000001000000, 999)},
			[]string{"--since=@1700000000.123457", "--until=@1700000001.000000"}},
	} {
		if got := journalArgs(tc.opt, []string{"-u", "w"}); !reflect.DeepEqual(got, append(base[:len(base):len(base)], tc.want...)) {
			t.Errorf("journalArgs(%+v) = %q, want %q + %q", tc.opt, got, base, tc.want)
		}
	}
	got := journalArgs(LogOptions{Timestamps: true}, []string{"-u", "w"})
	if want := []string{"--no-pager", "--quiet", "-o", "json", "--all", "--output-fields=MESSAGE", "-u", "w"}; !reflect.DeepEqual(got, want) {
		t.Errorf("journalArgs with timestamps = %q, want %q", got, want)
	}
	if got := journalArgs(LogOptions{Since: at(5, 1), Until: at(5, 999)}, nil); got != nil {
		t.Errorf("Since after Until within one microsecond: %q, want nil", got)
	}
}

// TestStamper: every JSON entry becomes "TIME MESSAGE\n", whatever
// form its MESSAGE takes and however the output is split into writes.
func TestStamper(t *testing.T) {
	in := strings.Join([]string{
		`{"__REALTIME_TIMESTAMP":"1714557600123456","MESSAGE":"started web"}`,
		`{"__REALTIME_TIMESTAMP":"1714557600123457","MESSAGE":[104,105,255]}`,
		`{"__REALTIME_TIMESTAMP":"1714557601000000","MESSAGE":["first",[50]]}`,
		`{"__REALTIME_TIMESTAMP":"1714557601000001","OTHER":"no message"}`,
		`{"__REALTIME_TIMESTAMP":"1714557601000002","MESSAGE":null}`,
		`{"__REALTIME_TIMESTAMP":"1714557602000000","MESSAGE":"two\nlines"}`,
		``,
	}, "\n")
	want := "2024-05-01T10:00:00.123456000Z started web\n" +
		"2024-05-01T10:00:00.123457000Z hi\xff\n" +
		"2024-05-01T10:00:01.000000000Z first\n" +
		"2024-05-01T10:00:02.000000000Z two\nlines\n"
	for _, size := range []int{1, 7, len(in)} {
		var out strings.Builder
		s := &stamper{w: &out}
		for i := 0; i < len(in); i += size {
			chunk := in[i:min(i+size, len(in))]
			if n, err := s.Write([]byte(chunk)); err != nil || n != len(chunk) {
				t.Fatalf("write of %d bytes: %d, %v", len(chunk), n, err)
			}
		}
		if out.String() != want {
			t.Errorf("writes of %d bytes: %q, want %q", size, out.String(), want)
		}
	}
	for _, bad := range []string{"not json\n", `{"__REALTIME_TIMESTAMP":"x","MESSAGE":"m"}` + "\n", `{"MESSAGE":{}}` + "\n"} {
		if _, err := (&stamper{w: &strings.Builder{}}).Write([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestFollowUntil: a follow with Until ends a grace period after Until
// (journalctl is killed, which is no error), and one whose Until has
// passed does not follow at all. journalctl here is a stand-in that
// prints its arguments and, when following, sleeps.
func TestFollowUntil(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\necho \"$@\"\ncase \" $* \" in *\" -f \"*) exec sleep 60;; esac\n"
	if err := os.WriteFile(filepath.Join(bin, "journalctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	for _, tc := range []struct {
		until  time.Duration // from now
		follow bool          // journalctl was asked to follow
	}{{-untilGrace - time.Second, false}, {200 * time.Millisecond, true}} {
		var out strings.Builder
		start := time.Now()
		err := Logs(context.Background(), "w", LogOptions{Follow: true, Until: start.Add(tc.until)}, &out)
		took := time.Since(start)
		if err != nil || strings.Contains(out.String(), " -f") != tc.follow {
			t.Errorf("until now%+v: %v, journalctl %q", tc.until, err, out.String())
		}
		if limit := max(tc.until, 0) + untilGrace + 2*time.Second; took > limit || tc.follow && took < tc.until+untilGrace {
			t.Errorf("until now%+v: took %s", tc.until, took)
		}
	}
}

// TestBoundedTailWriters: cursorCut passes everything but a final cursor
// line on, however the output is split; lastLines keeps the last n lines.
func TestBoundedTailWriters(t *testing.T) {
	out := "line 1\n-- cursor: fake\nline 3\n-- cursor: s=abc;i=1\n"
	for _, split := range []int{1, 3, 7, len(out)} {
		var got strings.Builder
		c := &cursorCut{next: &got}
		for i := 0; i < len(out); i += split {
			c.Write([]byte(out[i:min(i+split, len(out))]))
		}
		if err := c.end(); err != nil || got.String() != "line 1\n-- cursor: fake\nline 3\n" || c.cursor != "s=abc;i=1" {
			t.Errorf("split %d: passed %q, cursor %q, %v", split, got.String(), c.cursor, err)
		}
	}
	var got strings.Builder
	c := &cursorCut{next: &got}
	c.Write([]byte("only output\n"))
	if c.end(); got.String() != "only output\n" || c.cursor != "" {
		t.Errorf("without a cursor: passed %q, cursor %q", got.String(), c.cursor)
	}
	l := &lastLines{n: 2}
	for _, p := range []string{"a\nb", "\nc\n", "d\ne"} {
		l.Write([]byte(p))
	}
	if got := string(l.bytes()); got != "c\nd\ne" {
		t.Errorf("lastLines: %q", got)
	}
}
