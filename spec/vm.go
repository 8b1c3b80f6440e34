package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/network/plan"
)

// Limits of VMs.
const (
	MaxVMCPUs       = 64        // largest vm.cpus
	MinVMMemory     = 64 << 20  // smallest vm.memory, 64M: less does not boot a usual kernel
	DefaultVMMemory = 256 << 20 // vm.memory if not set
	MaxVMMemory     = 1 << 40   // largest vm.memory, 1T
	MaxCmdlineLen   = 4096      // bytes in vm.cmdline
)

// Firmware of a VM (vm.firmware).
const (
	FirmwareBIOS       = "bios"        // SeaBIOS on q35; none on microvm (direct kernel boot)
	FirmwareUEFI       = "uefi"        // OVMF, with a per-VM NVRAM
	FirmwareUEFISecure = "uefi-secure" // OVMF with Secure Boot enforced and Microsoft's keys enrolled
)

// Guest operating systems (vm.os): what the VM's devices are chosen for.
const (
	OSLinux   = "linux"   // virtio devices (the default)
	OSWindows = "windows" // devices Windows drives without extra drivers, and its preset (WindowsDefaults)
)

// WindowsDefaults are what os = "windows" sets unless the spec sets it
// too: what Windows 11 requires (q35, UEFI with Secure Boot, a TPM 2.0,
// two CPUs, 4 GiB) and a screen for its installer and desktop.
func WindowsDefaults(m *VM) {
	m.Machine, m.Firmware, m.TPM, m.Display = MachineQ35, FirmwareUEFISecure, true, DisplayVNC
	m.CPUs, m.Memory = 2, 4<<30
}

// Screens of a VM (vm.display).
const (
	DisplayNone = "none" // no screen: the serial console only
	DisplayVNC  = "vnc"  // a VGA screen and a USB tablet, served over VNC on a unix socket (q35)
)

// Devices of the firmware boot order (vm.boot).
const (
	BootCDROM = "cdrom" // the [[vm.cdrom]] images, in order
	BootDisk  = "disk"  // the disk with boot = true, else every disk in order
)

// Limits of cloud-init values.
const (
	MaxSSHKeyLen  = 16 << 10 // bytes in one ssh_authorized_keys element
	MaxCloudUsers = 64       // elements of users
	MaxCDROMs     = 6        // [[vm.cdrom]] elements: the ports of q35's AHCI controller
)

// CDROM is an installer or driver image attached read-only as a CD-ROM
// ([[vm.cdrom]]).
type CDROM struct {
	Path string // absolute path of an ISO image
}

// CloudInit is the NoCloud seed a VM gets ([vm.cloud_init]): its user-data
// is the file UserData, or a #cloud-config built from Hostname,
// SSHAuthorizedKeys and Users; its network-config the file NetworkConfig,
// or on a bridge one cove fills in with the guest's address.
type CloudInit struct {
	UserData          string   // absolute path of a user-data file, or ""
	NetworkConfig     string   // absolute path of a network-config file (version 1 or 2), or ""
	Hostname          string   // a hostname; default DefaultHostname of the workload's name
	SSHAuthorizedKeys []string // public keys for the default user and each of Users
	Users             []string // users to create, each with SSHAuthorizedKeys
}

// VMDefaults returns a spec of kind vm named name with every default
// applied: version 1, 1 CPU, 256M of memory, machine microvm, accel auto,
// no network, and the service defaults of Defaults. Callers building a
// spec from flags fill in VM.Kernel (or Disks) and then call Validate.
func VMDefaults(name string) *Spec {
	return &Spec{Name: name, Version: 1, Kind: KindVM, VM: vmDefaults(), Service: serviceDefaults()}
}

// vmDefaults returns a VM with the defaults.
func vmDefaults() *VM {
	return &VM{OS: OSLinux, CPUs: 1, Memory: DefaultVMMemory, Machine: MachineMicroVM, Accel: AccelAuto, Firmware: FirmwareBIOS, Display: DisplayNone, Network: VMNetwork{Mode: VMNetworkNone}}
}

