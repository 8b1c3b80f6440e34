package isolate

// This file is pure: the VM launcher's configuration, its command-line
// form (written into a VM unit's ExecStart= by the compiler, read back by
// "cove launch-vm") and the QEMU command line built from it.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cove-project/cove/spec"
)

// VMLaunchVerb is the hidden command-line verb of a VM unit's ExecStart=.
const VMLaunchVerb = "launch-vm"

// VMStopVerb is the hidden command-line verb of a VM unit's ExecStop=.
const VMStopVerb = "launch-vm-stop"

// Values of VMConfig's Machine, Accel, Network and VMDisk.Format.
const (
	MachineMicroVM = "microvm"
	MachineQ35     = "q35"
	AccelKVM       = "kvm"
	AccelTCG       = "tcg"
	NetworkNone    = "none"
	NetworkUser    = "user"
	DiskRaw        = "raw"
	DiskQCOW2      = "qcow2"
)

// TCGBufferMiB caps TCG's translated-code buffer (QEMU's tb-size), so that
// QEMU under TCG fits the memory margin a VM's unit gets on top of the
// guest's memory. A guest whose hot code does not fit is slower (QEMU
// flushes and retranslates), not killed.
const TCGBufferMiB = 256

// VMConfig is everything the VM launcher needs. The compiler resolves the
// spec's choices before writing it: Accel is "kvm" or "tcg" (never "auto",
// see ChooseAccel), each disk's Format is "raw" or "qcow2" (see
// DetectDiskFormat).
type VMConfig struct {
	Name          string    // workload name (QEMU's -name, messages)
	Kernel        string    // direct kernel boot: absolute path, or "" to boot a disk (q35 only)
	Initrd        string    // absolute path or ""; only with Kernel
	Cmdline       string    // kernel command line; only with Kernel
	CPUs          int       // vCPUs, ≥ 1
	MemoryMiB     uint64    // guest RAM in MiB
	Machine       string    // MachineMicroVM or MachineQ35
	Accel         string    // AccelKVM or AccelTCG
	Disks         []VMDisk  // virtio-blk disks, vda, vdb… in this order
	Network       string    // NetworkNone or NetworkUser
	Forwards      []Forward // host → guest port forwards (user network only)
	QMPSocket     string    // absolute path of QMP's unix socket, e.g. /run/cove/vm/NAME/qmp.sock
	ConsoleSocket string    // absolute path of the serial console's unix socket
}

// VMDisk is one virtio-blk disk.
type VMDisk struct {
	Path     string // absolute path of the image
	Format   string // DiskRaw or DiskQCOW2: always explicit, QEMU never probes
	ReadOnly bool
	Boot     bool // boot from this disk through the firmware (q35; ignored when Kernel is set)
}

// Forward is a port forward of QEMU's user-mode network; the launcher
// reads and writes it in the spec's explicit form
// "HOSTADDR:HOSTPORT:GUESTPORT/PROTO".
type Forward = spec.Forward

// String renders d as the launcher's --disk value:
// "format=F,read-only=B,boot=B,path=P". The path comes last and runs to the
// end, so it may hold any character.
func (d VMDisk) String() string {
	return fmt.Sprintf("format=%s,read-only=%t,boot=%t,path=%s", d.Format, d.ReadOnly, d.Boot, d.Path)
}

