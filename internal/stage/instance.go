package stage

import (
	"os"
	"strings"

	"github.com/cove-project/cove/internal/cgroup"
	"github.com/cove-project/cove/spec"
)

// instance returns the workload name of the unit this process runs in
// when that unit is an instance of name's template (NAME@I, see
// spec.SplitInstance), else name. A replicated workload's instances share
// one template unit, so its stages learn which instance they serve from
// their own cgroup, which systemd names after the instance's unit: no
// specifier in the unit, and no value of the spec, says it.
func instance(name string) string {
	cg, err := cgroup.UnitPath(os.Getpid())
	if err != nil {
		return name
	}
	for _, elem := range strings.Split(cg, "/") {
		unitName, ok := spec.NameOfUnit(elem)
		if base, _, inst := spec.SplitInstance(unitName); ok && inst && base == name {
			return unitName
		}
	}
	return name
}
