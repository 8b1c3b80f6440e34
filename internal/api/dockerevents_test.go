package api

import (
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/events"
)

// TestDockerEventShape: an event in Docker's shape, as the docker CLI and
// SDK read it, and back (what Client.Events reports).
func TestDockerEventShape(t *testing.T) {
	code := 137
	at := time.Unix(1700000000, 123456000)
	for _, tc := range []struct {
		e    events.Event
		want string
	}{
		{events.Event{Time: at, Type: events.TypeContainer, Action: events.Die, Name: "web", ExitCode: &code},
			`{"status":"die","id":"` + dockerID("web") + `","Type":"container","Action":"die","Actor":{"ID":"` + dockerID("web") +
				`","Attributes":{"exitCode":"137","name":"web"}},"scope":"local","time":1700000000,"timeNano":1700000000123456000}`},
		{events.Event{Time: at, Type: events.TypeContainer, Action: events.Health, Name: "db", Health: events.Unhealthy},
			`{"status":"health_status: unhealthy","id":"` + dockerID("db") + `","Type":"container","Action":"health_status: unhealthy","Actor":{"ID":"` + dockerID("db") +
				`","Attributes":{"name":"db"}},"scope":"local","time":1700000000,"timeNano":1700000000123456000}`},
		{events.Event{Time: at, Type: events.TypeContainer, Action: events.Create, Name: "app", Image: "alpine:3"},
			`{"status":"create","id":"` + dockerID("app") + `","from":"alpine:3","Type":"container","Action":"create","Actor":{"ID":"` + dockerID("app") +
				`","Attributes":{"image":"alpine:3","name":"app"}},"scope":"local","time":1700000000,"timeNano":1700000000123456000}`},
	} {
		d := dockerEventOf(tc.e)
		b, _ := json.Marshal(d)
		if string(b) != tc.want {
			t.Errorf("dockerEventOf(%+v) =\n%s\nwant\n%s", tc.e, b, tc.want)
		}
		if back := d.event(); !reflect.DeepEqual(back, tc.e) {
			t.Errorf("event() of %s = %+v, want %+v", b, back, tc.e)
		}
	}
}

// TestEventsQuery: the query Client.Events sends reads back as the
// options it came from; Docker's filter forms, bad times and filters.
func TestEventsQuery(t *testing.T) {
	opt := eventlog.Options{Since: time.Unix(1700000000, 5), Until: time.Unix(1700000100, 0),
		Filter: events.Filter{Containers: []string{"web"}, Actions: []string{"die", "oom"}, Types: []string{"container"}}}
	got, _, err := eventsQuery(eventsQueryOf(opt))
	if err != nil || !got.Since.Equal(opt.Since) || !got.Until.Equal(opt.Until) || got.Filter.ID == nil ||
		!reflect.DeepEqual(got.Filter.Containers, opt.Filter.Containers) || !reflect.DeepEqual(got.Filter.Actions, opt.Filter.Actions) ||
		!reflect.DeepEqual(got.Filter.Types, opt.Filter.Types) {
		t.Errorf("eventsQuery(eventsQueryOf(%+v)) = %+v, %v", opt, got, err)
	}
	got, _, err = eventsQuery(url.Values{"filters": {`{"container":{"web":true},"event":{"start":true}}`}})
	if err != nil || !got.Filter.Match(events.Event{Type: events.TypeContainer, Action: events.Start, Name: "web"}) ||
		got.Filter.Match(events.Event{Type: events.TypeContainer, Action: events.Stop, Name: "web"}) {
		t.Errorf("eventsQuery with a filter set: %+v, %v", got, err)
	}
	for q, code := range map[string]string{
		"since=yesterday":                 CodeBadRequest,
		`filters={"event":["explode"]}`:   CodeBadRequest,
		`filters={"image":["a"]}`:         CodeNotImplemented,
		`filters={"container":"notlist"}`: CodeBadRequest,
	} {
		v, _ := url.ParseQuery(q)
		if _, _, err := eventsQuery(v); err == nil || err.Code != code {
			t.Errorf("eventsQuery(%s) = %v, want code %s", q, err, code)
		}
	}
}
