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
	"strconv"
	"strings"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// VMConfig is everything the VM launcher needs. The compiler resolves the
// spec's choices before writing it: Accel is "kvm" or "tcg" (never "auto",
// see hostcheck.ChooseAccel), each disk's Format is "raw" or "qcow2" (see
// hostcheck.DetectDiskFormat).
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
}

// VMDisk is one virtio-blk disk.
type VMDisk struct {
	Path     string // absolute path of the image
	Format   string // spec.FormatRaw or spec.FormatQcow2: always explicit, QEMU never probes
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
	if d.Format != spec.FormatRaw && d.Format != spec.FormatQcow2 {
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
	if c.NetworkName != "" {
		a = append(a, "--network-name", c.NetworkName)
	}
	return append(a, joinArgs(c.IP, c.Ports)...)
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
	if err := fs.Parse(args); err != nil {
		return VMConfig{}, fmt.Errorf("%s: %w", VMLaunchVerb, err)
	}
	if fs.NArg() > 0 {
		return VMConfig{}, fmt.Errorf("%s: unexpected argument %q", VMLaunchVerb, fs.Arg(0))
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
	case c.Kernel == "" && boot == 0:
		return errors.New("without a kernel one disk must have boot = true")
	}
	return nil
}
