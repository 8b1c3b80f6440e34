package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cove-project/cove/spec"
)

// LogOptions select which journal lines Logs prints, and how.
type LogOptions struct {
	Follow bool // keep printing new lines until ctx ends (or Until passes)
	// Lines is how many of the last lines to print: 0 means all, NoLines
	// none (with Follow: only new lines).
	Lines int
	// Since and Until bound the lines by the time journald received them,
	// both inclusive; the zero time means no bound. The journal keeps
	// microseconds: Since is rounded up to one, Until down. A follow with
	// Until ends once Until has passed (after untilGrace, for lines still on
	// their way to the journal).
	Since, Until time.Time
	// Timestamps prefixes every line with its journal time and a space,
	// as docker logs -t: RFC 3339 in UTC with nine fractional digits,
	// "2024-05-01T10:00:00.123456000Z started".
	Timestamps bool
	// fields, set by Records only, makes the output whole entries: one
	// JSON object a line with these fields (journalctl -o json
	// --output-fields), not messages.
	fields []string
}

// NoLines as LogOptions.Lines prints none of the lines already logged.
const NoLines = -1

// TimestampFormat is the layout of LogOptions.Timestamps (Docker's
// RFC3339NanoFixed), for times in UTC.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// untilGrace is how long a follow goes on after LogOptions.Until.
const untilGrace = time.Second

// ParseLogTime parses a bound of LogOptions.Since or Until as the API
// takes it: Unix seconds with up to nine fractional digits, as Docker
// sends them ("1700000000", "1700000000.123456789"), or RFC 3339
// ("2024-05-01T10:00:00.5Z"), not before 1970. "" and "0" are the zero
// time: no bound.
func ParseLogTime(s string) (time.Time, error) {
	if s == "" || s == "0" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if t.Before(time.Unix(0, 0)) {
			return time.Time{}, fmt.Errorf("time %.40q: before 1970", s)
		}
		return t, nil
	}
	secs, frac, hasFrac := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || !isDigits(secs) || hasFrac && (frac == "" || len(frac) > 9 || !isDigits(frac)) {
		return time.Time{}, fmt.Errorf("time %.40q: want Unix seconds (with up to 9 fractional digits) or RFC 3339", s)
	}
	nsec, _ := strconv.Atoi((frac + "000000000")[:9])
	return time.Unix(sec, int64(nsec)), nil
}

// FormatLogTime formats t as ParseLogTime reads it back exactly: Unix
// seconds with nine fractional digits, "" for the zero time.
func FormatLogTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// Logs copies the journal of workload name (its payload's output) to w.
// It runs journalctl: go-systemd's journal reader needs cgo and libsystemd.
func Logs(ctx context.Context, name string, opt LogOptions, w io.Writer) error {
	return journal(ctx, w, opt, "-u", spec.UnitName(name))
}

// InstanceLogs is Logs of every instance of replicated workload name
// (journalctl -u cove-NAME@*.service), interleaved by time.
func InstanceLogs(ctx context.Context, name string, opt LogOptions, w io.Writer) error {
	return journal(ctx, w, opt, "-u", spec.InstancePattern(name))
}

// Records copies the journal entries that match to w as journalctl -o
// json writes them, one object a line, with only fields (and the cursor,
// times and boot ID journalctl always adds), binary values included
// (--all). match is journalctl's: FIELD=VALUE terms, the values of one
// field alternatives, of different fields all required, "+" between
// alternative groups. opt bounds and follows them as for Logs
// (Timestamps does not apply).
func Records(ctx context.Context, opt LogOptions, fields []string, w io.Writer, match ...string) error {
	opt.Timestamps, opt.fields = false, fields
	return journal(ctx, w, opt, match...)
}

// journal runs journalctl with the given match, printing messages only
// (with Timestamps, each with its time).
func journal(ctx context.Context, w io.Writer, opt LogOptions, match ...string) error {
	if opt.Follow && !opt.Until.IsZero() {
		end := opt.Until.Add(untilGrace)
		if !time.Now().Before(end) {
			opt.Follow = false // nothing new can match
		} else {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, end)
			defer cancel()
		}
	}
	if opt.Lines > 0 && (!opt.Since.IsZero() || !opt.Until.IsZero()) {
		return boundedTail(ctx, w, opt, match)
	}
	return runJournal(ctx, w, opt.Timestamps, journalArgs(opt, match))
}

