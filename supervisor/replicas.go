package supervisor

import (
	"context"
	"fmt"
	"slices"

	"github.com/cove-project/cove/spec"
)

// Instance is an instance of a replicated workload whose unit systemd
// has loaded.
type Instance struct {
	Name    string // NAME@I (spec.SplitInstance)
	Running bool   // active, or on its way there
}

// Instances returns the instances of replicated workload name whose
// units systemd has loaded, by number: the running ones and those stopped
// or failed that it still holds (a target that wants an instance keeps it
// loaded). One ListUnitsByPatterns call.
func (c *Conn) Instances(ctx context.Context, name string) ([]Instance, error) {
	us, err := c.listUnits(ctx, "ListUnitsByPatterns", []string{}, []string{spec.InstancePattern(name)})
	if err != nil {
		return nil, fmt.Errorf("list the instances of %s: %w", name, err)
	}
	var out []Instance
	for _, u := range us {
		inst, _ := spec.NameOfUnit(u.Name)
		if base, _, ok := spec.SplitInstance(inst); ok && base == name && u.LoadState == "loaded" {
			up := u.ActiveState == "active" || u.ActiveState == "activating" || u.ActiveState == "reloading"
			out = append(out, Instance{Name: inst, Running: up})
		}
	}
	slices.SortFunc(out, func(a, b Instance) int { return spec.CompareNames(a.Name, b.Name) })
	return out, nil
}
