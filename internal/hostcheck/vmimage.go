package hostcheck

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/cove-project/cove/internal/vmhost"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// prepareVMImages checks what a VM reads from the host besides kernel and
// disks given by path: each base image given by path (vmhost.CheckBase, its format pinned, a
// size not below the base's), each CD-ROM image, the cloud-init files,
// the OVMF build its firmware needs and swtpm for a TPM.
func prepareVMImages(s *spec.Spec, file func(key, path string) bool) spec.Errors {
	var errs spec.Errors
	m := s.VM
	for i := range m.Disks {
		d := &m.Disks[i]
		key := fmt.Sprintf("vm.disk[%d].base", i+1)
		if _, oci := spec.OCIImage(d.Base); d.Base == "" || oci || !file(key, d.Base) {
			continue // an image's disk is found and checked at start, when it has been pulled
		}
		if d.Format == "" {
			if d.Format, _ = vmhost.DetectDiskFormat(d.Base); d.Format == "" {
				d.Format = spec.FormatRaw
			}
		}
		size, err := vmhost.CheckBase(d.Base, d.Format)
		switch {
		case err != nil:
			errs = append(errs, s.KeyError(key, err.Error()))
		case d.Size != 0 && d.Size < size:
			errs = append(errs, s.KeyError(fmt.Sprintf("vm.disk[%d].size", i+1), fmt.Sprintf("%d bytes is smaller than the base image (%d bytes); an overlay can only grow", d.Size, size)))
		}
	}
	for i, c := range m.CDROMs {
		file(fmt.Sprintf("vm.cdrom[%d].path", i+1), c.Path)
	}
	if ci := m.CloudInit; ci != nil {
		file("vm.cloud_init.user_data", ci.UserData)
		file("vm.cloud_init.network_config", ci.NetworkConfig)
	}
	if code, vars := launch.FirmwareFiles(m.Firmware); code != "" {
		for _, f := range []string{code, vars} {
			if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
				errs = append(errs, s.KeyError("vm.firmware", fmt.Sprintf("firmware = %q needs %s (install Debian's ovmf)", m.Firmware, f)))
				break
			}
		}
	}
	if m.TPM {
		if _, err := exec.LookPath(launch.SWTPMBinary); err != nil {
			errs = append(errs, s.KeyError("vm.tpm", fmt.Sprintf("tpm = true needs %s: %v (install Debian's swtpm)", launch.SWTPMBinary, err)))
		}
	}
	return errs
}
