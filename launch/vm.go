package launch

// This file is the VM launcher's configuration and its command-line form,
// written into a VM unit's ExecStart= by the compiler and read back by
// "cove launch-vm".

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// VMConfig is everything the VM launcher needs. The compiler resolves the
// spec's choices before writing it: Accel is "kvm" or "tcg" (never "auto",
// see vmhost.ChooseAccel), each disk's Format is "raw" or "qcow2" (see
// vmhost.DetectDiskFormat).
type VMConfig struct {
	Name          string    // workload name (QEMU's -name, messages)
	Kernel        string    // direct kernel boot: absolute path, or "" to boot a disk (q35 only)
	Initrd        string    // absolute path or ""; only with Kernel
	Cmdline       string    // kernel command line; only with Kernel
	CPUs          int       // vCPUs, ≥ 1
	MemoryMiB     uint64    // guest RAM in MiB
	Machine       string    // spec.MachineMicroVM or spec.MachineQ35
	Accel         string    // spec.AccelKVM or spec.AccelTCG
	Disks         []VMDisk  // virtio-blk disks, vda, vdb… in this order
	Network       string    // spec.VMNetworkNone, spec.VMNetworkUser or spec.VMNetworkBridge
	Forwards      []Forward // host → guest port forwards (user network only)
	QMPSocket     string    // absolute path of QMP's unix socket, e.g. /run/cove/vm/NAME/qmp.sock
	ConsoleSocket string    // absolute path of the serial console's unix socket

	// A VM on a bridge (Network spec.VMNetworkBridge) joins a cove network
	// as a container does, with a tap instead of a veth.
	NetworkName string      // the cove network whose bridge the tap joins; required on a bridge
	IP          netip.Addr  // the guest's IPv4 address to lease; zero: any free one
	Ports       []plan.Port // published ports, to the guest's address

	Firmware  string     // spec.FirmwareBIOS ("" too), spec.FirmwareUEFI or spec.FirmwareUEFISecure (q35)
	TPM       bool       // a TPM 2.0: swtpm, started by the launcher, on TPMSocket (q35)
	Display   string     // spec.DisplayVNC: a screen served on VNCSocket (q35); "" or spec.DisplayNone: none
	OS        string     // spec.OSWindows: devices Windows drives without extra drivers (q35); "" or spec.OSLinux: virtio
	CDROMs    []string   // absolute paths of ISO images, read-only CD-ROMs in this order (q35)
	Boot      []string   // the firmware's boot order (spec.BootCDROM, spec.BootDisk); nil: the disk with Boot
	CloudInit *CloudInit // the NoCloud seed the launcher builds at start; nil: none
	// StateDir holds what the VM keeps across restarts until cove rm
	// (VMState): its overlays, NVRAM, TPM state and cloud-init seed. ""
	// for a VM that keeps nothing.
	StateDir string
}

// CloudInit is what the launcher writes into a VM's NoCloud seed (a vfat
// image labelled cidata): meta-data with Hostname; as user-data the file
// UserData, or a #cloud-config of Hostname, SSHKeys and Users; as
// network-config the file NetworkConfig, or on a bridge the guest's
// address.
type CloudInit struct {
	UserData      string   // absolute path, or ""
	NetworkConfig string   // absolute path, or ""
	Hostname      string   // the guest's hostname (meta-data local-hostname)
	SSHKeys       []string // authorized keys of the default user and of Users
	Users         []string // users to create
}

// VMDisk is one virtio-blk disk.
type VMDisk struct {
	Path     string // absolute path of the image; with Base, the VM's overlay (in StateDir), created at first start
	Format   string // spec.FormatRaw or spec.FormatQcow2: always explicit, QEMU never probes; qcow2 with Base
	ReadOnly bool
	Boot     bool   // boot from this disk through the firmware (q35; ignored when Kernel is set)
	Base     string // absolute path of the base image the overlay Path is backed by, "oci:REF" (an image's disk file, found at start), or ""
	BaseFmt  string // the base's format (spec.FormatRaw or spec.FormatQcow2), with Base; "" for an oci: base and the image's disk file it resolves to: read at start
	Size     uint64 // with Base: the overlay's virtual size in bytes; 0: the base's
}

