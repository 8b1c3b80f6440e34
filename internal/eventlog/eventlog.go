// Package eventlog reads workload events from the journal (package events
// says what its records mean) and writes cove's own records there: the
// creation and removal of a workload and the changes of its health,
// which systemd cannot know.
package eventlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/cove-project/cove/internal/events"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// Options select the events Read reports.
type Options struct {
	// Since and Until bound the events by their time, both inclusive; the
	// zero time means no bound.
	Since, Until time.Time
	Filter       events.Filter
}

// Read calls fn with every event opt selects, in order: those the
// journal holds from Since (without Since or Until, none: only new
// ones), then, unless Until has passed, new ones as they come until ctx
// ends or Until passes. An error of fn ends Read with that error.
func Read(ctx context.Context, opt Options, fn func(events.Event) error) error {
	lo := supervisor.LogOptions{Since: opt.Since, Until: opt.Until, Follow: true}
	if opt.Since.IsZero() && opt.Until.IsZero() {
		lo.Lines = supervisor.NoLines
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &mapWriter{m: events.NewMapper(), filter: opt.Filter, fn: fn, cancel: cancel}
	if err := supervisor.Records(ctx, lo, events.Fields, w, events.Match...); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return w.err
}

// mapWriter maps the journal's records, one JSON object a line, to
// events and passes those that pass the filter to fn. After an error it
// cancels the read (journalctl -f would not notice a reader that stopped
// reading) and takes no more.
type mapWriter struct {
	m      *events.Mapper
	filter events.Filter
	fn     func(events.Event) error
	cancel context.CancelFunc
	part   []byte // an incomplete last line
	err    error
}

// Write maps the complete lines of p and what came before.
func (w *mapWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.part = append(w.part, p...)
	for {
		line, rest, ok := bytes.Cut(w.part, []byte("\n"))
		if !ok {
			break
		}
		w.part = rest
		if w.err = w.record(line); w.err != nil {
			w.cancel()
			return 0, w.err
		}
	}
	w.part = append(w.part[:0:0], w.part...) // keep only the incomplete line
	return len(p), nil
}

// record maps one line.
func (w *mapWriter) record(line []byte) error {
	r, err := events.ParseRecord(line)
	if err != nil {
		return err
	}
	for _, e := range w.m.Map(r) {
		if !w.filter.Match(e) {
			continue
		}
		if err := w.fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Created records that the workload of s was created (with its image, if
// it runs one): the create event. With autoRemove its unit goes when its
// run ends and no cove process stays to record that (a detached cove run
// --rm that will not restart): the end of the run is then also its
// destroy event (events.FieldAutoRemove). Like Removed, it never fails
// the operation it records: a record the journal does not take is
// reported on standard error (the user's terminal, or cove-api's journal).
func Created(s *spec.Spec, autoRemove bool) {
	vars := map[string]string{}
	if s.Container != nil && s.Container.Image != "" {
		vars[events.FieldImage] = s.Container.Image
	}
	if autoRemove {
		vars[events.FieldAutoRemove] = "1"
	}
	warn(send(events.IDCreated, s.Name, "created", vars))
}

// Renamed records that workload old is now called name: the rename
// event. Like Created, it never fails the rename.
func Renamed(old, name string) {
	warn(send(events.IDRenamed, name, "renamed from "+old, map[string]string{events.FieldOldName: old}))
}

// Removed records that workload name was removed: the destroy event.
func Removed(name string) {
	warn(send(events.IDRemoved, name, "removed", nil))
}

// warn reports err, if any, on standard error.
func warn(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "cove: warning: %v\n", err)
	}
}

// HealthChanged records that workload name's health became status
// (events.Healthy or events.Unhealthy): the health_status event.
func HealthChanged(name, status string) error {
	return send(events.IDHealth, name, "is "+status, map[string]string{events.FieldHealth: status})
}

// Killed records that SIGKILL ended workload name's main process, which
// systemd counted as clean (events.IDKilled): the die event's status.
func Killed(name string) error {
	return send(events.IDKilled, name, "main process killed by SIGKILL", map[string]string{"EXIT_CODE": "killed", "EXIT_STATUS": "9"})
}

// send writes one of cove's records about workload name to the journal
// (its native socket), with MESSAGE "workload NAME WHAT" and vars.
func send(id, name, what string, vars map[string]string) error {
	fields := map[string]string{"MESSAGE_ID": id, events.FieldWorkload: name}
	for k, v := range vars {
		fields[k] = v
	}
	if err := journal.Send("workload "+name+" "+what, journal.PriInfo, fields); err != nil {
		return fmt.Errorf("record in the journal that workload %s %s: %w", name, what, err)
	}
	return nil
}
