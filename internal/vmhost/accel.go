package vmhost

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/spec"
)

// Where ChooseAccel looks; variables for tests.
var (
	kvmDevice   = "/dev/kvm"
	cpuinfoPath = "/proc/cpuinfo"
)

// ChooseAccel resolves a spec's accel ("auto", "kvm" or "tcg") to "kvm"
// or "tcg". reason says why auto chose what it chose ("" for an explicit
// choice that works).
//
// KVM is usable only when /dev/kvm opens read-write AND the CPU advertises
// hardware virtualisation (vmx or svm in /proc/cpuinfo). /dev/kvm alone is
// not enough: a paravirtual nested hypervisor (PVM) provides a /dev/kvm
// that answers KVM_GET_API_VERSION but cannot run a stock kernel (QEMU
// aborts with "failed to set MSR 0x10a" or hangs). An explicit "kvm" that
// cannot work is an error saying why, never a silent fallback.
func ChooseAccel(requested string) (accel, reason string, err error) {
	switch requested {
	case spec.AccelTCG:
		return spec.AccelTCG, "", nil
	case "auto", "", spec.AccelKVM:
	default:
		return "", "", fmt.Errorf("accel %q is not auto, kvm or tcg", requested)
	}
	why := kvmUnusable()
	switch {
	case why == "" && requested == spec.AccelKVM:
		return spec.AccelKVM, "", nil
	case why == "":
		return spec.AccelKVM, "/dev/kvm opens and the CPU advertises vmx/svm: using KVM", nil
	case requested == spec.AccelKVM:
		return "", "", fmt.Errorf("accel kvm: %s", why)
	default:
		return spec.AccelTCG, why + ": using TCG", nil
	}
}

// kvmUnusable returns why KVM cannot be used here, or "".
func kvmUnusable() string {
	fd, err := unix.Open(kvmDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Sprintf("%s does not open read-write (%v)", kvmDevice, err)
	}
	unix.Close(fd)
	flags, err := cpuFlags()
	if err != nil {
		return fmt.Sprintf("%s opens but the CPU flags are unreadable (%v)", kvmDevice, err)
	}
	if !flags["vmx"] && !flags["svm"] {
		return fmt.Sprintf("%s opens but the CPU advertises no vmx/svm (nested PVM?)", kvmDevice)
	}
	return ""
}

// cpuFlags returns the flags of the first processor in /proc/cpuinfo.
func cpuFlags() (map[string]bool, error) {
	f, err := os.Open(cpuinfoPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "flags" {
			flags := map[string]bool{}
			for _, fl := range strings.Fields(v) {
				flags[fl] = true
			}
			return flags, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("no flags line")
}

// HostTSCkHz returns the host's TSC frequency in kHz as the host kernel
// reports it ("cpu MHz" of the first processor in /proc/cpuinfo: the TSC
// frequency on CPUs with a constant TSC and in VMs; an approximation where
// frequency scaling changes it), or 0 if unknown. See TSCHint.
func HostTSCkHz() uint64 {
	f, err := os.Open(cpuinfoPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		var mhz float64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%g", &mhz); err != nil || mhz <= 0 {
			return 0
		}
		return uint64(mhz*1000 + 0.5)
	}
	return 0
}
