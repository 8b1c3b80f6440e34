package tests

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVMSecureBootRefusesUnsigned: with firmware = "uefi-secure" OVMF
// refuses to start an EFI application that carries no signature (the
// guest kernel, an EFI stub, with its signature stripped, as the
// removable-media BOOTX64.EFI of an ESP the test builds with mtools):
// its boot manager reports Access Denied and never starts it. With
// "uefi" the firmware starts the same image from the same disk: the
// refusal is Secure Boot's.
func TestVMSecureBootRefusesUnsigned(t *testing.T) {
	g := needGuest(t)
	esp := unsignedESP(t, g.BzImage)
	for _, c := range []struct{ name, firmware, want, not string }{
		{"vmsbrefuse", "uefi-secure", "BdsDxe: failed to load Boot0001", "BdsDxe: starting Boot0001"},
		{"vmsbstart", "uefi", "BdsDxe: starting Boot0001", "Access Denied"},
	} {
		cleanupWorkload(t, c.name)
		spec := firmwareVM(t, c.name, c.firmware, fmt.Sprintf("[[vm.disk]]\npath = %q\nread_only = true\nboot = true\n", esp))
		mustCove(t, "run", "-d", spec)
		waitLog(t, c.name, c.want, 120*time.Second)
		if logs := cove(t, "logs", c.name).Stdout; strings.Contains(logs, c.not) {
			t.Errorf("%s: the console shows %q:\n%s", c.firmware, c.not, logs)
		}
		cove(t, "rm", "-f", c.name)
	}
}

// firmwareVM writes the spec of VM name, a q35 guest of 256M under TCG
// booting through firmware from the media of the [vm] keys and tables
// in media, and returns its path.
func firmwareVM(t *testing.T, name, firmware, media string) string {
	t.Helper()
	return declaredText(t, filepath.Join(workDir, "vms"), name, fmt.Sprintf("version = 1\nkind = \"vm\"\n[service]\nstop_timeout = \"2s\"\n[vm]\nmachine = \"q35\"\nmemory = \"256M\"\naccel = \"tcg\"\nfirmware = %q\n%s", firmware, media))
}

// unsignedESP writes a FAT image holding kernel, its Authenticode
// signature removed, as EFI/BOOT/BOOTX64.EFI, and returns its path.
func unsignedESP(t *testing.T, kernel string) string {
	t.Helper()
	b, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	efi := filepath.Join(workDir, "BOOTX64.EFI")
	if err := os.WriteFile(efi, stripSignature(t, b), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(workDir, "esp.img")
	os.Remove(img)
	for _, c := range [][]string{
		{"mkfs.vfat", "-C", img, "32768"},
		{"mmd", "-i", img, "::/EFI", "::/EFI/BOOT"},
		{"mcopy", "-i", img, efi, "::/EFI/BOOT/BOOTX64.EFI"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	return img
}

// stripSignature returns the PE32+ image b without its certificate table
// (the security data directory, entry 4, zeroed and the table cut off).
func stripSignature(t *testing.T, b []byte) []byte {
	t.Helper()
	pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
	opt := pe + 4 + 20
	if string(b[pe:pe+4]) != "PE\x00\x00" || binary.LittleEndian.Uint16(b[opt:]) != 0x20b {
		t.Fatal("the guest kernel is not a PE32+ EFI image")
	}
	dir := opt + 112 + 4*8 // IMAGE_DIRECTORY_ENTRY_SECURITY
	off, size := binary.LittleEndian.Uint32(b[dir:]), binary.LittleEndian.Uint32(b[dir+4:])
	if off == 0 || size == 0 || int(off)+int(size) > len(b) {
		t.Fatalf("the guest kernel has no signature to strip (security directory %d+%d)", off, size)
	}
	out := append([]byte(nil), b[:off]...)
	binary.LittleEndian.PutUint64(out[dir:], 0)
	return out
}
