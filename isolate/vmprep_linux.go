package isolate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/spec"
)

// PrepareVM checks a VM spec against this host before anything starts and
// pins what must not change later: the kernel, initrd and disk images must
// exist, each disk without a format gets the one its first bytes show
// (pinned, so a guest cannot turn its raw disk into a qcow2 image by
// writing the magic), and accel = "kvm" must be able to work here. Errors
// name the spec key and its position. Specs of other kinds pass unchanged.
func PrepareVM(s *spec.Spec) error {
	if s.Kind != spec.KindVM || s.VM == nil {
		return nil
	}
	var errs spec.Errors
	file := func(key, path string) {
		if path == "" {
			return
		}
		if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
			errs = append(errs, s.KeyError(key, fmt.Sprintf("%s is not a readable file; check the path", path)))
		}
	}
	file("vm.kernel", s.VM.Kernel)
	file("vm.initrd", s.VM.Initrd)
	for i := range s.VM.Disks {
		d := &s.VM.Disks[i]
		key := fmt.Sprintf("vm.disk[%d].path", i+1)
		if file(key, d.Path); d.Format != "" {
			continue
		}
		if f, err := DetectDiskFormat(d.Path); err == nil {
			d.Format = f
		}
	}
	if s.VM.Accel == spec.AccelKVM {
		if _, _, err := ChooseAccel(AccelKVM); err != nil {
			errs = append(errs, s.KeyError("vm.accel", err.Error()+`; use accel = "tcg" or "auto"`))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// AccelFile is where the launcher records which accelerator a VM got and
// why, for cove status.
func AccelFile(name string) string { return filepath.Join("/run/cove/vm", name, "accel") }

// ReadAccel returns what AccelFile says, or "".
func ReadAccel(name string) string {
	b, _ := os.ReadFile(AccelFile(name))
	return strings.TrimSpace(string(b))
}

// resolveAccel turns "auto" into kvm or tcg for this host, records the
// choice and its reason in AccelFile and the journal, and returns c.
func resolveAccel(c VMConfig) (VMConfig, error) {
	accel, reason, err := ChooseAccel(c.Accel)
	if err != nil {
		return c, err
	}
	c.Accel = accel
	note := accel
	if reason != "" {
		note += ": " + reason
	}
	fmt.Fprintf(os.Stderr, "cove: vm %s: accelerator %s\n", c.Name, note)
	if err := os.MkdirAll(filepath.Dir(AccelFile(c.Name)), 0o700); err == nil {
		os.WriteFile(AccelFile(c.Name), []byte(note+"\n"), 0o644)
	}
	return c, nil
}