// readVM builds a VM from the [vm] table t.
func readVM(t table) *VM {
	m := vmDefaults()
	t.read("os", &m.OS)
	if m.OS == OSWindows { // the preset first: the spec's own keys win
		WindowsDefaults(m)
	}
	t.read("kernel", &m.Kernel)
	t.read("initrd", &m.Initrd)
	t.read("cmdline", &m.Cmdline)
	t.read("cpus", &m.CPUs)
	t.read("memory", &m.Memory)
	t.read("machine", &m.Machine)
	t.read("accel", &m.Accel)
	t.read("firmware", &m.Firmware)
	t.read("tpm", &m.TPM)
	t.read("display", &m.Display)
	t.read("boot", &m.Boot)
	t.each("disk", func(t table) {
		var d Disk
		t.read("path", &d.Path)
		t.read("base", &d.Base)
		t.read("size", &d.Size)
		t.read("format", &d.Format)
		t.read("read_only", &d.ReadOnly)
		t.read("boot", &d.Boot)
		m.Disks = append(m.Disks, d)
	})
	t.each("cdrom", func(t table) {
		var c CDROM
		t.read("path", &c.Path)
		m.CDROMs = append(m.CDROMs, c)
	})
	if c, ok := t.table("cloud_init"); ok {
		m.CloudInit = &CloudInit{}
		c.read("user_data", &m.CloudInit.UserData)
		c.read("network_config", &m.CloudInit.NetworkConfig)
		c.read("hostname", &m.CloudInit.Hostname)
		c.read("ssh_authorized_keys", &m.CloudInit.SSHAuthorizedKeys)
		c.read("users", &m.CloudInit.Users)
	}
	if n, ok := t.table("network"); ok {
		n.read("mode", &m.Network.Mode)
		var forwards []string
		n.read("forward", &forwards)
		for i, s := range forwards {
			f, err := ParseForward(s)
			if err != nil {
				n.fail("forward", fmt.Sprintf("element %d: %v", i+1, err))
				continue
			}
			m.Network.Forwards = append(m.Network.Forwards, f)
		}
		n.read("network", &m.Network.Network)
		n.read("ip", &m.Network.IP)
		n.read("ports", &m.Network.Ports)
		if m.Network.Mode == VMNetworkBridge && m.Network.Network == "" {
			m.Network.Network = NetworkCove
		}
	}
	return m
}

// vm checks m.
func (v *validator) vm(m *VM) {
	v.oneOf("vm.os", "os", m.OS, "")
	v.oneOf("vm.machine", "machine", m.Machine, "")
	v.oneOf("vm.accel", "accel", m.Accel, "")
	if m.OS == OSWindows && m.Machine != MachineQ35 { // not also each device of the preset
		v.needsQ35(m, "vm.os", `os = "windows"`, "PCI bus for the devices Windows drives")
	} else {
		v.firmware(m)
	}
	if n := len(m.Disks) + len(m.CDROMs); m.OS == OSWindows && n > MaxCDROMs {
		v.add("vm.os", fmt.Sprintf(`os = "windows" puts disks and CD-ROMs on q35's AHCI controller, which has %d ports; this VM has %d`, MaxCDROMs, n))
	}
	bootDisk := v.disks(m)
	v.cdroms(m)
	v.bootOrder(m)
	v.boot(m, bootDisk)
	v.inRange("vm.cpus", m.CPUs)
	switch {
	case m.Memory < MinVMMemory:
		v.add("vm.memory", fmt.Sprintf("%s is below what a guest kernel needs (%s)", formatSize(m.Memory), formatSize(MinVMMemory)))
	case m.Memory > MaxVMMemory:
		v.add("vm.memory", fmt.Sprintf("%s is too large; at most %s", formatSize(m.Memory), formatSize(MaxVMMemory)))
	case m.Memory%(1<<20) != 0:
		v.add("vm.memory", fmt.Sprintf(`%s is not a whole number of megabytes; use a multiple of 1M such as "512M"`, formatSize(m.Memory)))
	}
	v.vmNetwork(&m.Network)
	if m.Network.Mode == VMNetworkBridge && slices.ContainsFunc(strings.Fields(m.Cmdline), func(w string) bool { return strings.HasPrefix(w, "ip=") }) {
		v.add("vm.cmdline", `ip= is cove's on a bridge (mode = "bridge" in [vm.network]): the VM launcher appends the leased address as ip=; remove it (pin the address with ip in [vm.network])`)
	}
	if m.CloudInit != nil {
		v.cloudInit(m.CloudInit)
	}
}

