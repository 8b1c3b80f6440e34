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
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// VMLaunchVerb is the hidden command-line verb of a VM unit's ExecStart=.
const VMLaunchVerb = "launch-vm"

// VMStopVerb is the hidden command-line verb of a VM unit's ExecStop=.
const VMStopVerb = "launch-vm-stop"

// Machine types and accelerators understood by QEMUArgv.
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
	Boot     bool // boot from this disk through the firmware (q35, no Kernel)
}

// Forward is a port forward of QEMU's user-mode network: connections to
// HostAddr:HostPort on the host reach GuestPort in the guest.
type Forward struct {
	HostAddr  string // IPv4 address to listen on; "" means all addresses
	HostPort  int
	GuestPort int
	Proto     string // "tcp" or "udp"
}

// String renders f in the spec's syntax, "[ADDR:]HOSTPORT:GUESTPORT/PROTO";
// ParseForward is its inverse.
func (f Forward) String() string {
	s := fmt.Sprintf("%d:%d/%s", f.HostPort, f.GuestPort, f.Proto)
	if f.HostAddr != "" {
		s = f.HostAddr + ":" + s
	}
	return s
}

// ParseForward reads a forward in the spec's syntax:
// "[HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]", e.g. "127.0.0.1:2222:22/tcp".
// The protocol defaults to tcp. HOSTADDR must be an IPv4 address: QEMU 7.2's
// hostfwd= takes no IPv6 address.
func ParseForward(s string) (Forward, error) {
	f := Forward{Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		f.Proto, rest = rest[i+1:], rest[:i]
	}
	if f.Proto != "tcp" && f.Proto != "udp" {
		return Forward{}, fmt.Errorf("forward %q: protocol %q is not tcp or udp", s, f.Proto)
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 2:
	case 3:
		f.HostAddr, parts = parts[0], parts[1:]
		a, err := netip.ParseAddr(f.HostAddr)
		if err != nil || !a.Is4() {
			return Forward{}, fmt.Errorf("forward %q: host address %q is not an IPv4 address", s, f.HostAddr)
		}
	default:
		return Forward{}, fmt.Errorf("forward %q: want [HOSTADDR:]HOSTPORT:GUESTPORT[/PROTO]", s)
	}
	var err error
	if f.HostPort, err = parsePort(parts[0]); err != nil {
		return Forward{}, fmt.Errorf("forward %q: host port: %w", s, err)
	}
	if f.GuestPort, err = parsePort(parts[1]); err != nil {
		return Forward{}, fmt.Errorf("forward %q: guest port: %w", s, err)
	}
	return f, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return n, nil
}

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
	fs.Func("forward", "[ADDR:]HOSTPORT:GUESTPORT/PROTO", func(s string) error {
		f, err := ParseForward(s)
		c.Forwards = append(c.Forwards, f)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return VMConfig{}, fmt.Errorf("%s: %w", VMLaunchVerb, err)
	}
	if fs.NArg() > 0 {
		return VMConfig{}, fmt.Errorf("%s: unexpected argument %q", VMLaunchVerb, fs.Arg(0))
	}
	if err := c.Check(); err != nil {
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
	case c.Kernel != "" && boot > 0:
		return errors.New("a boot disk and a kernel exclude each other")
	case c.Kernel == "" && c.Machine == MachineMicroVM:
		return errors.New("microvm boots a kernel only: set kernel, or use machine q35 to boot a disk")
	case c.Kernel == "" && boot != 1:
		return fmt.Errorf("without a kernel exactly one disk must have boot = true (have %d)", boot)
	}
	for _, f := range c.Forwards {
		if _, err := ParseForward(f.String()); err != nil {
			return err
		}
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

// qemuEscape doubles commas, QEMU's quoting inside a -drive/-chardev value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