// VMStateDir holds each VM's state in VMStateDir/NAME (VMState): kept
// across restarts, removed with the workload (cove rm).
const VMStateDir = "/var/lib/cove/vms"

// VMState is the state directory of VM name.
func VMState(name string) string { return filepath.Join(VMStateDir, name) }

// OverlayPath is where the overlay of disk n (1-based, as in the spec's
// [[vm.disk]]) of a VM with state directory dir is.
func OverlayPath(dir string, n int) string {
	return filepath.Join(dir, "disk"+strconv.Itoa(n)+".qcow2")
}

// OverlayImageSuffix names, after an overlay's path, the file beside an
// overlay of an "oci:" base that holds the digest of the image whose disk
// it was made from: later starts use that image even if its name has
// moved, and rmi and prune keep it while the overlay exists.
const OverlayImageSuffix = ".image"

// NVRAM is the VM's UEFI variable store, copied from the firmware's
// template at first start.
func (c VMConfig) NVRAM() string { return filepath.Join(c.StateDir, "nvram.fd") }

// TPMState is swtpm's state directory.
func (c VMConfig) TPMState() string { return filepath.Join(c.StateDir, "tpm") }

// AHCIDrives are the ids of the drives on q35's AHCI controller, in the
// order of its ports (ide.0, ide.1…): the CD-ROMs ("cd0"…), and for
// Windows (which has no virtio driver of its own) the disks ("disk0"…)
// and the cloud-init seed ("seed") too.
func (c VMConfig) AHCIDrives() []string {
	var ids []string
	for i := range c.CDROMs {
		ids = append(ids, "cd"+strconv.Itoa(i))
	}
	if c.OS != spec.OSWindows {
		return ids
	}
	for i := range c.Disks {
		ids = append(ids, "disk"+strconv.Itoa(i))
	}
	if c.CloudInit != nil {
		ids = append(ids, "seed")
	}
	return ids
}

// Seed is the cloud-init seed image, rebuilt at every start.
func (c VMConfig) Seed() string { return filepath.Join(c.StateDir, "cidata.img") }

// AgentSocket is the host's end of the guest agent's channel, beside the
// QMP socket (see the function of the same name for a VM by name).
func (c VMConfig) AgentSocket() string {
	return filepath.Join(filepath.Dir(c.QMPSocket), agentSocketName)
}

// TPMSocket is swtpm's socket, beside the QMP socket.
func (c VMConfig) TPMSocket() string { return filepath.Join(filepath.Dir(c.QMPSocket), "swtpm.sock") }

// VNCSocket is where the screen of a VM with a display is served (VNC,
// beside the QMP socket; see the function of the same name for a VM by
// name).
func (c VMConfig) VNCSocket() string { return filepath.Join(filepath.Dir(c.QMPSocket), vncSocketName) }

// Debian's OVMF builds (package ovmf), 4 MiB flash layout.
const (
	OVMFCode       = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars       = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	OVMFSecureCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd" // Secure Boot, needs SMM
	OVMFSecureVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"      // Microsoft's keys enrolled: Secure Boot on
)

// FirmwareFiles returns the code and NVRAM template of firmware, or "", ""
// for spec.FirmwareBIOS.
func FirmwareFiles(firmware string) (code, vars string) {
	switch firmware {
	case spec.FirmwareUEFI:
		return OVMFCode, OVMFVars
	case spec.FirmwareUEFISecure:
		return OVMFSecureCode, OVMFSecureVars
	}
	return "", ""
}

// Forward is a port forward of QEMU's user-mode network; the launcher
// reads and writes it in the spec's explicit form
// "HOSTADDR:HOSTPORT:GUESTPORT/PROTO".
type Forward = spec.Forward

