package declared

import (
	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/units"
)

// Units compiles a declared spec into its units, the workload's first:
// then its pull unit when its image may need the network at start (see
// units.NeedsPullUnit; an image already in the store needs none), then its
// health timer and probe, then its ports' [::1] proxies (socket and
// service each). VM disk formats are pinned first. A container's launcher
// reads its arguments from a file (units.Options.LaunchFile). The
// generator and cove render use it, so the two give the same units.
func Units(s *spec.Spec, launcher string) ([]units.Unit, error) {
	if err := hostcheck.PrepareVM(s); err != nil {
		return nil, err
	}
	opt := units.Options{Launcher: launcher, PullUnit: units.NeedsPullUnit(s, hostcheck.ImagesForUnits(s)), LaunchFile: true}
	u, err := units.Compile(s, opt)
	if err != nil {
		return nil, err
	}
	all := []units.Unit{u}
	if pull, ok := units.CompilePull(s, opt); ok && opt.PullUnit {
		all = append(all, pull)
	}
	if timer, svc, ok := units.CompileHealth(s, opt); ok {
		all = append(all, timer, svc)
	}
	for _, p := range u.Proxies {
		all = append(all, p.Socket, p.Service)
	}
	return all, nil
}
