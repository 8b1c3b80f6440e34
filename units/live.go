package units

import (
	"math"
	"slices"

	"github.com/cove-project/cove/spec"
)

// liveProps are the properties systemd applies to a loaded unit, and to
// its running processes' cgroup, at once when they are set on it
// (SetUnitProperties, as systemctl set-property does): no reload, no
// restart.
var liveProps = map[string]bool{
	"Description":        true,
	"MemoryMax":          true,
	"CPUQuotaPerSecUSec": true,
	"TasksMax":           true,
}

// limit is one resource limit of a unit: its property (D-Bus name,
// unit-file directive when that differs) and its value, nil when unset.
type limit struct {
	dbus, file string
	value      Value
}

// tasksMax is the property of the PIDs limit, which without a value is
// systemd's DefaultTasksMax, not infinity as the others.
const tasksMax = "TasksMax"

// limitsOf are the resource limits r sets (memory, CPUs, PIDs), all of
// them liveProps.
func limitsOf(r spec.Resources) []limit {
	return []limit{
		{dbus: "MemoryMax", value: ifSet(r.Memory > 0, Value(Uint(r.Memory)))},
		{dbus: "CPUQuotaPerSecUSec", file: "CPUQuota", value: ifSet(r.CPUs > 0, Value(CPUQuota(math.Round(r.CPUs*100))))},
		{dbus: tasksMax, value: ifSet(r.Pids > 0, Value(Uint(r.Pids)))},
	}
}

// ifSet is v when set, else nil.
func ifSet(set bool, v Value) Value {
	if !set {
		return nil
	}
	return v
}

// LimitProperties set the resource limits r on a loaded unit at once
// (SetUnitProperties, as systemctl set-property does): each limit r
// sets, and for each it leaves unset what a unit compiled without it has
// (limitsOf; unsetTasks: systemd's DefaultTasksMax), which lifts a limit
// set before.
func LimitProperties(r spec.Resources, unsetTasks uint64) []Property {
	var props []Property
	for _, l := range limitsOf(r) {
		var v any
		switch {
		case l.value != nil:
			v = l.value.dbus()
		case l.dbus == tasksMax:
			v = unsetTasks
		default:
			v = uint64(math.MaxUint64)
		}
		props = append(props, Property{Name: l.dbus, Value: v})
	}
	return props
}

// LiveChange compares two compilations of one unit, prev (loaded now)
// and next, and returns next's values of the properties that differ when
// those are all properties systemd applies live (liveProps); ok is false
// when anything else differs: a property added, removed, moved or not
// live, the name, the targets that want it, its instances or the number
// of its proxies (which are units of their own, compared as such). It
// does not compare the units' LaunchArgs, which are no part of them:
// whoever writes the launcher's file compares those.
func LiveChange(prev, next Unit) (changed []Property, ok bool) {
	if prev.Name != next.Name || !slices.Equal(prev.WantedBy, next.WantedBy) || prev.Instances != next.Instances ||
		len(prev.Proxies) != len(next.Proxies) || len(prev.Props) != len(next.Props) {
		return nil, false
	}
	for i, p := range prev.Props {
		n := next.Props[i]
		if p.Section != n.Section || p.DBus != n.DBus || p.File != n.File {
			return nil, false
		}
		pt, perr := p.Value.text()
		nt, nerr := n.Value.text()
		switch {
		case perr != nil || nerr != nil:
			return nil, false
		case pt == nt:
		case !liveProps[p.DBus]:
			return nil, false
		default:
			changed = append(changed, Property{Name: n.DBus, Value: n.Value.dbus()})
		}
	}
	return changed, true
}
