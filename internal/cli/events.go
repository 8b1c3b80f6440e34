package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/events"
)

// eventsOptions are cove events' flags.
type eventsOptions struct {
	Since, Until time.Time // --since, --until (logTime reads them); zero: no bound
	Filters      []string  // --filter KEY=VALUE, repeated (events.ParseFilter)
	JSON         bool      // --json: one JSON object a line
}

// eventReader reads workload events: api.Local from the journal,
// api.Client from the server.
type eventReader interface {
	Events(ctx context.Context, opt eventlog.Options, fn func(events.Event) error) error
}

// eventsCommand is cove events: start, stop, die, oom, restart,
// health_status, create and destroy, read from the journal.
func eventsCommand(env *Env) *cobra.Command {
	var opts eventsOptions
	now := time.Now()
	c := &cobra.Command{
		Use:   "events [flags]",
		Short: "show workload events (start, stop, die, oom, restart, health_status, create, destroy)",
		Long: `Show workload events as docker events does, derived from systemd's records in
the journal (and cove's own for create and destroy), so events from while no
cove process ran are there too. Without --until it follows new events until
interrupted.`,
		Example: `  cove events
  cove events --since 1h --until 0s
  cove events --since 10m --filter container=web --filter event=die --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return eventsRun(cmd.Context(), env, opts) },
	}
	fs := c.Flags()
	fs.Func("since", "events at or after `TIME`: RFC 3339, Unix seconds, or a duration ago (10m)", func(v string) error { return logTime(&opts.Since, v, now) })
	fs.Func("until", "events at or before `TIME` (as for --since); without it, follow new events", func(v string) error { return logTime(&opts.Until, v, now) })
	fs.StringArrayVarP(&opts.Filters, "filter", "f", nil, "only events matching `KEY=VALUE`: container=NAME, event=ACTION, type=container (repeatable)")
	fs.BoolVar(&opts.JSON, "json", false, "one JSON object per event and line")
	return viaAPI(c)
}

// eventsRun prints the workload events opts select, as docker events
// does: those from --since on, then new ones as they come until ctx ends
// or --until passes (without --since, only new ones). Each is a line of
// text (events.Event.String) or, with --json, a JSON object.
func eventsRun(ctx context.Context, env *Env, opts eventsOptions) error {
	f, err := events.ParseFilter(opts.Filters)
	if err != nil {
		return usagef("events: --filter: %w", err)
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && opts.Until.Before(opts.Since) {
		return usagef("events: --until %s is before --since %s", opts.Until.Format(time.RFC3339Nano), opts.Since.Format(time.RFC3339Nano))
	}
	return withBackend(ctx, env, func(b api.Backend) error {
		r, ok := b.(eventReader)
		if !ok {
			return fmt.Errorf("events: the backend %T cannot read events", b)
		}
		return printEvents(ctx, env.Stdout, r, eventlog.Options{Since: opts.Since, Until: opts.Until, Filter: f}, opts.JSON)
	})
}

// printEvents prints the events r reads for opt to w.
func printEvents(ctx context.Context, w io.Writer, r eventReader, opt eventlog.Options, asJSON bool) error {
	return r.Events(ctx, opt, func(e events.Event) error {
		if asJSON {
			return printJSONLine(w, e)
		}
		_, err := fmt.Fprintln(w, e)
		return err
	})
}
