package hostcheck

import (
	"fmt"
	"os"

	"github.com/cove-project/cove/internal/vmhost"
	"github.com/cove-project/cove/spec"
)

// PrepareVM checks a VM spec against this host before anything starts and
// pins what must not change later: the kernel, initrd and disk images must
// exist (base images, CD-ROMs, firmware and swtpm too: prepareVMImages),
// each disk without a format gets the one its first bytes show
// (pinned, so a guest cannot turn its raw disk into a qcow2 image by
// writing the magic), and accel = "kvm" must be able to work here. Errors
// name the spec key and its position. Specs of other kinds pass unchanged.
func PrepareVM(s *spec.Spec) error { return orNil(prepareVM(s)) }

// prepareVM is PrepareVM, its errors as a list.
func prepareVM(s *spec.Spec) spec.Errors {
	if s.Kind != spec.KindVM || s.VM == nil {
		return nil
	}
	var errs spec.Errors
	file := func(key, path string) bool {
		if path == "" {
			return false
		}
		if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
			errs = append(errs, s.KeyError(key, fmt.Sprintf("%s is not a readable file; check the path", path)))
			return false
		}
		return true
	}
	file("vm.kernel", s.VM.Kernel)
	file("vm.initrd", s.VM.Initrd)
	for i := range s.VM.Disks {
		d := &s.VM.Disks[i]
		key := fmt.Sprintf("vm.disk[%d].path", i+1)
		if d.Base != "" {
			continue // prepareVMImages
		}
		if file(key, d.Path); d.Format != "" {
			continue
		}
		if f, err := vmhost.DetectDiskFormat(d.Path); err == nil {
			d.Format = f
		}
	}
	errs = append(errs, prepareVMImages(s, file)...)
	if s.VM.Accel == spec.AccelKVM {
		if _, _, err := vmhost.ChooseAccel(spec.AccelKVM); err != nil {
			errs = append(errs, s.KeyError("vm.accel", err.Error()+`; use accel = "tcg" or "auto"`))
		}
	}
	return errs
}