// needsQ35 reports key, which sets what and needs a device that only
// q35 has, unless m's machine is q35.
func (v *validator) needsQ35(m *VM, key, what, device string) {
	if m.Machine != MachineQ35 {
		v.add(key, fmt.Sprintf(`%s needs machine = "q35" (machine %q has no %s)`, what, m.Machine, device))
	}
}

// firmware checks vm.firmware, vm.tpm and vm.display, which need q35.
func (v *validator) firmware(m *VM) {
	v.oneOf("vm.firmware", "firmware", m.Firmware, "")
	if m.Firmware != FirmwareBIOS && slices.Contains(firmwareValues, m.Firmware) {
		v.needsQ35(m, "vm.firmware", fmt.Sprintf("firmware = %q", m.Firmware), "flash for UEFI firmware")
	}
	if m.TPM {
		v.needsQ35(m, "vm.tpm", "tpm = true", "TPM interface")
	}
	v.oneOf("vm.display", "display", m.Display, "")
	if m.Display == DisplayVNC {
		v.needsQ35(m, "vm.display", `display = "vnc"`, "PCI bus for a graphics card and USB tablet")
	}
}

// disks checks the disks of m and reports whether one boots.
func (v *validator) disks(m *VM) (bootDisk bool) {
	paths := make(map[string]int)
	for i, d := range m.Disks {
		k := keyString(key("vm", "disk", elem(i+1)))
		v.diskSource(k, d)
		if j, ok := paths[d.Path]; ok && d.Path != "" {
			v.add(k+".path", fmt.Sprintf("%q is already disk %d; each image may be attached once", d.Path, j))
		} else {
			paths[d.Path] = i + 1
		}
		if d.Format != "" {
			v.oneOf(k+".format", "format", d.Format, " (or leave format out to detect it)")
		}
		switch {
		case !d.Boot:
		case m.Machine == MachineMicroVM:
			v.add(k+".boot", fmt.Sprintf(`boot = true needs machine = "q35" (machine %q has no firmware to boot from a disk; it boots kernel directly)`, m.Machine))
		case bootDisk:
			v.add(k+".boot", "only one disk may have boot = true")
		default:
			bootDisk = true
		}
	}
	for i, d := range m.Disks {
		if d.Base == "" {
			continue
		}
		if j := slices.IndexFunc(m.Disks, func(o Disk) bool { return o.Path == d.Base && !o.ReadOnly }); j >= 0 {
			v.add(fmt.Sprintf("vm.disk[%d].base", i+1), fmt.Sprintf("%q is writable disk %d of this VM; a base must never be written (give disk %d read_only = true)", d.Base, j+1, j+1))
		}
	}
	return bootDisk
}

// OCIDiskPrefix marks a disk's base taken from a registry image
// ("oci:REF"): the image holds one disk image file under /disk (the
// containerDisk convention of KubeVirt); cove pulls and stores it as any
// image, and each VM gets its own overlay of that file.
const OCIDiskPrefix = "oci:"

// OCIImage returns the image reference of an "oci:REF" base, and whether
// base is one.
func OCIImage(base string) (string, bool) { return strings.CutPrefix(base, OCIDiskPrefix) }

// diskSource checks that the disk d (key k) is an image (path) or an
// overlay of one (base, with an optional size), not both.
func (v *validator) diskSource(k string, d Disk) {
	switch {
	case d.Base == "":
		v.absPath(k+".path", d.Path)
		if d.Size != 0 {
			v.add(k+".size", "size needs base: cove grows only the overlays it creates, never an image given by path")
		}
		return
	case d.Path != "":
		v.add(k+".base", "base and path exclude each other: path uses an image in place, base gives the VM its own copy-on-write overlay of one")
	case d.ReadOnly:
		v.add(k+".read_only", "read_only with base: the base is never written anyway; to attach the image itself read-only, use path with read_only = true")
	}
	if ref, ok := OCIImage(d.Base); ok {
		v.imageRef(k+".base", OCIDiskPrefix, ref)
		if d.Format != "" {
			v.add(k+".format", "the format of an oci: base's disk is read from the image's file; leave format out")
		}
	} else {
		v.absPath(k+".base", d.Base)
	}
	if d.Size%512 != 0 {
		v.add(k+".size", fmt.Sprintf("%s is not a multiple of 512 bytes (a disk's sector)", formatSize(d.Size)))
	}
}

