// Package vmguest builds a tiny Linux guest for cove's VM tests: Debian's
// cloud kernel, fetched with apt-get download and unpacked with dpkg-deb
// (nothing is installed on the host), and an initramfs holding a static
// busybox, the virtio modules and an /init script (init.sh). The kernel is
// booted as the uncompressed vmlinux extracted from Debian's bzImage: QEMU
// enters it through its PVH note, which skips the in-guest decompression.
// Everything is cached in a directory shared by concurrent builds.
//
// The guest's behaviour is chosen on the kernel command line with
// cove.test=MODE. Every mode first prints COVE-GUEST-BOOTED; then:
//
//	poweroff     powers off at once.
//	wait         waits for the ACPI power button (QMP system_powerdown),
//	             prints COVE-GUEST-SHUTDOWN-HOOK and powers off.
//	echo         prints COVE-GUEST-READING, reads a line from the console,
//	             prints COVE-ECHO:LINE and powers off.
//	ignore-acpi  prints COVE-GUEST-IGNORING-ACPI and runs until killed.
//	crash        init exits 1: the kernel panics (pvpanic reports it).
//	disk         mounts /dev/vda (mke2fs first if it has no file system),
//	             increments the file "count" in it, prints
//	             COVE-DISK-COUNT=N and powers off.
//	writer       mounts /dev/vda as disk does, prints COVE-GUEST-WRITING
//	             and rewrites files on it with fsync until killed.
//	net          configures eth0 for QEMU's user-mode network (10.0.2.15),
//	             serves COVE-GUEST-HTTP on port 80 with busybox httpd,
//	             prints COVE-GUEST-NET-UP, then behaves as wait.
//	bridge       a VM on a cove network: configures its NIC from ip=
//	             (and cove.ip6=, cove.gw6=) on the command line, as an
//	             initramfs would, serves its hostname on port 8080, prints
//	             COVE-GUEST-NET-UP; with cove.fetch=URL it fetches URL
//	             (retrying up to 60 s) and prints COVE-GUEST-FETCHED=LINE;
//	             then behaves as wait.
//	cidata       mounts the cloud-init seed (the vfat disk labelled
//	             CIDATA) and prints each line of its files as
//	             COVE-SEED:FILE:LINE, then powers off.
//	firmware     prints COVE-EFI=yes|no (whether it booted through UEFI),
//	             COVE-SECURE-BOOT=N (the SecureBoot variable, or none) and
//	             COVE-TPM=tpm0 (the TPMs it sees, or none), then behaves as
//	             wait.
//	agent        (with AgentInitrd) starts Debian's qemu-ga on the guest
//	             agent's virtio-serial port, prints COVE-GUEST-AGENT-UP,
//	             runs each line read on the interactive console (hvc0) as
//	             a shell command, printing COVE-RAN:LINE, and behaves as
//	             wait.
package vmguest

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Markers printed by the guest on its console.
const (
	MarkerBooted       = "COVE-GUEST-BOOTED"
	MarkerWaiting      = "COVE-GUEST-WAITING"
	MarkerShutdownHook = "COVE-GUEST-SHUTDOWN-HOOK"
	MarkerIgnoring     = "COVE-GUEST-IGNORING-ACPI"
	MarkerReading      = "COVE-GUEST-READING"
	MarkerEcho         = "COVE-ECHO:"
	MarkerCrashing     = "COVE-GUEST-CRASHING"
	MarkerDiskCount    = "COVE-DISK-COUNT="
	MarkerWriting      = "COVE-GUEST-WRITING"
	MarkerNetUp        = "COVE-GUEST-NET-UP"
	MarkerHTTP         = "COVE-GUEST-HTTP"
	MarkerFetched      = "COVE-GUEST-FETCHED="
	MarkerSeed         = "COVE-SEED:"        // a line of the cloud-init seed: COVE-SEED:FILE:LINE
	MarkerEFI          = "COVE-EFI="         // yes or no: /sys/firmware/efi exists
	MarkerSecureBoot   = "COVE-SECURE-BOOT=" // the SecureBoot variable's value byte, or none
	MarkerTPM          = "COVE-TPM="         // the TPMs in /sys/class/tpm, or none
	MarkerAgentUp      = "COVE-GUEST-AGENT-UP"
	MarkerRan          = "COVE-RAN:" // a console line run: COVE-RAN:LINE
)

