package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/events"
	"github.com/cove-project/cove/supervisor"
)

// dockerEvent is Docker's events message (API 1.41), with the legacy
// status, id and from a container's events carry.
type dockerEvent struct {
	Status   string      `json:"status,omitempty"`
	ID       string      `json:"id,omitempty"`
	From     string      `json:"from,omitempty"`
	Type     string      `json:"Type"`
	Action   string      `json:"Action"`
	Actor    dockerActor `json:"Actor"`
	Scope    string      `json:"scope"`
	Time     int64       `json:"time"`
	TimeNano int64       `json:"timeNano"`
}

// dockerActor is the object of a Docker event.
type dockerActor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// dockerEventOf is e in Docker's shape: a health_status action carries
// the status ("health_status: healthy"), the attributes name, image, a
// die event's exitCode and a rename's oldName ("/OLD", as Docker has it).
func dockerEventOf(e events.Event) dockerEvent {
	action := e.Action
	if e.Health != "" {
		action += ": " + e.Health
	}
	attrs := map[string]string{"name": e.Name}
	if e.Image != "" {
		attrs["image"] = e.Image
	}
	if e.ExitCode != nil {
		attrs["exitCode"] = strconv.Itoa(*e.ExitCode)
	}
	if e.OldName != "" {
		attrs["oldName"] = "/" + e.OldName // Docker's container names have their slash
	}
	id := dockerID(e.Name)
	return dockerEvent{Status: action, ID: id, From: e.Image, Type: e.Type, Action: action,
		Actor: dockerActor{ID: id, Attributes: attrs}, Scope: "local", Time: e.Time.Unix(), TimeNano: e.Time.UnixNano()}
}

// event is the event a dockerEventOf made.
func (d dockerEvent) event() events.Event {
	e := events.Event{Time: time.Unix(0, d.TimeNano), Type: d.Type, Action: d.Action, Name: d.Actor.Attributes["name"],
		Image: d.Actor.Attributes["image"], OldName: strings.TrimPrefix(d.Actor.Attributes["oldName"], "/")}
	if h, ok := strings.CutPrefix(d.Action, events.Health+": "); ok {
		e.Action, e.Health = events.Health, h
	}
	if v, ok := d.Actor.Attributes["exitCode"]; ok {
		if code, err := strconv.Atoi(v); err == nil {
			e.ExitCode = &code
		}
	}
	return e
}

// eventFilterKeys are the filter keys GET /events implements: the
// events package's and label (the container's labels, as its list).
var eventFilterKeys = []string{"container", "event", "type", "label"}

// dockerEvents answers GET /events?since=&until=&filters=: the events
// (eventlog.Read) as a stream of JSON objects, one a line, until the
// client goes or until passes. since and until are read as
// supervisor.ParseLogTime reads them. The container's labels (its spec's
// container.labels, read at its first event in the stream) are among
// the actor's attributes, as Docker's, and the label filter matches them.
func (s *Server) dockerEvents(c *call) {
	opt, f, err := eventsQuery(c.r.URL.Query())
	if err != nil {
		c.fail(err)
		return
	}
	labelsOf, forget := s.labelsOfContainers()
	c.w.Header().Set("Content-Type", "application/json")
	fw := c.stream(true)
	enc := json.NewEncoder(fw)
	c.finish(fw, eventlog.Read(c.ctx(), opt, func(e events.Event) error {
		ls := labelsOf(e.Name)
		if e.Action == events.Destroy {
			forget(e.Name)
		}
		if !f.labelsMatch(ls) {
			return nil
		}
		d := dockerEventOf(e)
		for k, v := range ls {
			if _, ok := d.Actor.Attributes[k]; !ok {
				d.Actor.Attributes[k] = v
			}
		}
		return enc.Encode(d)
	}))
}

// labelsOfContainers returns what gives a container's labels by its
// name (none for one without a spec, or none now), read once per name
// that has some; forget drops a name's (its container was destroyed: a
// new one may take the name).
func (s *Server) labelsOfContainers() (labelsOf func(name string) map[string]string, forget func(name string)) {
	known := map[string]map[string]string{}
	labelsOf = func(name string) map[string]string {
		if ls, ok := known[name]; ok {
			return ls
		}
		rec, _ := s.records.read(name)
		var ls map[string]string
		if sp := viewSpec(s.specIndex(), rec, name); sp != nil && sp.Container != nil && len(sp.Container.Labels) > 0 {
			ls = sp.Container.Labels
			known[name] = ls
		}
		return ls
	}
	return labelsOf, func(name string) { delete(known, name) }
}

// eventsQuery reads the query of GET /events: the options, and the
// filters, whose label filter the caller applies.
func eventsQuery(q url.Values) (eventlog.Options, filters, *Error) {
	var opt eventlog.Options
	for key, t := range map[string]*time.Time{"since": &opt.Since, "until": &opt.Until} {
		v, err := supervisor.ParseLogTime(q.Get(key))
		if err != nil {
			return opt, nil, errorf(CodeBadRequest, fmt.Sprintf("%s: %v", key, err))
		}
		*t = v
	}
	f, ferr := parseFilters(q.Get("filters"), eventFilterKeys)
	if ferr != nil {
		return opt, nil, ferr
	}
	rest := maps.Clone(f)
	delete(rest, "label")
	var err error
	if opt.Filter, err = events.NewFilter(rest); err != nil {
		return opt, nil, errorf(CodeBadRequest, err.Error())
	}
	opt.Filter.ID = dockerID
	return opt, f, nil
}

// Events reads the events opt selects from the journal (eventlog.Read).
func (l *Local) Events(ctx context.Context, opt eventlog.Options, fn func(events.Event) error) error {
	return eventlog.Read(ctx, opt, fn)
}

// Events asks the server for the events opt selects (GET /events) and
// calls fn with each, until the stream ends or ctx does.
func (c *Client) Events(ctx context.Context, opt eventlog.Options, fn func(events.Event) error) error {
	path := "/events?" + eventsQueryOf(opt).Encode()
	resp, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var d dockerEvent
		err := dec.Decode(&d)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, io.EOF):
			if t := resp.Trailer.Get(errorTrailer); t != "" {
				return errors.New(t)
			}
			return nil
		case err != nil:
			return fmt.Errorf("events from the cove API at %s: %w", c.host, err)
		}
		if err := fn(d.event()); err != nil {
			return err
		}
	}
}

// eventsQueryOf is the query of GET /events for opt (eventsQuery reads
// it back).
func eventsQueryOf(opt eventlog.Options) url.Values {
	q := url.Values{}
	for key, t := range map[string]time.Time{"since": opt.Since, "until": opt.Until} {
		if !t.IsZero() {
			q.Set(key, supervisor.FormatLogTime(t))
		}
	}
	f := map[string][]string{}
	for key, vs := range map[string][]string{"container": opt.Filter.Containers, "event": opt.Filter.Actions, "type": opt.Filter.Types} {
		if len(vs) > 0 {
			f[key] = vs
		}
	}
	if len(f) > 0 {
		b, _ := json.Marshal(f) // strings only: cannot fail
		q.Set("filters", string(b))
	}
	return q
}