// boundedTail prints the last opt.Lines lines between Since and Until,
// then follows if asked. journalctl before v254 gets -n wrong together
// with --since or --until (systemd#26657), so the lines are counted here:
// the bounded range is read whole and its last lines kept; a follow goes
// on after the cursor of the last entry read.
func boundedTail(ctx context.Context, w io.Writer, opt LogOptions, match []string) error {
	first := opt
	first.Lines, first.Follow = 0, false
	args := journalArgs(first, match)
	if args == nil {
		return nil
	}
	tail := &lastLines{n: opt.Lines}
	cut := &cursorCut{}
	var out io.Writer = tail
	if opt.Timestamps {
		out = &stamper{w: tail}
	}
	cut.next = out
	if err := runJournal(ctx, cut, false, append(args, "--show-cursor")); err != nil && !noEntries(ctx, cut, args) {
		return err
	}
	if err := cut.end(); err != nil {
		return err
	}
	if _, err := w.Write(tail.bytes()); err != nil || !opt.Follow {
		return err
	}
	next := opt
	next.Lines = 0
	if cut.cursor != "" {
		next.Since = time.Time{} // the cursor is a tighter bound
		return runJournal(ctx, w, opt.Timestamps, append(journalArgs(next, match), "--after-cursor="+cut.cursor))
	}
	return runJournal(ctx, w, opt.Timestamps, journalArgs(next, match))
}

// noEntries reports, after journalctl --show-cursor failed with nothing
// on cut, whether that was because no entry matches args: journalctl 252
// exits 1 then (it has no cursor to show), which a run without
// --show-cursor tells apart from a real failure by succeeding.
func noEntries(ctx context.Context, cut *cursorCut, args []string) bool {
	return len(cut.buf) == 0 && !cut.passed && runJournal(ctx, io.Discard, false, args) == nil
}

// runJournal runs journalctl with args, its output to w (converted by a
// stamper when stamp); nil args run nothing.
func runJournal(ctx context.Context, w io.Writer, stamp bool, args []string) error {
	if args == nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	// A follower must not outlive its reader, e.g. an API helper that was
	// killed mid-stream. journalctl -f exits when its output pipe is
	// closed, and besides gets SIGKILL when its parent dies. The kernel
	// sends that when the thread that forked journalctl ends, though, and Go
	// ends a thread when a goroutine locked to it exits; unlocked, this
	// goroutine could move to another thread and leave the forking one to
	// others. So it keeps that thread until journalctl is reaped (which
	// costs no thread: Wait blocks one anyway).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.Stdout = w
	if stamp {
		cmd.Stdout = &stamper{w: w}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read journal %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// cursorCut passes journalctl --show-cursor output on to next, holding
// back the last line: after the output ends, end takes it as the cursor
// ("-- cursor: CURSOR") when it is one, else passes it on.
type cursorCut struct {
	next   io.Writer
	buf    []byte // output not passed on yet: from the start of the last complete line
	passed bool   // some output was passed on
	cursor string
}

// cursorPrefix starts journalctl's --show-cursor line.
const cursorPrefix = "-- cursor: "

// Write passes on all but the last complete line (and what follows it).
func (c *cursorCut) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	last := bytes.LastIndexByte(c.buf[:max(len(c.buf)-1, 0)], '\n') // end of the line before the last
	if last < 0 {
		return len(p), nil
	}
	if _, err := c.next.Write(c.buf[:last+1]); err != nil {
		return 0, err
	}
	c.passed = true
	c.buf = append(c.buf[:0], c.buf[last+1:]...)
	return len(p), nil
}

// end handles the last line once journalctl has exited.
func (c *cursorCut) end() error {
	line := strings.TrimSuffix(string(c.buf), "\n")
	if cur, ok := strings.CutPrefix(line, cursorPrefix); ok && !strings.Contains(line, "\n") {
		c.cursor = cur
		return nil
	}
	_, err := c.next.Write(c.buf)
	return err
}

// lastLines keeps the last n lines written to it.
type lastLines struct {
	n     int
	lines [][]byte
	part  []byte
}

// Write keeps the complete lines of p, at most n of them.
func (l *lastLines) Write(p []byte) (int, error) {
	l.part = append(l.part, p...)
	for {
		line, rest, ok := bytes.Cut(l.part, []byte("\n"))
		if !ok {
			break
		}
		l.lines = append(l.lines, append(line[:len(line):len(line)], '\n'))
		if len(l.lines) > l.n {
			l.lines = l.lines[1:]
		}
		l.part = rest
	}
	l.part = append(l.part[:0:0], l.part...)
	return len(p), nil
}

// bytes returns the kept lines, then an incomplete last one.
func (l *lastLines) bytes() []byte {
	return append(bytes.Join(l.lines, nil), l.part...)
}

// journalArgs are journalctl's arguments for opt and match; nil when no
// line can match (Since after Until: journalctl would refuse them).
func journalArgs(opt LogOptions, match []string) []string {
	args := []string{"--no-pager", "--quiet", "-o", "cat"}
	switch {
	case opt.fields != nil:
		args = []string{"--no-pager", "--quiet", "-o", "json", "--all", "--output-fields=" + strings.Join(opt.fields, ",")}
	case opt.Timestamps:
		// Exact times and raw messages; without --all, messages over 4 KiB
		// would be null.
		args = []string{"--no-pager", "--quiet", "-o", "json", "--all", "--output-fields=MESSAGE"}
	}
	args = append(args, match...)
	switch {
	case opt.Lines == NoLines:
		args = append(args, "-n", "0")
	case opt.Lines > 0:
		args = append(args, "-n", strconv.Itoa(opt.Lines))
	case opt.Follow:
		args = append(args, "--no-tail") // -f alone starts with the last 10 lines
	}
	if opt.Follow {
		args = append(args, "-f")
	}
	// The journal keeps microseconds: round Since up, so that a line of
	// the same microsecond but before Since does not show, and Until down.
	since, until := opt.Since.Add(time.Microsecond-1).UnixMicro(), opt.Until.UnixMicro()
	if !opt.Since.IsZero() {
		args = append(args, "--since="+journalTime(since))
	}
	if !opt.Until.IsZero() {
		if !opt.Since.IsZero() && since > until {
			return nil
		}
		args = append(args, "--until="+journalTime(until))
	}
	return args
}

// journalTime is a time in microseconds since the epoch for journalctl's
// --since and --until: "@SECONDS.MICROSECONDS".
func journalTime(us int64) string {
	return fmt.Sprintf("@%d.%06d", us/1e6, us%1e6)
}

// stamper turns journalctl -o json output, one entry a line, into the
// entries' messages, each prefixed with its time (TimestampFormat) and a
// space, and writes them to w: one Write per Write of complete lines.
type stamper struct {
	w    io.Writer
	part []byte // an incomplete last line
	out  []byte
}

// journalEntry is the part of a journalctl -o json entry stamper uses.
type journalEntry struct {
	Realtime string       `json:"__REALTIME_TIMESTAMP"` // microseconds since the epoch
	Message  journalField `json:"MESSAGE"`
}

// journalField is a field's value as journalctl -o json writes it: a
// string, an array of bytes when not printable UTF-8, or an array of
// such values when the entry has the field more than once (the first
// counts, as for -o cat). null (absent) is nil.
type journalField []byte

// UnmarshalJSON reads any form of journalField.
func (f *journalField) UnmarshalJSON(b []byte) error {
	var s *string
	if json.Unmarshal(b, &s) == nil {
		if s != nil {
			*f = []byte(*s)
		}
		return nil
	}
	var raw []byte
	if json.Unmarshal(b, &raw) == nil {
		*f = raw
		return nil
	}
	var many []journalField
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("journal field %.40s: %w", b, err)
	}
	if len(many) > 0 {
		*f = many[0]
	}
	return nil
}

