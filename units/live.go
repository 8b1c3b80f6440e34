package units

import "slices"

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