// DefaultCacheDir is where the test suites keep the guest (Build's
// cacheDir) across runs, shared by tests/ and tests/nettest: under
// /var/cache/cove-tests, the one directory of the tests' caches, which
// `scripts/test --clean` and scripts/uninstall remove.
const DefaultCacheDir = "/var/cache/cove-tests/vmguest"

// Default returns the guest in DefaultCacheDir: built, or found there,
// on the first call in a process, and the same guest (or error) on every
// later call.
var Default = sync.OnceValues(func() (Guest, error) { return Build(DefaultCacheDir) })

// Cmdline is the kernel command line for mode (see the package comment):
// serial console, few kernel messages (printing is slow under TCG), and
// panic=-1 so that a panic ends the VM at once even without pvpanic.
func Cmdline(mode string) string {
	return "console=ttyS0 quiet loglevel=4 panic=-1 cove.test=" + mode
}

// Guest is a bootable guest: kernel and initramfs, for -kernel and -initrd.
type Guest struct {
	Kernel string // uncompressed vmlinux (PVH) when it could be extracted, else the bzImage
	Initrd string // newc cpio, uncompressed (see buildInitrd)
	// AgentInitrd is Initrd with Debian's qemu-guest-agent (and the
	// host's copies of its libraries) added, for mode agent: apart, as it
	// is 2.5 times the size.
	AgentInitrd string
	BzImage     string // the kernel as shipped
	Version     string // kernel release, e.g. 6.1.0-56-cloud-amd64
}

//go:embed init.sh
var initScript []byte

// Modules loaded by the guest's init, in addition to their dependencies:
// virtio transports for both machine types, disk and NIC, the ACPI power
// button and evdev (to see it from user space), pvpanic-mmio (binds
// the ISA pvpanic device described in ACPI as QEMU0001), and vfat with
// the kernel's default code page and character set (a cloud-init seed).
// EFI and the TPM's CRB interface are built into Debian's cloud kernel.
var guestModules = []string{
	"virtio", "virtio_ring", "virtio_mmio", "virtio_pci",
	"virtio_blk", "virtio_net", "virtio_console", "button", "evdev", "pvpanic_mmio",
	"vfat", "nls_cp437", "nls_ascii", "efivarfs",
}

// VMConfig returns a launcher configuration booting g in mode, with its
// QMP and console sockets in dir: microvm, TCG, 1 vCPU, 256 MiB, no disk,
// no network. Callers adjust the rest.
func (g Guest) VMConfig(name, mode, dir string) launch.VMConfig {
	return launch.VMConfig{
		Name: name, Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: Cmdline(mode),
		CPUs: 1, MemoryMiB: 256,
		Machine: spec.MachineMicroVM, Accel: spec.AccelTCG,
		Network:       spec.VMNetworkNone,
		QMPSocket:     filepath.Join(dir, "qmp.sock"),
		ConsoleSocket: filepath.Join(dir, "console.sock"),
	}
}

// Spec is the text of a VM spec booting g with the kernel command line
// cmdline (Cmdline(mode), and more): microvm, TCG, 256 MiB, a 10 s stop
// timeout. vmExtra ends the [vm] table (more of its keys, then tables
// inside it such as [vm.network]); extra ends the spec.
func (g Guest) Spec(cmdline, vmExtra, extra string) string {
	return fmt.Sprintf(`version = 1
kind = "vm"
[vm]
kernel = %q
initrd = %q
cmdline = %q
memory = "256M"
accel = "tcg"
%s
[service]
stop_timeout = "10s"
%s`, g.Kernel, g.Initrd, cmdline, vmExtra, extra)
}

