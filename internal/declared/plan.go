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
	"sort"
	"strings"

	"github.com/cove-project/cove/spec"
)

// Change is what happens to one workload.
type Change struct {
	Name string
	Kind string   // Added, Changed, Removed or Unchanged
	Keys []string // for Changed: the spec keys that differ
	Spec *spec.Spec
	// Adopted, for Added: its unit (or one of its instances) ran from the
	// unit file the generator made of a spec no apply recorded (see
	// adoptedNames); the apply restarts it on the applied spec, with what
	// it keeps.
	Adopted bool
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
// differ between a and b, in the order of spec.Keys; where the spec came
// from (File) does not count.
func DiffKeys(a, b *spec.Spec) []string {
	if a == nil || b == nil {
		return nil
	}
	var keys []string
	for _, k := range spec.Keys() {
		if k.Differs(a, b) {
			keys = append(keys, k.Path)
		}
	}
	return keys
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