// cdroms checks the CD-ROM images of m: absolute, each once, q35 only,
// at most MaxCDROMs.
func (v *validator) cdroms(m *VM) {
	if len(m.CDROMs) > MaxCDROMs {
		v.add("vm.cdrom", fmt.Sprintf("%d CD-ROMs; at most %d (the ports of q35's AHCI controller)", len(m.CDROMs), MaxCDROMs))
	}
	for i, c := range m.CDROMs {
		k := fmt.Sprintf("vm.cdrom[%d].path", i+1)
		v.absPath(k, c.Path)
		if i == 0 {
			v.needsQ35(m, k, "a CD-ROM", "CD-ROM controller")
		}
		if j := slices.IndexFunc(m.CDROMs[:i], func(o CDROM) bool { return o.Path == c.Path }); j >= 0 && c.Path != "" {
			v.add(k, fmt.Sprintf("%q is already cdrom %d; each image may be attached once", c.Path, j+1))
		}
	}
}

// bootOrder checks vm.boot: known devices, each once, each present, and
// no kernel (a kernel boots directly, the firmware's order does not apply).
func (v *validator) bootOrder(m *VM) {
	if len(m.Boot) == 0 {
		return
	}
	v.needsQ35(m, "vm.boot", "a boot order", "firmware to boot devices from")
	if m.Kernel != "" {
		v.add("vm.boot", "boot is the firmware's boot order; with kernel the VM boots that kernel directly: remove one of them")
	}
	present := map[string]bool{BootCDROM: len(m.CDROMs) > 0, BootDisk: len(m.Disks) > 0}
	for i, b := range m.Boot {
		switch {
		case b != BootCDROM && b != BootDisk:
			v.add("vm.boot", fmt.Sprintf(`element %d: invalid device %q; allowed: "cdrom", "disk"`, i+1, b))
		case slices.Contains(m.Boot[:i], b):
			v.add("vm.boot", fmt.Sprintf("element %d: %q is listed twice", i+1, b))
		case !present[b]:
			v.add("vm.boot", fmt.Sprintf("element %d: %q, but the VM has no [[vm.%s]]", i+1, b, b))
		}
	}
}

// boot checks the direct kernel boot of m: kernel, initrd and cmdline.
func (v *validator) boot(m *VM, bootDisk bool) {
	firmwareBoot := bootDisk || len(m.Boot) > 0
	if m.Kernel == "" {
		if !firmwareBoot {
			v.add("vm.kernel", `missing; required: an absolute path such as `+example("vm.kernel")+` for direct kernel boot (it may be left out only with machine = "q35" and a disk with boot = true, or a boot order in boot)`)
		}
	} else {
		v.absPath("vm.kernel", m.Kernel)
	}
	// Without kernel and boot disk, the missing kernel is the error.
	const needsKernel = " needs kernel (it is only used for direct kernel boot, not when booting from a disk)"
	if m.Initrd != "" {
		if m.Kernel == "" && firmwareBoot {
			v.add("vm.initrd", "initrd"+needsKernel)
		} else {
			v.absPath("vm.initrd", m.Initrd)
		}
	}
	if m.Cmdline != "" {
		switch {
		case m.Kernel == "" && firmwareBoot:
			v.add("vm.cmdline", "cmdline"+needsKernel)
		case checkText(m.Cmdline) != "":
			v.add("vm.cmdline", checkText(m.Cmdline))
		case len(m.Cmdline) > MaxCmdlineLen:
			v.add("vm.cmdline", fmt.Sprintf("too long (%d bytes); at most %d allowed", len(m.Cmdline), MaxCmdlineLen))
		}
	}
}

// cloudUserName is a user name cloud-init and useradd accept.
var cloudUserName = lazyRegexp(`^[a-z_][a-z0-9_-]{0,31}$`)

