package isolate

// This file is pure: the QEMU command line the VM launcher builds from its
// launch.VMConfig.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// TCGBufferMiB caps TCG's translated-code buffer (QEMU's tb-size), so that
// QEMU under TCG fits the memory margin a VM's unit gets on top of the
// guest's memory. A guest whose hot code does not fit is slower (QEMU
// flushes and retranslates), not killed.
const TCGBufferMiB = 256

// TSCHint returns c with "tsc_early_khz=KHZ" appended to its kernel command
// line when c is a microvm under TCG booting a kernel, khz is known (> 0)
// and the command line does not set it already. Otherwise c is unchanged.
//
// Why: a Linux guest calibrates its TSC against the PIT in a tight timing
// window, and falls back to the HPET or the ACPI PM timer when that fails.
// Under TCG on a busy host the window is often missed, and microvm has
// neither fallback: the kernel then finds no TSC frequency, its timer
// never fires and boot hangs silently after "tsc: Marking TSC unstable due
// to could not calculate TSC khz" (measured here: from 1 boot in 8 up to 8
// in 11 under load; never with the hint, never on q35). Under TCG the guest
// TSC counts at the host's TSC rate, so the host's frequency is the right
// value (see vmhost.HostTSCkHz).
func TSCHint(c launch.VMConfig, khz uint64) launch.VMConfig {
	if c.Machine != spec.MachineMicroVM || c.Accel != spec.AccelTCG || c.Kernel == "" || khz == 0 {
		return c
	}
	for _, w := range strings.Fields(c.Cmdline) {
		if strings.HasPrefix(w, "tsc_early_khz=") {
			return c
		}
	}
	c.Cmdline = strings.TrimSpace(c.Cmdline + " tsc_early_khz=" + strconv.FormatUint(khz, 10))
	return c
}

// channelArgs are the host's channels to a VM (see QEMUArgv): the serial
// console to stdio (the journal), the interactive console and the guest
// agent's port on a virtio-serial controller (serial), and QMP.
func channelArgs(c launch.VMConfig, serial string) []string {
	return []string{"-chardev", "stdio,id=log,signal=off", "-serial", "chardev:log",
		"-chardev", "socket,id=console,path=" + qemuEscape(c.ConsoleSocket) + ",server=on,wait=off",
		"-device", serial, "-device", "virtconsole,chardev=console",
		"-chardev", "socket,id=agent,path=" + qemuEscape(c.AgentSocket()) + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=" + GuestAgentPort,
		"-chardev", "socket,id=qmp,path=" + qemuEscape(c.QMPSocket) + ",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control"}
}

// GuestAgentPort is the name of the virtio-serial port of a VM's guest
// agent channel, the one QEMU's guest agent opens by default.
const GuestAgentPort = "org.qemu.guest_agent.0"