// String renders d as the launcher's --disk value:
// "format=F,read-only=B,boot=B,path=P", with an overlay
// "format=qcow2,read-only=false,boot=B,base-format=F,size=N,base="BASE",path=P".
// The base is quoted (Go syntax); the path comes last and runs to the end,
// so both may hold any character.
func (d VMDisk) String() string {
	base := ""
	if d.Base != "" {
		base = fmt.Sprintf("base-format=%s,size=%d,base=%s,", d.BaseFmt, d.Size, strconv.Quote(d.Base))
	}
	return fmt.Sprintf("format=%s,read-only=%t,boot=%t,%spath=%s", d.Format, d.ReadOnly, d.Boot, base, d.Path)
}

// validBase reports whether d's base is an absolute path with a format
// raw or qcow2, or an image ("oci:REF") with none (the launcher reads it
// from the image's file).
func (d VMDisk) validBase() bool {
	if _, oci := spec.OCIImage(d.Base); oci {
		return d.BaseFmt == ""
	}
	return strings.HasPrefix(d.Base, "/") && (d.BaseFmt == spec.FormatRaw || d.BaseFmt == spec.FormatQcow2)
}

func parseDisk(s string) (VMDisk, error) {
	var d VMDisk
	rest := s
	for rest != "" {
		if p, ok := strings.CutPrefix(rest, "path="); ok {
			d.Path = p
			break
		}
		if q, ok := strings.CutPrefix(rest, "base="); ok {
			quoted, err := strconv.QuotedPrefix(q)
			if err == nil {
				d.Base, err = strconv.Unquote(quoted)
			}
			if err != nil || !strings.HasPrefix(q[len(quoted):], ",") {
				return VMDisk{}, fmt.Errorf("disk %q: base is not a quoted path followed by a comma", s)
			}
			rest = q[len(quoted)+1:]
			continue
		}
		kv, more, _ := strings.Cut(rest, ",")
		rest = more
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return VMDisk{}, fmt.Errorf("disk %q: %q is not KEY=VALUE", s, kv)
		}
		var err error
		switch k {
		case "format":
			d.Format = v
		case "read-only":
			d.ReadOnly, err = strconv.ParseBool(v)
		case "boot":
			d.Boot, err = strconv.ParseBool(v)
		case "base-format":
			d.BaseFmt = v
		case "size":
			d.Size, err = strconv.ParseUint(v, 10, 64)
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return VMDisk{}, fmt.Errorf("disk %q: %w", s, err)
		}
	}
	if !strings.HasPrefix(d.Path, "/") {
		return VMDisk{}, fmt.Errorf("disk %q: path must be absolute", s)
	}
	if d.Format != spec.FormatRaw && d.Format != spec.FormatQcow2 {
		return VMDisk{}, fmt.Errorf("disk %q: format must be raw or qcow2", s)
	}
	if d.Base != "" && !d.validBase() {
		return VMDisk{}, fmt.Errorf("disk %q: base must be an absolute path with format raw or qcow2, or oci:REF with none (read from the image)", s)
	}
	return d, nil
}

// Args renders c as launcher arguments (after the "launch-vm" verb).
// ParseVMArgs is its inverse.
func (c VMConfig) Args() []string {
	a := []string{
		"--name", c.Name,
		"--kernel", c.Kernel,
		"--initrd", c.Initrd,
		"--cmdline", c.Cmdline,
		"--cpus", strconv.Itoa(c.CPUs),
		"--memory", strconv.FormatUint(c.MemoryMiB, 10),
		"--machine", c.Machine,
		"--accel", c.Accel,
		"--network", c.Network,
		"--qmp-socket", c.QMPSocket,
		"--console-socket", c.ConsoleSocket,
	}
	for _, d := range c.Disks {
		a = append(a, "--disk", d.String())
	}
	for _, f := range c.Forwards {
		a = append(a, "--forward", f.String())
	}
	if c.NetworkName != "" {
		a = append(a, "--network-name", c.NetworkName)
	}
	a = append(a, joinArgs(c.IP, c.Ports)...)
	return append(a, c.firmwareArgs()...)
}