// cloudInit checks [vm.cloud_init]: files as absolute paths, and the
// inline values (which cove writes into YAML) as plain single-line text
// of their own syntax; user_data excludes them.
func (v *validator) cloudInit(c *CloudInit) {
	const k = "vm.cloud_init."
	if c.UserData != "" {
		v.absPath(k+"user_data", c.UserData)
		for _, inline := range []struct {
			name string
			set  bool
		}{{"hostname", c.Hostname != ""}, {"ssh_authorized_keys", len(c.SSHAuthorizedKeys) > 0}, {"users", len(c.Users) > 0}} {
			if inline.set {
				v.add(k+inline.name, inline.name+" with user_data: cove writes the user-data only when no file is given; put it in "+c.UserData)
			}
		}
	}
	if c.NetworkConfig != "" {
		v.absPath(k+"network_config", c.NetworkConfig)
	}
	if c.Hostname != "" {
		if msg := validHostname(c.Hostname); msg != "" {
			v.add(k+"hostname", msg)
		}
	}
	for i, key := range c.SSHAuthorizedKeys {
		switch {
		case checkText(key) != "":
			v.add(k+"ssh_authorized_keys", fmt.Sprintf("element %d: %s", i+1, checkText(key)))
		case len(strings.Fields(key)) < 2 || len(key) > MaxSSHKeyLen:
			v.add(k+"ssh_authorized_keys", fmt.Sprintf("element %d: not a public key line such as %s (TYPE BASE64 [COMMENT], at most %d bytes)", i+1, example(k+"ssh_authorized_keys"), MaxSSHKeyLen))
		}
	}
	if len(c.Users) > MaxCloudUsers {
		v.add(k+"users", fmt.Sprintf("%d users; at most %d", len(c.Users), MaxCloudUsers))
	}
	for i, u := range c.Users {
		if !cloudUserName().MatchString(u) || slices.Contains(c.Users[:i], u) {
			v.add(k+"users", fmt.Sprintf("element %d: invalid or repeated user name %q; allowed: [a-z_][a-z0-9_-]*, at most 32 characters, each once", i+1, u))
		}
	}
}

// vmNetwork checks the network of a VM: its mode, its forwards (mode
// user), and network, ip and ports (mode bridge; see join).
func (v *validator) vmNetwork(n *VMNetwork) {
	const k = "vm.network.forward"
	v.oneOf("vm.network.mode", "mode", n.Mode, "")
	switch {
	case len(n.Forwards) == 0 || n.Mode == VMNetworkUser:
	case n.Mode == VMNetworkBridge:
		v.add(k, `forwards need mode = "user" in [vm.network]; on a bridge, publish the guest's ports with ports = ["8080:80"]`)
	default:
		v.add(k, fmt.Sprintf(`forwards need mode = "user" in [vm.network] (mode %q gives the VM no network to forward to)`, n.Mode))
	}
	for i, f := range n.Forwards {
		if msg := checkForward(f); msg != "" {
			v.add(k, fmt.Sprintf("element %d: %s", i+1, msg))
			continue
		}
		for j, g := range n.Forwards[:i] {
			if g.HostPort == f.HostPort && g.Proto == f.Proto && (g.HostAddr == f.HostAddr || g.HostAddr == "0.0.0.0" || f.HostAddr == "0.0.0.0") {
				v.add(k, fmt.Sprintf("element %d: host port %d/%s is already forwarded by element %d", i+1, f.HostPort, f.Proto, j+1))
				break
			}
		}
	}
	v.vmBridge(n)
}

// vmBridge checks the keys of a VM on a bridge: network is a network's
// name and set only with mode bridge, and ip and ports as join checks
// them.
func (v *validator) vmBridge(n *VMNetwork) {
	switch {
	case n.Mode != VMNetworkBridge && n.Network != "":
		v.add("vm.network.network", fmt.Sprintf(`a network needs mode = "bridge" in [vm.network] (mode %q puts the VM on no cove network)`, n.Mode))
	case n.Mode == VMNetworkBridge && (plan.ValidName(n.Network) != nil || n.Network == NetworkHost || n.Network == NetworkNone):
		v.add("vm.network.network", fmt.Sprintf(`invalid network %q; allowed: a network's name ([a-z0-9][a-z0-9_.-]*, such as "cove")`, n.Network))
	}
	v.join(vmJoin(n), fmt.Sprintf("mode %q", n.Mode), `mode = "bridge"`)
}
