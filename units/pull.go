package units

import (
	"github.com/cove-project/cove/spec"
)

// CompilePull returns the unit that pulls an image container's image
// before the workload starts (see Options.PullUnit): a oneshot that stays
// active, ordered after the network and name resolution are up, with no
// start timeout (a pull may take long; the workload's own start timeout
// never includes it), and part of the workload, so that stopping or
// restarting the workload stops or runs it again. ok is false for a spec
// without an image.
func CompilePull(s *spec.Spec, opt Options) (u Unit, ok bool) {
	if s.Container == nil || s.Container.Image == "" {
		return Unit{}, false
	}
	main := spec.UnitName(s.Name)
	u = Unit{Name: spec.PullUnitName(s.Name)}
	u.add(SectionUnit, "Description", "", Str("pull the image of "+main))
	u.add(SectionUnit, "Wants", "", Names{"network-online.target"})
	u.add(SectionUnit, "After", "", Names{"network-online.target", "nss-lookup.target"})
	u.add(SectionUnit, "PartOf", "", Names{main})
	u.add(SectionService, "Type", "", Str("oneshot"))
	u.add(SectionService, "RemainAfterExit", "", Bool(true))
	u.add(SectionService, "ExecStart", "", Exec([]string{opt.Launcher, "pull", "--policy", s.Container.Pull, "--", s.Container.Image}))
	u.add(SectionService, "TimeoutStartUSec", "TimeoutStartSec", Infinity{})
	u.add(SectionService, "Slice", "", Str(Slice))
	u.add(SectionService, "SyslogIdentifier", "", Str(s.Name+"-pull"))
	return u, true
}

// NeedsPullUnit reports whether an image container's pull policy may need
// the network when it starts: always, or missing while the image is not
// in the store (present says whether it is; the caller looked).
func NeedsPullUnit(s *spec.Spec, present bool) bool {
	if s.Container == nil || s.Container.Image == "" {
		return false
	}
	switch s.Container.Pull {
	case spec.PullAlways:
		return true
	case spec.PullMissing:
		return !present
	}
	return false
}
