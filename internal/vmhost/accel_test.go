package vmhost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChooseAccel checks the accelerator rule against fake /dev/kvm and
// /proc/cpuinfo files.
func TestChooseAccel(t *testing.T) {
	dir := t.TempDir()
	kvm := filepath.Join(dir, "kvm")
	os.WriteFile(kvm, nil, 0o600)
	vmx := filepath.Join(dir, "cpuinfo-vmx")
	os.WriteFile(vmx, []byte("processor\t: 0\nflags\t\t: fpu vme vmx sse\ncpu MHz\t\t: 2596.144\n\nprocessor\t: 1\n"), 0o644)
	novmx := filepath.Join(dir, "cpuinfo-novmx")
	os.WriteFile(novmx, []byte("processor\t: 0\nflags\t\t: fpu vme hypervisor\n"), 0o644)
	defer func(k, c string) { kvmDevice, cpuinfoPath = k, c }(kvmDevice, cpuinfoPath)

	for _, tc := range []struct {
		kvm, cpuinfo, requested string
		want, reason, err       string // substrings; err "" means none
	}{
		{kvm, vmx, "auto", "kvm", "using KVM", ""},
		{kvm, vmx, "kvm", "kvm", "", ""},
		{kvm, vmx, "tcg", "tcg", "", ""},
		{kvm, novmx, "auto", "tcg", "opens but the CPU advertises no vmx/svm (nested PVM?): using TCG", ""},
		{kvm, novmx, "kvm", "", "", "no vmx/svm"},
		{filepath.Join(dir, "nokvm"), vmx, "auto", "tcg", "does not open read-write", ""},
		{filepath.Join(dir, "nokvm"), vmx, "kvm", "", "", "does not open read-write"},
		{kvm, vmx, "hvf", "", "", "not auto, kvm or tcg"},
	} {
		kvmDevice, cpuinfoPath = tc.kvm, tc.cpuinfo
		accel, reason, err := ChooseAccel(tc.requested)
		name := filepath.Base(tc.kvm) + "/" + filepath.Base(tc.cpuinfo) + "/" + tc.requested
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v, want %q", name, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case accel != tc.want:
			t.Errorf("%s: accel %q, want %q", name, accel, tc.want)
		case tc.reason != "" && !strings.Contains(reason, tc.reason):
			t.Errorf("%s: reason %q, want %q", name, reason, tc.reason)
		}
	}
	cpuinfoPath = vmx
	if got := HostTSCkHz(); got != 2596144 {
		t.Errorf("HostTSCkHz = %d", got)
	}
	cpuinfoPath = novmx
	if got := HostTSCkHz(); got != 0 {
		t.Errorf("HostTSCkHz without cpu MHz = %d", got)
	}
}

// TestChooseAccelHere logs what this machine would use.
func TestChooseAccelHere(t *testing.T) {
	accel, reason, err := ChooseAccel("auto")
	t.Logf("auto: %s (%s) %v; host TSC %d kHz", accel, reason, err, HostTSCkHz())
	if err != nil {
		t.Error(err)
	}
}