// QEMUArgv returns the command line of qemu-system-x86_64 (argv[0]
// included) for c. The choices, all checked against QEMU 7.2:
//
//   - -nodefaults -no-user-config -nographic: no default devices (NIC,
//     VGA, serial, parallel, CD-ROM, monitor), no /etc/qemu config, no
//     window; every device is listed here.
//   - -machine microvm,acpi=on,pcie=off: microvm with ACPI, so that the
//     guest finds its virtio-mmio devices in ACPI tables (no
//     virtio_mmio.device= on the command line) and QMP system_powerdown
//     reaches it as an ACPI power button (through the GED device); no PCIe
//     host bridge. Or -machine q35 (SeaBIOS, PCI), which can also boot a
//     disk.
//   - -accel kvm -cpu host, or -accel tcg,tb-size=TCGBufferMiB -cpu max
//     (all features TCG can emulate). QEMU's default translation buffer
//     is 1 GiB, more than the unit's memory margin (units.QEMUOverhead):
//     a guest running much code would get QEMU killed by the cgroup.
//   - Direct kernel boot: -kernel/-initrd/-append. An uncompressed vmlinux
//     with the PVH note boots much faster under TCG than a bzImage.
//   - Two consoles. The guest's serial port ttyS0 is QEMU's stdio, so its
//     output (boot messages, the guest's /dev/console with console=ttyS0)
//     goes where the unit's stdout goes: the journal. A virtio console
//     (the guest's hvc0, module virtio_console) is a unix socket server
//     for "cove console" (server=on,wait=off: QEMU does not wait for a
//     client), where the guest runs a getty or shell. QEMU 7.2 has no
//     chardev that fans one port out to both, its logfile= cannot open the
//     journal's socket by path, and microvm has a single serial port.
//   - A channel for a QEMU guest agent: a virtio-serial port named
//     GuestAgentPort (where qemu-ga and the Windows guest agent look) on
//     the console's controller, its host end a third unix socket server
//     (AgentSocket): health.command of a VM runs there (package qga). A
//     guest without an agent leaves it unread.
//   - QMP on a second unix socket server, written as -chardev + -mon
//     (what -qmp unix:... expands to) so that the path can be escaped.
//   - Disks: -drive if=none with an explicit format (QEMU never probes,
//     see vmhost.DetectDiskFormat) and file.locking=on, so a second QEMU cannot
//     open a disk that one has open for writing ("Failed to get "write"
//     lock"), and read-only disks get a shared lock. Each is a virtio-blk
//     device (virtio-blk-device on microvm's virtio-mmio, virtio-blk-pci
//     on q35), vda, vdb… in order (checked on both machines). The boot
//     disk gets bootindex=0 (see bootOrder).
//   - Disks of a base image: the VM's own qcow2 overlay (created by the
//     launcher, see prepareDisks), opened like any qcow2 disk; QEMU opens
//     its backing chain read-only.
//   - CD-ROMs (q35): ide-cd on the AHCI controller's ports ide.0…, raw,
//     read-only. A boot order (c.Boot) numbers CD-ROMs and disks with
//     bootindex in its order.
//   - Firmware: SeaBIOS (QEMU's default, "bios"), or OVMF as two pflash
//     drives: the code read-only, the VM's own NVRAM copy writable; with
//     Secure Boot the secboot build, SMM (smm=on) and a secure flash that
//     only SMM may write (what QEMU's docs require for it).
//   - cloud-init: the seed image (vfat, label cidata) the launcher built,
//     a read-only virtio-blk disk after the VM's disks.
//   - TPM 2.0 (q35): QEMU's TPM emulator backend on swtpm's control
//     socket, a CRB interface (tpm-crb, what TPM 2.0 guests and Windows 11
//     expect).
//   - os = windows (q35): the devices Windows drives with its own
//     drivers: disks (and the seed) as ide-hd on the AHCI controller after
//     the CD-ROMs, an e1000e NIC; its Hyper-V enlightenments (hyperV);
//     the RTC in local time, as Windows keeps it. Everything else (the
//     virtio console, pvpanic) stays: Windows ignores what it has no
//     driver for.
//   - A display (q35): the standard VGA card (every guest, Windows
//     included, drives it without extra drivers), a USB tablet on an XHCI
//     controller (absolute pointer: the guest's cursor follows the
//     viewer's), and VNC on a unix socket in the VM's run directory
//     (reached by cove vnc; root only, no password over the network).
//     -nographic stays: it only means no window on the host.
//   - Network: QEMU's user-mode stack (slirp, no privileges, no host
//     interfaces) with hostfwd= per forward; or, on a bridge, the tap the
//     launcher made (plan.HostIfName, attached by name: ifname=, with
//     script=no and downscript=no, so QEMU runs no helper) with the
//     guest's MAC (plan.WorkloadMAC: the one the network's anti-spoofing
//     rules let through). Either on virtio-net.
//   - -device pvpanic with -action panic=exit-failure: a guest kernel panic
//     ends QEMU with status 1 (a failed unit) instead of rebooting or
//     hanging. The guest needs the pvpanic driver (pvpanic-mmio, which
//     binds the ACPI device QEMU0001).
//   - -no-reboot: a guest reboot ends QEMU like a poweroff, status 0; the
//     unit's Restart= policy decides what happens next.
//   - -sandbox on with obsolete, elevateprivileges, spawn and
//     resourcecontrol denied: QEMU's seccomp filter.
func QEMUArgv(c launch.VMConfig) ([]string, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	a := []string{"qemu-system-x86_64",
		"-name", "guest=" + qemuEscape(c.Name),
		"-nodefaults", "-no-user-config", "-nographic",
	}
	dev := func(microvm, pci string) string {
		if c.Machine == spec.MachineMicroVM {
			return microvm
		}
		return pci
	}
	machine := dev("microvm,acpi=on,pcie=off", "q35")
	if c.Firmware == spec.FirmwareUEFISecure {
		machine += ",smm=on"
	}
	a = append(a, "-machine", machine)
	accel, cpu := spec.AccelKVM, "host"
	if c.Accel == spec.AccelTCG {
		accel, cpu = spec.AccelTCG+",tb-size="+strconv.Itoa(TCGBufferMiB), "max"
	}
	if c.OS == spec.OSWindows {
		cpu += hyperV(c.Accel)
	}
	a = append(a, "-accel", accel, "-cpu", cpu)
	a = append(a, "-smp", strconv.Itoa(c.CPUs), "-m", strconv.FormatUint(c.MemoryMiB, 10))
	a = append(a, firmwareArgs(c)...)
	if c.Kernel != "" {
		a = append(a, "-kernel", c.Kernel)
		if c.Initrd != "" {
			a = append(a, "-initrd", c.Initrd)
		}
		if c.Cmdline != "" {
			a = append(a, "-append", c.Cmdline)
		}
	}
	a = append(a, channelArgs(c, dev("virtio-serial-device", "virtio-serial-pci"))...)
	disks, cdroms := bootOrder(c)
	blk := dev("virtio-blk-device", "virtio-blk-pci")
	for i, d := range c.Disks {
		drive := fmt.Sprintf("if=none,id=disk%d,file=%s,format=%s,file.locking=on", i, qemuEscape(d.Path), d.Format)
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		a = append(a, "-drive", drive, "-device", driveDevice(c, fmt.Sprintf("disk%d", i), blk, disks[i]))
	}
	for i, p := range c.CDROMs {
		a = append(a, "-drive", fmt.Sprintf("if=none,id=cd%d,file=%s,format=raw,media=cdrom,readonly=on,file.locking=on", i, qemuEscape(p)),
			"-device", driveDevice(c, fmt.Sprintf("cd%d", i), blk, cdroms[i]))
	}
	if c.CloudInit != nil {
		a = append(a, "-drive", "if=none,id=seed,file="+qemuEscape(c.Seed())+",format=raw,readonly=on,file.locking=on", "-device", driveDevice(c, "seed", blk, ""))
	}
	if c.TPM {
		a = append(a, "-chardev", "socket,id=tpm,path="+qemuEscape(c.TPMSocket()),
			"-tpmdev", "emulator,id=tpm0,chardev=tpm", "-device", "tpm-crb,tpmdev=tpm0")
	}
	a = append(a, displayArgs(c)...)
	nic := dev("virtio-net-device", "virtio-net-pci")
	if c.OS == spec.OSWindows {
		nic = "e1000e"
		a = append(a, "-rtc", "base=localtime")
	}
	a = append(a, netArgs(c, nic)...)
	a = append(a,
		"-device", "pvpanic",
		"-action", "panic=exit-failure",
		"-no-reboot",
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
	)
	return a, nil
}