// Write converts the complete lines of p and what came before.
func (s *stamper) Write(p []byte) (int, error) {
	s.part = append(s.part, p...)
	s.out = s.out[:0]
	for {
		line, rest, ok := bytes.Cut(s.part, []byte("\n"))
		if !ok {
			break
		}
		if err := s.entry(line); err != nil {
			return 0, err
		}
		s.part = rest
	}
	s.part = append(s.part[:0:0], s.part...) // keep only the incomplete line
	if len(s.out) == 0 {
		return len(p), nil
	}
	if _, err := s.w.Write(s.out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// entry appends the line of one JSON entry to s.out; an entry without a
// message prints nothing, as with -o cat.
func (s *stamper) entry(line []byte) error {
	var e journalEntry
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("journal entry %.80q: %w", line, err)
	}
	if e.Message == nil {
		return nil
	}
	us, err := strconv.ParseInt(e.Realtime, 10, 64)
	if err != nil {
		return fmt.Errorf("journal entry %.80q: __REALTIME_TIMESTAMP: %w", line, err)
	}
	s.out = time.UnixMicro(us).UTC().AppendFormat(s.out, TimestampFormat)
	s.out = append(s.out, ' ')
	s.out = append(append(s.out, e.Message...), '\n')
	return nil
}

// withLogs adds the last lines a unit's invocation logged to err, reading
// the journal up to logTries times, logRetry apart, until there are some.
func withLogs(ctx context.Context, err error, invocation, unit string) error {
	var b strings.Builder
	match := []string{"-u", unit}
	if invocation != "" && invocation != strings.Repeat("0", 32) {
		match = []string{"_SYSTEMD_INVOCATION_ID=" + invocation}
	}
	// The unit's output reaches journald through a stream that it may not
	// have read yet when the job has failed: wait a little for it.
	for try := 0; try < logTries && b.Len() == 0 && ctx.Err() == nil; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(logRetry):
			}
		}
		if journal(ctx, &b, LogOptions{Lines: 10}, match...) != nil {
			return err
		}
	}
	if b.Len() == 0 {
		return err
	}
	return fmt.Errorf("%w\nlast log lines of %s:\n%s", err, unit, strings.TrimRight(b.String(), "\n"))
}

// How long withLogs waits for a failed unit's output to reach the
// journal: logTries reads, logRetry apart.
const (
	logTries = 10
	logRetry = 50 * time.Millisecond
)

// isNotFound reports whether err is ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// isDigits reports whether s is ASCII digits only.
func isDigits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}
