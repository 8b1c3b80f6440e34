// Package declared is cove's declared workloads: the specs on disk
// (vendor defaults and /etc/cove, atomic writes, the apply lock), the
// systemd generator that renders them into units at boot and on every
// daemon-reload, and cove apply, which brings a host's workloads to the
// state their specs describe: it plans (added, changed, removed, unchanged), writes
// specs atomically, reloads systemd once and starts, restarts or stops
// exactly what changed.
package declared

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/cove-project/cove/spec"
)

// Change is what happens to one workload.
type Change struct {
	Name string
	Kind string   // Added, Changed, Removed or Unchanged
	Keys []string // for Changed: the spec keys that differ
	Spec *spec.Spec
}

// Change kinds.
const (
	Added     = "added"
	Changed   = "changed"
	Removed   = "removed"
	Unchanged = "unchanged"
)

// Plan is the list of changes, sorted by name.
type Plan []Change

// Compare plans the way from applied (what runs, by name) to desired.
// Workloads in applied but not desired are Removed.
func Compare(applied map[string]*spec.Spec, desired []*spec.Spec) Plan {
	var p Plan
	seen := map[string]bool{}
	for _, d := range desired {
		seen[d.Name] = true
		old, ok := applied[d.Name]
		switch keys := DiffKeys(old, d); {
		case !ok:
			p = append(p, Change{Name: d.Name, Kind: Added, Spec: d})
		case len(keys) > 0:
			p = append(p, Change{Name: d.Name, Kind: Changed, Keys: keys, Spec: d})
		default:
			p = append(p, Change{Name: d.Name, Kind: Unchanged, Spec: d})
		}
	}
	for name, old := range applied {
		if !seen[name] {
			p = append(p, Change{Name: name, Kind: Removed, Spec: old})
		}
	}
	sort.Slice(p, func(i, j int) bool { return p[i].Name < p[j].Name })
	return p
}

// DiffKeys lists the spec keys (e.g. "resources.memory") whose values
// differ between a and b; where the spec came from (File) does not count.
func DiffKeys(a, b *spec.Spec) []string {
	if a == nil || b == nil {
		return nil
	}
	var keys []string
	diffValues("", reflect.ValueOf(*a), reflect.ValueOf(*b), &keys)
	return slices.Compact(keys) // fields that share a key are adjacent
}

// diffValues walks two values of the same type, collecting the keys of
// leaves that differ; struct fields become snake_case key segments.
func diffValues(key string, a, b reflect.Value, keys *[]string) {
	if a.Kind() == reflect.Pointer {
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*keys = append(*keys, key)
			}
			return
		}
		a, b = a.Elem(), b.Elem()
	}
	if a.Kind() != reflect.Struct || leafTypes[a.Type()] {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*keys = append(*keys, key)
		}
		return
	}
	for i := 0; i < a.NumField(); i++ {
		f := a.Type().Field(i)
		if f.Name == "File" {
			continue
		}
		k := specKey(f.Name)
		if key != "" {
			k = key + "." + k
		}
		diffValues(k, a.Field(i), b.Field(i), keys)
	}
}

// leafTypes are structs that are one value in a spec file ("1000:1000").
var leafTypes = map[reflect.Type]bool{reflect.TypeFor[spec.User](): true}

// fieldKeys are the spec keys of fields whose snake_case name is not it.
var fieldKeys = map[string]string{
	"Mounts": "mount", "Disks": "disk", "Forwards": "forward",
	"ReadyPort": "ready", "AllowNewPrivileges": "no_new_privileges",
}

// specKey is the spec key of a Go field: its entry in fieldKeys, else its
// snake_case name (RestartDelay → restart_delay).
func specKey(field string) string {
	if k, ok := fieldKeys[field]; ok {
		return k
	}
	return snake(field)
}

// snake turns a Go field name into snake_case: RestartDelay → restart_delay.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) && i > 0 && !unicode.IsUpper(rune(s[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// Summary prints the plan, one line per workload.
func (p Plan) Summary() string {
	var b strings.Builder
	for _, c := range p {
		fmt.Fprintf(&b, "%-9s %s", c.Kind, c.Name)
		if len(c.Keys) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(c.Keys, ", "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}