// displayArgs are the devices and the VNC server of c's screen; none
// without one.
func displayArgs(c launch.VMConfig) []string {
	if c.Display != spec.DisplayVNC {
		return nil
	}
	return []string{"-device", "VGA", "-device", "qemu-xhci,id=usb", "-device", "usb-tablet,bus=usb.0",
		"-vnc", "unix:" + qemuEscape(c.VNCSocket())}
}

// driveDevice is the -device value of drive id (with boot index suffix):
// on q35's AHCI controller (launch.VMConfig.AHCIDrives) an ide-cd
// (CD-ROMs) or ide-hd on its port, else the virtio-blk device blk.
func driveDevice(c launch.VMConfig, id, blk, suffix string) string {
	port := slices.Index(c.AHCIDrives(), id)
	switch {
	case port < 0:
		return blk + ",drive=" + id + suffix
	case strings.HasPrefix(id, "cd"):
		return fmt.Sprintf("ide-cd,drive=%s,bus=ide.%d%s", id, port, suffix)
	}
	return fmt.Sprintf("ide-hd,drive=%s,bus=ide.%d%s", id, port, suffix)
}

// hyperV are the Hyper-V enlightenments of a Windows guest's CPU (QEMU's
// docs/system/i386/hyperv.rst): under KVM the set those docs recommend;
// under TCG the ones QEMU can emulate without KVM (hv-vpindex and what
// needs it, the SynIC and its timers, are KVM's only).
func hyperV(accel string) string {
	flags := ",hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,hv-time"
	if accel == spec.AccelKVM {
		flags += ",hv-vpindex,hv-runtime,hv-synic,hv-stimer,hv-frequencies,hv-reset,hv-tlbflush,hv-ipi"
	}
	return flags
}

// firmwareArgs are the flash drives of c's UEFI firmware (read-only code,
// the VM's own NVRAM) and, with Secure Boot, the flag that lets only SMM
// code write the NVRAM; none for BIOS.
func firmwareArgs(c launch.VMConfig) []string {
	code, _ := launch.FirmwareFiles(c.Firmware)
	if code == "" {
		return nil
	}
	a := []string{
		"-drive", "if=pflash,unit=0,format=raw,readonly=on,file=" + qemuEscape(code),
		"-drive", "if=pflash,unit=1,format=raw,file=" + qemuEscape(c.NVRAM()),
	}
	if c.Firmware == spec.FirmwareUEFISecure {
		a = append(a, "-global", "driver=cfi.pflash01,property=secure,value=on")
	}
	return a
}

