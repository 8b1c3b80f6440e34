package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
)

// TestVMInstallerMedia: installer media on CD-ROMs and the boot order.
// Two ISOs the test builds with xorriso (a driver disk of files, and an
// installer whose El Torito EFI image is an ESP holding the guest kernel
// as BOOTX64.EFI) are attached beside a system disk that is bootable too
// (a copy of the same ESP). With boot = ["cdrom", "disk"] OVMF starts the
// installer's DVD-ROM; with ["disk", "cdrom"] the virtio disk.
func TestVMInstallerMedia(t *testing.T) {
	g := needGuest(t)
	esp := unsignedESP(t, g.BzImage) // unsigned: firmware "uefi" (no Secure Boot) starts it anyway
	installer := buildISO(t, "installer.iso", "INSTALLER", "-e", "esp.img", "-no-emul-boot", "-graft-points", "esp.img="+esp)
	drivers := buildISO(t, "drivers.iso", "DRIVERS", filepath.Join(workDir, "BOOTX64.EFI"))
	starting := regexp.MustCompile(`BdsDxe: starting Boot[0-9A-F]{4} "([^"]*)" from (\S*)`)
	for _, c := range []struct {
		name, boot string
		cdrom      bool // the DVD-ROM (on the AHCI controller's SATA ports) first, or the virtio disk
	}{
		{"vmcdfirst", `["cdrom", "disk"]`, true},
		{"vmdiskfirst", `["disk", "cdrom"]`, false},
	} {
		cleanupWorkload(t, c.name)
		disk := filepath.Join(workDir, c.name+".img")
		copyFile(t, esp, disk)
		spec := firmwareVM(t, c.name, "uefi", fmt.Sprintf("boot = %s\n[[vm.disk]]\npath = %q\n[[vm.cdrom]]\npath = %q\n[[vm.cdrom]]\npath = %q\n", c.boot, disk, installer, drivers))
		mustCove(t, "run", "-d", spec)
		var logs string
		for deadline := time.Now().Add(120 * time.Second); !strings.Contains(logs, "BdsDxe: starting Boot"); time.Sleep(time.Second) {
			if logs = cove(t, "logs", c.name).Stdout; time.Now().After(deadline) {
				t.Fatalf("boot = %s: the firmware started nothing within 2 minutes:\n%s", c.boot, harness.Tail(logs, 30))
			}
		}
		first := starting.FindStringSubmatch(logs)
		if first == nil || strings.Contains(first[1], "DVD-ROM") != c.cdrom || strings.Contains(first[2], "Sata(") != c.cdrom {
			t.Errorf("boot = %s: the firmware started %q first, want the DVD-ROM: %v:\n%s", c.boot, first, c.cdrom, logs)
		}
		cove(t, "rm", "-f", c.name)
	}
}

// buildISO writes an ISO 9660 image called name with volume label label
// of xorriso's mkisofs arguments args (files, El Torito options) and
// returns its path.
func buildISO(t *testing.T, name, label string, args ...string) string {
	t.Helper()
	iso := filepath.Join(workDir, name)
	cmd := exec.Command("xorriso", append([]string{"-as", "mkisofs", "-quiet", "-V", label, "-o", iso}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso %s: %v\n%s", name, err, out)
	}
	return iso
}

// copyFile copies the file src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