// firmwareArgs renders what VMs of firmware, TPM, CD-ROMs, boot order,
// cloud-init and state add to Args, each only when set.
func (c VMConfig) firmwareArgs() []string {
	var a []string
	if c.Firmware != "" && c.Firmware != spec.FirmwareBIOS {
		a = append(a, "--firmware", c.Firmware)
	}
	if c.TPM {
		a = append(a, "--tpm")
	}
	if c.Display == spec.DisplayVNC {
		a = append(a, "--display", c.Display)
	}
	if c.OS == spec.OSWindows {
		a = append(a, "--os", c.OS)
	}
	for _, p := range c.CDROMs {
		a = append(a, "--cdrom", p)
	}
	if len(c.Boot) > 0 {
		a = append(a, "--boot", strings.Join(c.Boot, ","))
	}
	if ci := c.CloudInit; ci != nil {
		a = append(a, "--cloud-init", "--cloud-init-hostname", ci.Hostname)
		if ci.UserData != "" {
			a = append(a, "--cloud-init-user-data", ci.UserData)
		}
		if ci.NetworkConfig != "" {
			a = append(a, "--cloud-init-network-config", ci.NetworkConfig)
		}
		for _, k := range ci.SSHKeys {
			a = append(a, "--cloud-init-ssh-key", k)
		}
		for _, u := range ci.Users {
			a = append(a, "--cloud-init-user", u)
		}
	}
	if c.StateDir != "" {
		a = append(a, "--state-dir", c.StateDir)
	}
	return a
}

// ParseVMArgs reads launcher arguments as written by Args and checks them
// as QEMUArgv needs them.
func ParseVMArgs(args []string) (VMConfig, error) {
	var c VMConfig
	fs := flag.NewFlagSet(VMLaunchVerb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Name, "name", "", "workload name")
	fs.StringVar(&c.Kernel, "kernel", "", "kernel image")
	fs.StringVar(&c.Initrd, "initrd", "", "initramfs")
	fs.StringVar(&c.Cmdline, "cmdline", "", "kernel command line")
	fs.IntVar(&c.CPUs, "cpus", 1, "vCPUs")
	fs.Uint64Var(&c.MemoryMiB, "memory", 512, "RAM in MiB")
	fs.StringVar(&c.Machine, "machine", spec.MachineMicroVM, "microvm or q35")
	fs.StringVar(&c.Accel, "accel", "", "kvm or tcg")
	fs.StringVar(&c.Network, "network", spec.VMNetworkNone, "none, user or bridge")
	fs.StringVar(&c.QMPSocket, "qmp-socket", "", "QMP socket path")
	fs.StringVar(&c.ConsoleSocket, "console-socket", "", "console socket path")
	fs.Func("disk", "format=F,read-only=B,boot=B,path=P", func(s string) error {
		d, err := parseDisk(s)
		c.Disks = append(c.Disks, d)
		return err
	})
	fs.Func("forward", "HOSTADDR:HOSTPORT:GUESTPORT/PROTO", func(s string) error {
		f, err := spec.ParseForward(s)
		c.Forwards = append(c.Forwards, f)
		return err
	})
	fs.StringVar(&c.NetworkName, "network-name", "", "the cove network of a bridged VM")
	joinFlags(fs, &c.IP, &c.Ports)
	fs.StringVar(&c.Firmware, "firmware", "", "bios (the default), uefi or uefi-secure")
	fs.BoolVar(&c.TPM, "tpm", false, "a TPM 2.0 (swtpm)")
	fs.StringVar(&c.Display, "display", "", "none (the default) or vnc")
	fs.StringVar(&c.OS, "os", "", "linux (the default) or windows")
	fs.Func("cdrom", "ISO image", func(s string) error { c.CDROMs = append(c.CDROMs, s); return nil })
	fs.Func("boot", "firmware boot order, e.g. cdrom,disk", func(s string) error { c.Boot = strings.Split(s, ","); return nil })
	ci := &CloudInit{}
	useCloudInit := fs.Bool("cloud-init", false, "build a cloud-init seed")
	fs.StringVar(&ci.Hostname, "cloud-init-hostname", "", "the guest's hostname")
	fs.StringVar(&ci.UserData, "cloud-init-user-data", "", "user-data file")
	fs.StringVar(&ci.NetworkConfig, "cloud-init-network-config", "", "network-config file")
	fs.Func("cloud-init-ssh-key", "authorized key", func(s string) error { ci.SSHKeys = append(ci.SSHKeys, s); return nil })
	fs.Func("cloud-init-user", "user to create", func(s string) error { ci.Users = append(ci.Users, s); return nil })
	fs.StringVar(&c.StateDir, "state-dir", "", "the VM's state directory")
	if err := fs.Parse(args); err != nil {
		return VMConfig{}, fmt.Errorf("%s: %w", VMLaunchVerb, err)
	}
	if fs.NArg() > 0 {
		return VMConfig{}, fmt.Errorf("%s: unexpected argument %q", VMLaunchVerb, fs.Arg(0))
	}
	if *useCloudInit {
		c.CloudInit = ci
	}
	checked := c
	if checked.Accel == spec.AccelAuto {
		checked.Accel = spec.AccelTCG // resolved at launch (LaunchVM)
	}
	if err := checked.Check(); err != nil {
		return VMConfig{}, fmt.Errorf("%s: %w", VMLaunchVerb, err)
	}
	return c, nil
}