// StaleAfter is how long an initramfs no build uses stays in the cache.
const StaleAfter = 24 * time.Hour

// busyboxPaths are where Debian's busybox-static puts its binary.
var busyboxPaths = []string{"/bin/busybox", "/usr/bin/busybox"}

// Build returns the guest, fetching and building what is not yet in
// cacheDir. It needs apt-get, apt-cache and dpkg-deb (Debian's tools) and a
// static busybox on the host.
func Build(cacheDir string) (Guest, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Guest{}, err
	}
	// One builder at a time per cache (test binaries run in parallel).
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Guest{}, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return Guest{}, fmt.Errorf("lock %s: %w", cacheDir, err)
	}
	pkg, err := kernelPackage()
	if err != nil {
		// Offline: any kernel fetched before will do.
		debs, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*-cloud-amd64", "pkg.deb"))
		if len(debs) == 0 {
			return Guest{}, err
		}
		pkg = filepath.Base(filepath.Dir(debs[len(debs)-1]))
	}
	kdir := filepath.Join(cacheDir, pkg)
	root := filepath.Join(kdir, "root")
	if err := fetchPackage(pkg, kdir, root); err != nil {
		return Guest{}, err
	}
	version := strings.TrimPrefix(pkg, "linux-image-")
	g := Guest{
		BzImage: filepath.Join(root, "boot", "vmlinuz-"+version),
		Version: version,
	}
	g.Kernel = g.BzImage
	vmlinux := filepath.Join(kdir, "vmlinux")
	if _, err := os.Stat(vmlinux); err == nil {
		g.Kernel = vmlinux
	} else if b, err := extractVmlinux(g.BzImage); err == nil {
		if err := writeAtomic(vmlinux, b); err != nil {
			return Guest{}, err
		}
		g.Kernel = vmlinux
	}
	modDir := filepath.Join(root, "lib", "modules", version)
	if g.Initrd, err = buildInitrd(kdir, modDir, nil); err != nil {
		return Guest{}, err
	}
	agent, err := agentFiles(cacheDir)
	if err != nil {
		return Guest{}, err
	}
	if g.AgentInitrd, err = buildInitrd(kdir, modDir, agent); err != nil {
		return Guest{}, err
	}
	return g, nil
}

// kernelPackage resolves the versioned package behind Debian's
// linux-image-cloud-amd64 metapackage.
func kernelPackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-cloud-amd64").Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends linux-image-cloud-amd64: %w", err)
	}
	m := regexp.MustCompile(`Depends:\s*(linux-image-[0-9][^\s]*-cloud-amd64)`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends linux-image-cloud-amd64: no versioned kernel in\n%s", out)
	}
	return string(m[1]), nil
}

// fetchPackage downloads Debian package pkg into dir/pkg.deb and unpacks
// it into root (nothing is installed), unless done before.
func fetchPackage(pkg, dir, root string) error {
	done := filepath.Join(dir, ".unpacked")
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	deb := filepath.Join(dir, "pkg.deb")
	if _, err := os.Stat(deb); err != nil {
		tmp, err := os.MkdirTemp(dir, "download-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		// apt-get download as root drops to _apt, which must be able to
		// write the directory.
		os.Chmod(tmp, 0o777)
		cmd := exec.Command("apt-get", "download", "-q", pkg)
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get download %s: %v\n%s", pkg, err, out)
		}
		got, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
		if len(got) != 1 {
			return fmt.Errorf("apt-get download %s: found %d .deb files", pkg, len(got))
		}
		if err := os.Rename(got[0], deb); err != nil {
			return err
		}
	}
	os.RemoveAll(root)
	if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	return os.WriteFile(done, nil, 0o644)
}

// file is a file to add to an initramfs.
type file struct {
	name string // relative to its root
	perm os.FileMode
	data []byte
}

// agentPackage is Debian's QEMU guest agent.
const agentPackage = "qemu-guest-agent"

