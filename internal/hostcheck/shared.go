package hostcheck

import (
	"fmt"
	"path/filepath"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// diskUse is one VM's use of an image file: the key that names it, the
// file (symbolic links resolved) and whether the VM may write it (a
// disk's path, not read_only; not an overlay's base).
type diskUse struct {
	spec      *spec.Spec
	key, path string
	writable  bool
}

// SharedDisks checks VM specs that run side by side (the declared ones,
// or those and a run's) for an image that one VM writes and another
// opens at all: as its disk, read-only or not, or as the base of its
// overlay. Two writers corrupt a file system, and a base written under
// other VMs' overlays corrupts every overlay. (QEMU's lock would stop the
// second VM only when both run, and only at its start; this refuses the
// spec before anything starts.) Each conflict is reported once, at the
// key of the later spec in the order given, naming the earlier one.
func SharedDisks(specs []*spec.Spec) error { return orNil(sharedDisks(specs, nil)) }

// SharedDisksWith is SharedDisks for s, a run's spec, beside others (the
// declared VMs, and the loaded ones: RunningVM): only s's conflicts are
// reported.
func SharedDisksWith(s *spec.Spec, others []*spec.Spec) error {
	return orNil(sharedDisks(append(others, s), s))
}

// RunningVM is what SharedDisks and Spec.Images read of a loaded VM that
// may have no spec (a cove run -d VM), from its launcher's configuration:
// its disks, an overlay by its base.
func RunningVM(name string, c launch.VMConfig) *spec.Spec {
	s := &spec.Spec{Name: name, File: spec.UnitName(name) + ", loaded", Kind: spec.KindVM, VM: &spec.VM{}}
	for _, d := range c.Disks {
		disk := spec.Disk{Path: d.Path, ReadOnly: d.ReadOnly}
		if d.Base != "" {
			disk = spec.Disk{Base: d.Base}
		}
		s.VM.Disks = append(s.VM.Disks, disk)
	}
	return s
}

// sharedDisks is SharedDisks' list of errors, reported only for spec
// only when it is not nil.
func sharedDisks(specs []*spec.Spec, only *spec.Spec) spec.Errors {
	first := map[string]diskUse{}
	var errs spec.Errors
	for _, s := range specs {
		for _, u := range diskUses(s) {
			prev, ok := first[u.path]
			switch {
			case !ok:
				first[u.path] = u
			case prev.spec != s && (prev.writable || u.writable) && (only == nil || only == s):
				how := "read (read-only, or as a base) by"
				if prev.writable {
					how = "a writable disk of"
				}
				errs = append(errs, s.KeyError(u.key, fmt.Sprintf("%s is also %s VM %s (%s); an image a VM writes must be that VM's alone: give each VM its own image, or each an overlay of one read-only base (base = %q)",
					u.path, how, prev.spec.Name, prev.spec.File, u.path)))
			case u.writable:
				first[u.path] = u
			}
		}
	}
	return errs
}

// diskUses lists the image files VM spec s opens.
func diskUses(s *spec.Spec) []diskUse {
	if s.Kind != spec.KindVM || s.VM == nil {
		return nil
	}
	var out []diskUse
	for i, d := range s.VM.Disks {
		k := fmt.Sprintf("vm.disk[%d]", i+1)
		switch {
		case d.Base != "":
			out = append(out, diskUse{s, k + ".base", resolved(d.Base), false})
		case d.Path != "":
			out = append(out, diskUse{s, k + ".path", resolved(d.Path), !d.ReadOnly})
		}
	}
	return out
}

// resolved is p with symbolic links resolved, or p cleaned when that
// fails (a missing file is reported elsewhere).
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}
