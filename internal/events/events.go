// Package events turns journal records into workload events: what
// systemd's PID 1 logs about a workload's unit (started, stopped, main
// process exited, deactivated, failed, restarted, out of memory), the
// kernel's OOM-kill summaries and cove's own records (created, destroyed,
// health changed). The journal keeps them whether or not a cove process
// ran, so events can be listed after the fact. The package is pure: it
// reads records and says which to ask the journal for; internal/eventlog
// reads and writes the journal.
package events

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Actions of events, Docker's names.
const (
	Create  = "create"
	Start   = "start"
	Stop    = "stop"
	Die     = "die"
	OOM     = "oom"
	Restart = "restart"
	Health  = "health_status"
	Destroy = "destroy"
	Rename  = "rename"
)

// Actions are every action an event may have.
var Actions = []string{Create, Start, Stop, Die, OOM, Restart, Health, Destroy, Rename}

// TypeContainer is the type of every event: Docker's name for what cove
// calls a workload (a container or a VM).
const TypeContainer = "container"

// Health statuses of a health_status event.
const (
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
)

// Event is something that happened to a workload.
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"` // TypeContainer
	Action string    `json:"action"`
	Name   string    `json:"name"`
	// ExitCode is a die event's exit status, Docker's: the status the
	// main process exited with, or 128+N when signal N killed it.
	ExitCode *int   `json:"exit_code,omitempty"`
	Health   string `json:"health,omitempty"`   // health_status: Healthy or Unhealthy
	Image    string `json:"image,omitempty"`    // when the record says (create)
	OldName  string `json:"old_name,omitempty"` // rename: the name it had
}

// String is e as one line of cove events: time (RFC 3339, UTC, nine
// digits), type, action, name and attributes, as docker events prints
// them ("2024-05-01T10:00:00.123456000Z container die web (exitCode=137)").
func (e Event) String() string {
	var attrs []string
	if e.ExitCode != nil {
		attrs = append(attrs, fmt.Sprintf("exitCode=%d", *e.ExitCode))
	}
	if e.Image != "" {
		attrs = append(attrs, "image="+e.Image)
	}
	if e.OldName != "" {
		attrs = append(attrs, "oldName="+e.OldName)
	}
	action := e.Action
	if e.Health != "" {
		action += ": " + e.Health
	}
	line := e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " " + e.Type + " " + action + " " + e.Name
	if len(attrs) > 0 {
		line += " (" + strings.Join(attrs, ", ") + ")"
	}
	return line
}

// Filter selects events, as docker events --filter does: the values of
// one key are alternatives, every key given must match. A key without
// values matches every event.
type Filter struct {
	Containers []string // workload names (or, with ID, prefixes of IDs)
	Actions    []string // Actions
	Types      []string // TypeContainer
	// ID, when set, gives the ID a client may name a workload by (the
	// Docker API's); a Containers value then also matches by prefix.
	ID func(name string) string
}

// filterKeys are the keys NewFilter takes.
var filterKeys = []string{"container", "event", "type"}

// NewFilter makes a Filter from docker's filter keys: container, event
// (an action) and type (container). Other keys, unknown actions and
// types are errors.
func NewFilter(kv map[string][]string) (Filter, error) {
	var f Filter
	for k, vs := range kv {
		switch k {
		case "container":
			f.Containers = append(f.Containers, vs...)
		case "event":
			for _, v := range vs {
				if !slices.Contains(Actions, v) {
					return Filter{}, fmt.Errorf("filter event=%.40q: want one of %s", v, strings.Join(Actions, ", "))
				}
			}
			f.Actions = append(f.Actions, vs...)
		case "type":
			for _, v := range vs {
				if v != TypeContainer {
					return Filter{}, fmt.Errorf("filter type=%.40q: cove's events are all of type %s", v, TypeContainer)
				}
			}
			f.Types = append(f.Types, vs...)
		default:
			return Filter{}, fmt.Errorf("filter %.40q: want one of %s", k, strings.Join(filterKeys, ", "))
		}
	}
	return f, nil
}

// ParseFilter makes a Filter from KEY=VALUE arguments (docker events
// --filter), as NewFilter.
func ParseFilter(args []string) (Filter, error) {
	kv := map[string][]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || v == "" {
			return Filter{}, fmt.Errorf("filter %.40q: want KEY=VALUE (%s)", a, strings.Join(filterKeys, ", "))
		}
		kv[k] = append(kv[k], v)
	}
	return NewFilter(kv)
}

// Match reports whether e passes f.
func (f Filter) Match(e Event) bool {
	return anyOf(f.Actions, func(v string) bool { return v == e.Action }) &&
		anyOf(f.Types, func(v string) bool { return v == e.Type }) &&
		anyOf(f.Containers, func(v string) bool {
			return v == e.Name || f.ID != nil && v != "" && strings.HasPrefix(f.ID(e.Name), v)
		})
}

// anyOf reports whether ok holds for one of vs, or vs is empty.
func anyOf(vs []string, ok func(string) bool) bool {
	return len(vs) == 0 || slices.ContainsFunc(vs, ok)
}