// bootOrder returns the ",bootindex=N" suffix of each disk and each
// CD-ROM device of c ("" for a device the firmware does not boot). With no
// boot order, the disk with Boot is first, unless a kernel is given: as in
// the spec, the kernel then wins (SeaBIOS would otherwise boot the disk
// first). With one, the devices are numbered in its order: "cdrom" every
// CD-ROM, "disk" the disk with Boot or else every disk.
func bootOrder(c launch.VMConfig) (disks, cdroms []string) {
	disks, cdroms = make([]string, len(c.Disks)), make([]string, len(c.CDROMs))
	order := c.Boot
	if len(order) == 0 && c.Kernel == "" {
		order = []string{spec.BootDisk}
	}
	n := 0
	next := func() string { n++; return ",bootindex=" + strconv.Itoa(n-1) }
	hasBoot := slices.ContainsFunc(c.Disks, func(d launch.VMDisk) bool { return d.Boot })
	for _, dev := range order {
		switch dev {
		case spec.BootCDROM:
			for i := range cdroms {
				cdroms[i] = next()
			}
		case spec.BootDisk:
			for i, d := range c.Disks {
				if d.Boot || !hasBoot {
					disks[i] = next()
				}
			}
		}
	}
	return disks, cdroms
}

// netArgs are the -netdev and -device arguments of c's network, its NIC
// being the virtio-net device nic; none without a network.
func netArgs(c launch.VMConfig, nic string) []string {
	switch c.Network {
	case spec.VMNetworkUser:
		netdev := "user,id=net0"
		for _, f := range c.Forwards {
			netdev += fmt.Sprintf(",hostfwd=%s:%s:%d-:%d", f.Proto, f.HostAddr, f.HostPort, f.GuestPort)
		}
		return []string{"-netdev", netdev, "-device", nic + ",netdev=net0"}
	case spec.VMNetworkBridge:
		tap, mac := plan.HostIfName(c.NetworkName, c.Name), plan.WorkloadMAC(c.NetworkName, c.Name)
		return []string{"-netdev", "tap,id=net0,ifname=" + tap + ",script=no,downscript=no", "-device", nic + ",netdev=net0,mac=" + mac.String()}
	}
	return nil
}

// GuestNetwork returns c with the guest's address on the network of ep
// (its endpoint as a VM on a bridge, see network.Join) appended to its
// kernel command line, when c boots a kernel:
//
//	ip=ADDR4::GATEWAY4:NETMASK:NAME:eth0:off[:DNS] cove.ip6=ADDR6/BITS cove.gw6=GATEWAY6
//
// ip= is the kernel's own syntax (nfsroot.rst), which a kernel built with
// CONFIG_IP_PNP applies itself and the usual initramfs builders
// (initramfs-tools, dracut) apply in the guest's initramfs: a static
// address on eth0, the guest's one NIC, no autoconfiguration, the
// workload's name as hostname and, when the network has DNS, its gateway
// as DNS server (dns0). IPv6 has no such syntax: cove.ip6 and cove.gw6 are
// cove's own, for a guest that wants the IPv6 twin of its address (which
// the network's DNS answers for its name). A disk-booted guest (no
// kernel) gets nothing here: it gets its IPv4 settings by DHCP from the
// network's responder (internal/dhcp).
func GuestNetwork(c launch.VMConfig, ep plan.Endpoint) launch.VMConfig {
	if c.Kernel == "" {
		return c
	}
	n := ep.Network
	var mask [4]byte
	binary.BigEndian.PutUint32(mask[:], ^uint32(0)<<(32-n.Subnet4.Bits()))
	ip := fmt.Sprintf("ip=%v::%v:%v:%s:eth0:off", ep.Addr4, n.Gateway4, netip.AddrFrom4(mask), c.Name)
	if !n.NoDNS {
		ip += ":" + n.Gateway4.String()
	}
	words := []string{c.Cmdline, ip}
	if ep.Addr6.IsValid() {
		words = append(words, fmt.Sprintf("cove.ip6=%v/%d cove.gw6=%v", ep.Addr6, n.Subnet6.Bits(), n.Gateway6))
	}
	c.Cmdline = strings.TrimSpace(strings.Join(words, " "))
	return c
}

// qemuEscape doubles commas, QEMU's quoting inside a -drive/-chardev value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