// Check reports the first inconsistency in c that would make QEMUArgv fail
// or QEMU refuse to start.
func (c VMConfig) Check() error {
	abs := func(what, p string, optional bool) error {
		if p == "" && optional {
			return nil
		}
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%s %q is not an absolute path", what, p)
		}
		return nil
	}
	switch {
	case c.Machine != spec.MachineMicroVM && c.Machine != spec.MachineQ35:
		return fmt.Errorf("machine %q is not %s or %s", c.Machine, spec.MachineMicroVM, spec.MachineQ35)
	case c.Accel != spec.AccelKVM && c.Accel != spec.AccelTCG:
		return fmt.Errorf("accel %q is not %s or %s (resolve auto first)", c.Accel, spec.AccelKVM, spec.AccelTCG)
	case c.CPUs < 1 || c.CPUs > 255:
		return fmt.Errorf("cpus %d is not in 1-255", c.CPUs)
	case c.MemoryMiB < 16:
		return fmt.Errorf("memory %d MiB is less than 16 MiB", c.MemoryMiB)
	case c.Network != spec.VMNetworkNone && c.Network != spec.VMNetworkUser && c.Network != spec.VMNetworkBridge:
		return fmt.Errorf("network %q is not %s, %s or %s", c.Network, spec.VMNetworkNone, spec.VMNetworkUser, spec.VMNetworkBridge)
	case len(c.Forwards) > 0 && c.Network != spec.VMNetworkUser:
		return errors.New("port forwards need the user network")
	case (c.Network == spec.VMNetworkBridge) != (c.NetworkName != ""):
		return fmt.Errorf("network %q with network name %q: a bridge needs the name of a cove network, and only a bridge takes one", c.Network, c.NetworkName)
	case (c.IP.IsValid() || len(c.Ports) > 0) && c.Network != spec.VMNetworkBridge:
		return errors.New("a pinned address and published ports need a bridge")
	case c.IP.IsValid() && !c.IP.Is4():
		return fmt.Errorf("address %v is not IPv4", c.IP)
	}
	for _, e := range []error{
		abs("kernel", c.Kernel, true),
		abs("initrd", c.Initrd, true),
		abs("QMP socket", c.QMPSocket, false),
		abs("console socket", c.ConsoleSocket, false),
	} {
		if e != nil {
			return e
		}
	}
	boot := 0
	for _, d := range c.Disks {
		if err := abs("disk", d.Path, false); err != nil {
			return err
		}
		if d.Format != spec.FormatRaw && d.Format != spec.FormatQcow2 {
			return fmt.Errorf("disk %s: format %q is not raw or qcow2", d.Path, d.Format)
		}
		if d.Boot {
			boot++
		}
	}
	switch {
	case c.Kernel == "" && (c.Initrd != "" || c.Cmdline != ""):
		return errors.New("initrd and cmdline need a kernel")
	case boot > 1:
		return fmt.Errorf("%d disks have boot = true; at most one may", boot)
	case c.Kernel == "" && c.Machine == spec.MachineMicroVM:
		return errors.New("microvm boots a kernel only: set kernel, or use machine q35 to boot a disk")
	case c.Kernel == "" && boot == 0 && len(c.Boot) == 0:
		return errors.New("without a kernel one disk must have boot = true, or a boot order must be given")
	}
	return c.checkFirmware()
}

