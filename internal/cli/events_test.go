package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/events"
)

// fakeEvents is an eventReader that reports its events and remembers
// the options it was asked for.
type fakeEvents struct {
	evs []events.Event
	opt eventlog.Options
}

func (f *fakeEvents) Events(_ context.Context, opt eventlog.Options, fn func(events.Event) error) error {
	f.opt = opt
	for _, e := range f.evs {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// TestPrintEvents: cove events prints a line per event as docker events
// does, or with --json a JSON object per line.
func TestPrintEvents(t *testing.T) {
	code := 137
	at := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	r := &fakeEvents{evs: []events.Event{
		{Time: at, Type: events.TypeContainer, Action: events.Die, Name: "web", ExitCode: &code},
		{Time: at, Type: events.TypeContainer, Action: events.Health, Name: "web", Health: events.Healthy},
	}}
	var out bytes.Buffer
	if err := printEvents(context.Background(), &out, r, eventlog.Options{}, false); err != nil {
		t.Fatal(err)
	}
	want := "2024-05-01T10:00:00.123456000Z container die web (exitCode=137)\n" +
		"2024-05-01T10:00:00.123456000Z container health_status: healthy web\n"
	if out.String() != want {
		t.Errorf("cove events printed\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := printEvents(context.Background(), &out, r, eventlog.Options{}, true); err != nil {
		t.Fatal(err)
	}
	want = `{"time":"2024-05-01T10:00:00.123456Z","type":"container","action":"die","name":"web","exit_code":137}` + "\n" +
		`{"time":"2024-05-01T10:00:00.123456Z","type":"container","action":"health_status","name":"web","health":"healthy"}` + "\n"
	if out.String() != want {
		t.Errorf("cove events --json printed\n%s\nwant\n%s", out.String(), want)
	}
}

// TestEventsUsage: a bad --filter and --until before --since are usage
// errors, found before any backend is asked.
func TestEventsUsage(t *testing.T) {
	env := &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Host: "unix:///nonexistent/cove.sock"}
	now := time.Now()
	for _, opts := range []eventsOptions{
		{Filters: []string{"label=x"}},
		{Filters: []string{"event=explode"}},
		{Since: now, Until: now.Add(-time.Second)},
	} {
		err := eventsRun(context.Background(), env, opts)
		var u usageError
		if !errors.As(err, &u) || !strings.HasPrefix(err.Error(), "events: ") {
			t.Errorf("eventsRun(%+v) = %v, want a usage error", opts, err)
		}
	}
}
