package supervisor

import (
	"context"
	"fmt"
	"slices"

	"github.com/cove-project/cove/spec"
)

// Instances returns the instances (NAME@I, spec.SplitInstance) of
// replicated workload name whose units systemd has loaded, by number: the
// running ones and those stopped or failed that it still holds (a target
// that wants an instance keeps it loaded). With running, only those
// active or on their way there.
func (c *Conn) Instances(ctx context.Context, name string, running bool) ([]string, error) {
	us, err := c.listUnits(ctx, "ListUnitsByPatterns", []string{}, []string{spec.InstancePattern(name)})
	if err != nil {
		return nil, fmt.Errorf("list the instances of %s: %w", name, err)
	}
	var names []string
	for _, u := range us {
		inst, _ := spec.NameOfUnit(u.Name)
		up := u.ActiveState == "active" || u.ActiveState == "activating" || u.ActiveState == "reloading"
		if base, _, ok := spec.SplitInstance(inst); ok && base == name && u.LoadState == "loaded" && (up || !running) {
			names = append(names, inst)
		}
	}
	slices.SortFunc(names, spec.CompareNames)
	return names, nil
}