// checkFirmware is Check for firmware, TPM, display, CD-ROMs, boot order, overlays
// and cloud-init: q35 devices on q35, state in StateDir.
func (c VMConfig) checkFirmware() error {
	q35 := c.Machine == spec.MachineQ35
	needsState := c.TPM || c.CloudInit != nil || c.Firmware == spec.FirmwareUEFI || c.Firmware == spec.FirmwareUEFISecure
	for _, d := range c.Disks {
		needsState = needsState || d.Base != ""
		if d.Base != "" && (d.Format != spec.FormatQcow2 || d.ReadOnly || filepath.Dir(d.Path) != c.StateDir) {
			return fmt.Errorf("disk %s: an overlay of %s must be a writable qcow2 image in the state directory %q", d.Path, d.Base, c.StateDir)
		}
	}
	switch {
	case c.Firmware != "" && c.Firmware != spec.FirmwareBIOS && c.Firmware != spec.FirmwareUEFI && c.Firmware != spec.FirmwareUEFISecure:
		return fmt.Errorf("firmware %q is not %s, %s or %s", c.Firmware, spec.FirmwareBIOS, spec.FirmwareUEFI, spec.FirmwareUEFISecure)
	case c.Display != "" && c.Display != spec.DisplayNone && c.Display != spec.DisplayVNC:
		return fmt.Errorf("display %q is not %s or %s", c.Display, spec.DisplayNone, spec.DisplayVNC)
	case c.OS != "" && c.OS != spec.OSLinux && c.OS != spec.OSWindows:
		return fmt.Errorf("os %q is not %s or %s", c.OS, spec.OSLinux, spec.OSWindows)
	case !q35 && (c.TPM || len(c.CDROMs) > 0 || len(c.Boot) > 0 || c.Firmware == spec.FirmwareUEFI || c.Firmware == spec.FirmwareUEFISecure || c.Display == spec.DisplayVNC || c.OS == spec.OSWindows):
		return errors.New("UEFI, a TPM, CD-ROMs, a boot order, a display and os windows need machine q35")
	case c.OS == spec.OSWindows && len(c.AHCIDrives()) > spec.MaxCDROMs:
		return fmt.Errorf("%d disks and CD-ROMs on the AHCI controller; it has %d ports", len(c.AHCIDrives()), spec.MaxCDROMs)
	case len(c.CDROMs) > spec.MaxCDROMs:
		return fmt.Errorf("%d CD-ROMs; at most %d", len(c.CDROMs), spec.MaxCDROMs)
	case needsState && !strings.HasPrefix(c.StateDir, "/"):
		return fmt.Errorf("state directory %q is not an absolute path", c.StateDir)
	}
	for _, b := range c.Boot {
		if b != spec.BootCDROM && b != spec.BootDisk {
			return fmt.Errorf("boot device %q is not %s or %s", b, spec.BootCDROM, spec.BootDisk)
		}
	}
	for _, p := range c.CDROMs {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("cdrom %q is not an absolute path", p)
		}
	}
	return nil
}

// VMImagesDir is where shared base images go; an image's backing chain
// may lead there (besides the base's own directory).
const VMImagesDir = "/var/lib/cove/vm-images"

// SWTPMBinary is the TPM emulator (Debian's swtpm) the launcher starts for
// a VM with a TPM, looked up in PATH.
const SWTPMBinary = "swtpm"