// agentFiles fetches Debian's qemu-guest-agent into cacheDir and returns
// qemu-ga (as bin/qemu-ga) and the host's copies of the shared libraries
// and the loader it needs (ldd; QEMU's own dependencies, so on every host
// that runs the VM tests), at their paths, for an initramfs.
func agentFiles(cacheDir string) ([]file, error) {
	dir := filepath.Join(cacheDir, agentPackage)
	root := filepath.Join(dir, "root")
	if err := fetchPackage(agentPackage, dir, root); err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "usr", "sbin", "qemu-ga")
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	files := []file{{"bin/qemu-ga", 0o755, data}}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	for _, m := range regexp.MustCompile(`(?m)(?:=> )?(/\S+) \(0x`).FindAllSubmatch(out, -1) {
		lib := string(m[1])
		b, err := os.ReadFile(lib)
		if err != nil {
			return nil, fmt.Errorf("a library of qemu-ga: %w", err)
		}
		files = append(files, file{strings.TrimPrefix(lib, "/"), 0o755, b})
	}
	return files, nil
}

// buildInitrd writes the initramfs into kdir, named after a hash of its
// contents' sources, and returns its path. extra files are added, with
// their directories.
//
// The archive is not compressed: the kernel unpacks it as well, and under
// TCG gunzip in the guest costs more than reading 2.6 MB instead of 1.3 MB
// (measured: 0.3-0.8 s of a 2-3 s boot).
func buildInitrd(kdir, modDir string, extra []file) (string, error) {
	var busybox []byte
	var err error
	for _, p := range busyboxPaths {
		if busybox, err = os.ReadFile(p); err == nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("no busybox (install busybox-static): %w", err)
	}
	if !isStatic(busybox) {
		return "", errors.New("busybox is not statically linked (install busybox-static)")
	}
	mods, err := resolveModules(modDir, guestModules)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(initScript)
	h.Write(busybox)
	for _, m := range mods {
		h.Write([]byte(m))
	}
	for _, f := range extra {
		h.Write([]byte(f.name))
		h.Write(f.data)
	}
	out := filepath.Join(kdir, "initrd-"+hex.EncodeToString(h.Sum(nil))[:16]+".cpio")
	if _, err := os.Stat(out); err == nil {
		now := time.Now()
		return out, os.Chtimes(out, now, now) // in use: not stale
	}

	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	for _, d := range []string{"bin", "dev", "etc", "lib", "lib/modules", "mnt", "proc", "sys", "tmp"} {
		c.Dir(d)
	}
	c.CharDev("dev/console", 5, 1)
	c.File("bin/busybox", 0o755, busybox)
	c.Symlink("bin/sh", "busybox")
	c.File("init", 0o755, initScript)
	var list strings.Builder
	for _, m := range mods {
		b, err := os.ReadFile(m)
		if err != nil {
			return "", err
		}
		c.File("lib/modules/"+filepath.Base(m), 0o644, b)
		fmt.Fprintln(&list, filepath.Base(m))
	}
	c.File("etc/modules", 0o644, []byte(list.String()))
	made := map[string]bool{"bin": true, "lib": true}
	for _, f := range extra {
		for _, d := range parents(f.name) {
			if !made[d] {
				c.Dir(d)
				made[d] = true
			}
		}
		c.File(f.name, f.perm, f.data)
	}
	if err := c.Close(); err != nil {
		return "", err
	}
	if err := writeAtomic(out, buf.Bytes()); err != nil {
		return "", err
	}
	// Initramfs files of earlier sources are stale once no build has used
	// them for StaleAfter: test runs of other source trees may share the
	// cache (and use theirs) meanwhile.
	old, _ := filepath.Glob(filepath.Join(kdir, "initrd-*"))
	for _, o := range old {
		if st, err := os.Stat(o); err == nil && o != out && time.Since(st.ModTime()) > StaleAfter {
			os.Remove(o)
		}
	}
	return out, nil
}

// parents are the directories above relative path p, outermost first.
func parents(p string) []string {
	var out []string
	for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// isStatic reports whether an ELF executable has no program interpreter.
func isStatic(b []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return false
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
