package units

import (
	"github.com/cove-project/cove/spec"
)

// CompilePull returns the unit that pulls a workload's images (an image
// container's image, a VM's "oci:" disk bases; spec.Spec.Images) before
// the workload starts (see Options.PullUnit): a oneshot that stays
// active, ordered after the network and name resolution are up, with no
// start timeout (a pull may take long; the workload's own start timeout
// never includes it), and part of the workload, so that stopping or
// restarting the workload stops or runs it again. ok is false for a spec
// without an image.
func CompilePull(s *spec.Spec, opt Options) (u Unit, ok bool) {
	images := s.Images()
	if len(images) == 0 {
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
	for _, im := range images {
		u.add(SectionService, "ExecStart", "", Exec([]string{opt.Launcher, "pull", "--policy", im.Pull, "--", im.Ref}))
	}
	u.add(SectionService, "TimeoutStartUSec", "TimeoutStartSec", Infinity{})
	u.add(SectionService, "Slice", "", Str(Slice))
	u.add(SectionService, "SyslogIdentifier", "", Str(s.Name+"-pull"))
	return u, true
}

// NeedsPullUnit reports whether a workload's images may need the network
// when it starts: one pulled always, or missing while it is not in the
// store (present says whether a reference is; the caller looks).
func NeedsPullUnit(s *spec.Spec, present func(ref string) bool) bool {
	for _, im := range s.Images() {
		if im.Pull == spec.PullAlways || im.Pull == spec.PullMissing && !present(im.Ref) {
			return true
		}
	}
	return false
}