func parseDisk(s string) (VMDisk, error) {
	var d VMDisk
	rest := s
	for rest != "" {
		if p, ok := strings.CutPrefix(rest, "path="); ok {
			d.Path = p
			break
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
	if d.Format != DiskRaw && d.Format != DiskQCOW2 {
		return VMDisk{}, fmt.Errorf("disk %q: format must be raw or qcow2", s)
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
	fs.StringVar(&c.Machine, "machine", MachineMicroVM, "microvm or q35")
	fs.StringVar(&c.Accel, "accel", "", "kvm or tcg")
	fs.StringVar(&c.Network, "network", NetworkNone, "none or user")
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
	if err := fs.Parse(args); err != nil {
		return VMConfig{}, fmt.Errorf("%s: %w", VMLaunchVerb, err)
	}
	if fs.NArg() > 0 {
		return VMConfig{}, fmt.Errorf("%s: unexpected argument %q", VMLaunchVerb, fs.Arg(0))
	}
	checked := c
	if checked.Accel == spec.AccelAuto {
		checked.Accel = AccelTCG // resolved at launch (LaunchVM)
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
	case c.Machine != MachineMicroVM && c.Machine != MachineQ35:
		return fmt.Errorf("machine %q is not %s or %s", c.Machine, MachineMicroVM, MachineQ35)
	case c.Accel != AccelKVM && c.Accel != AccelTCG:
		return fmt.Errorf("accel %q is not %s or %s (resolve auto first)", c.Accel, AccelKVM, AccelTCG)
	case c.CPUs < 1 || c.CPUs > 255:
		return fmt.Errorf("cpus %d is not in 1-255", c.CPUs)
	case c.MemoryMiB < 16:
		return fmt.Errorf("memory %d MiB is less than 16 MiB", c.MemoryMiB)
	case c.Network != NetworkNone && c.Network != NetworkUser:
		return fmt.Errorf("network %q is not %s or %s", c.Network, NetworkNone, NetworkUser)
	case len(c.Forwards) > 0 && c.Network != NetworkUser:
		return errors.New("port forwards need the user network")
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
		if d.Format != DiskRaw && d.Format != DiskQCOW2 {
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
	case c.Kernel == "" && c.Machine == MachineMicroVM:
		return errors.New("microvm boots a kernel only: set kernel, or use machine q35 to boot a disk")
	case c.Kernel == "" && boot == 0:
		return errors.New("without a kernel one disk must have boot = true")
	}
	return nil
}

// DetectDiskFormat reads an image's first bytes: "qcow2" if it starts with
// the qcow2 magic ("QFI\xfb"), else "raw".
//
// Call it once, when compiling the unit, and pin the result: a guest can
// write anything to the start of a raw disk, so probing at every boot would
// let it turn its raw disk into a qcow2 image with a backing file of its
// choosing on the host (QEMU's own reason for warning about probing).
func DetectDiskFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(magic, []byte("QFI\xfb")) {
		return DiskQCOW2, nil
	}
	return DiskRaw, nil
}

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
// value (see HostTSCkHz).
func TSCHint(c VMConfig, khz uint64) VMConfig {
	if c.Machine != MachineMicroVM || c.Accel != AccelTCG || c.Kernel == "" || khz == 0 {
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
//   - QMP on a second unix socket server, written as -chardev + -mon
//     (what -qmp unix:... expands to) so that the path can be escaped.
//   - Disks: -drive if=none with an explicit format (QEMU never probes,
//     see DetectDiskFormat) and file.locking=on, so a second QEMU cannot
//     open a disk that one has open for writing ("Failed to get "write"
//     lock"), and read-only disks get a shared lock. Each is a virtio-blk
//     device (virtio-blk-device on microvm's virtio-mmio, virtio-blk-pci
//     on q35), vda, vdb… in order (checked on both machines). The boot
//     disk gets bootindex=0, unless a kernel is given: as in the spec, the
//     kernel then wins (SeaBIOS would otherwise boot the disk first).
//   - Network: QEMU's user-mode stack (slirp, no privileges, no host
//     interfaces) with hostfwd= per forward, on virtio-net.
//   - -device pvpanic with -action panic=exit-failure: a guest kernel panic
//     ends QEMU with status 1 (a failed unit) instead of rebooting or
//     hanging. The guest needs the pvpanic driver (pvpanic-mmio, which
//     binds the ACPI device QEMU0001).
//   - -no-reboot: a guest reboot ends QEMU like a poweroff, status 0; the
//     unit's Restart= policy decides what happens next.
//   - -sandbox on with obsolete, elevateprivileges, spawn and
//     resourcecontrol denied: QEMU's seccomp filter.
func QEMUArgv(c VMConfig) ([]string, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	a := []string{"qemu-system-x86_64",
		"-name", "guest=" + qemuEscape(c.Name),
		"-nodefaults", "-no-user-config", "-nographic",
	}
	dev := func(microvm, pci string) string {
		if c.Machine == MachineMicroVM {
			return microvm
		}
		return pci
	}
	a = append(a, "-machine", dev("microvm,acpi=on,pcie=off", "q35"))
	accel, cpu := AccelKVM, "host"
	if c.Accel == AccelTCG {
		accel, cpu = AccelTCG+",tb-size="+strconv.Itoa(TCGBufferMiB), "max"
	}
	a = append(a, "-accel", accel, "-cpu", cpu)
	a = append(a, "-smp", strconv.Itoa(c.CPUs), "-m", strconv.FormatUint(c.MemoryMiB, 10))
	if c.Kernel != "" {
		a = append(a, "-kernel", c.Kernel)
		if c.Initrd != "" {
			a = append(a, "-initrd", c.Initrd)
		}
		if c.Cmdline != "" {
			a = append(a, "-append", c.Cmdline)
		}
	}
	a = append(a, "-chardev", "stdio,id=log,signal=off", "-serial", "chardev:log",
		"-chardev", "socket,id=console,path="+qemuEscape(c.ConsoleSocket)+",server=on,wait=off",
		"-device", dev("virtio-serial-device", "virtio-serial-pci"), "-device", "virtconsole,chardev=console")
	a = append(a,
		"-chardev", "socket,id=qmp,path="+qemuEscape(c.QMPSocket)+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control")
	for i, d := range c.Disks {
		drive := fmt.Sprintf("if=none,id=disk%d,file=%s,format=%s,file.locking=on", i, qemuEscape(d.Path), d.Format)
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		device := fmt.Sprintf("%s,drive=disk%d", dev("virtio-blk-device", "virtio-blk-pci"), i)
		if d.Boot && c.Kernel == "" {
			device += ",bootindex=0"
		}
		a = append(a, "-drive", drive, "-device", device)
	}
	if c.Network == NetworkUser {
		netdev := "user,id=net0"
		for _, f := range c.Forwards {
			netdev += fmt.Sprintf(",hostfwd=%s:%s:%d-:%d", f.Proto, f.HostAddr, f.HostPort, f.GuestPort)
		}
		a = append(a, "-netdev", netdev, "-device", dev("virtio-net-device", "virtio-net-pci")+",netdev=net0")
	}
	a = append(a,
		"-device", "pvpanic",
		"-action", "panic=exit-failure",
		"-no-reboot",
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
	)
	return a, nil
}

// qemuEscape doubles commas, QEMU's quoting inside a -drive/-chardev value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
