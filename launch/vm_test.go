package launch

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

func testVM() VMConfig {
	return VMConfig{
		Name: "db", Kernel: "/var/lib/cove/vm/vmlinuz", Initrd: "/var/lib/cove/vm/initrd.gz",
		Cmdline: "console=ttyS0 quiet", CPUs: 2, MemoryMiB: 512,
		Machine: spec.MachineMicroVM, Accel: spec.AccelTCG,
		Disks:         []VMDisk{{Path: "/var/lib/cove/vm/data.qcow2", Format: spec.FormatQcow2}},
		Network:       spec.VMNetworkUser,
		Forwards:      []Forward{{HostAddr: "127.0.0.1", HostPort: 2222, GuestPort: 22, Proto: "tcp"}},
		QMPSocket:     "/run/cove/vm/db/qmp.sock",
		ConsoleSocket: "/run/cove/vm/db/console.sock",
	}
}

// testBridgedVM is testVM on a bridge of network "lab", with a pinned
// address and published ports.
func testBridgedVM() VMConfig {
	c := testVM()
	c.Network, c.Forwards, c.NetworkName = spec.VMNetworkBridge, nil, "lab"
	c.IP = netip.MustParseAddr("10.78.0.9")
	for _, s := range []string{"8080:80", "127.0.0.1:5353:53/udp", "[2001:db8::10]:8443:443"} {
		p, err := plan.ParsePort(s)
		if err != nil {
			panic(err)
		}
		c.Ports = append(c.Ports, p)
	}
	return c
}

// testInstallerVM is a q35 VM with every firmware-era device: UEFI with
// Secure Boot, a TPM, a screen, an overlay of a base image with awkward
// characters, two CD-ROMs booted first, and a cloud-init seed.
func testInstallerVM() VMConfig {
	c := testVM()
	c.Machine, c.Kernel, c.Initrd, c.Cmdline = spec.MachineQ35, "", "", ""
	c.StateDir = VMState("db")
	c.Disks = []VMDisk{{Path: OverlayPath(c.StateDir, 1), Format: spec.FormatQcow2, Base: "/var/lib/cove/vm-images/a \"b\",path=/c.qcow2", BaseFmt: spec.FormatQcow2, Size: 20 << 30}}
	c.Firmware, c.TPM, c.Display = spec.FirmwareUEFISecure, true, spec.DisplayVNC
	c.CDROMs = []string{"/isos/win11.iso", "/isos/virtio,win.iso"}
	c.Boot = []string{spec.BootCDROM, spec.BootDisk}
	c.CloudInit = &CloudInit{Hostname: "db", SSHKeys: []string{"ssh-ed25519 AAAA me"}, Users: []string{"alice"}}
	return c
}

// TestQEMUArgvMicroVM pins the whole command line of a typical microvm.

// TestQEMUArgvQ35 checks the q35 differences: PCI devices, KVM, a boot disk
// through the firmware, read-only disks, escaped commas, no network.

// TestQEMUArgvForwards checks hostfwd= for several forwards, udp and all
// host addresses.

// TestVMArgsRoundTrip checks that ParseVMArgs reads back what Args writes,
// including awkward values.
func TestVMArgsRoundTrip(t *testing.T) {
	for _, c := range []VMConfig{
		testVM(),
		func() VMConfig {
			c := testVM()
			c.Name = "--weird name"
			c.Cmdline = "console=ttyS0 --disk x init=/bin/sh -- a"
			c.Initrd = ""
			c.Disks = []VMDisk{
				{Path: "/v/a,path=/b,format=raw", Format: spec.FormatRaw, ReadOnly: true},
				{Path: "/v/b c.qcow2", Format: spec.FormatQcow2},
			}
			c.Forwards = append(c.Forwards, Forward{HostAddr: "0.0.0.0", HostPort: 53, GuestPort: 53, Proto: "udp"})
			return c
		}(),
		func() VMConfig {
			c := testVM()
			c.Machine, c.Accel, c.Kernel, c.Initrd, c.Cmdline = spec.MachineQ35, spec.AccelKVM, "", "", ""
			c.Disks[0].Boot = true
			c.Network, c.Forwards = spec.VMNetworkNone, nil
			return c
		}(),
		testBridgedVM(),
		testInstallerVM(),
		func() VMConfig {
			c := testInstallerVM()
			c.Firmware, c.CloudInit = spec.FirmwareUEFI, &CloudInit{Hostname: "x", UserData: "/etc/u", NetworkConfig: "/etc/n"}
			return c
		}(),
		func() VMConfig {
			c := testInstallerVM()
			c.OS = spec.OSWindows
			return c
		}(),
	} {
		got, err := ParseVMArgs(c.Args())
		if err != nil {
			t.Fatalf("ParseVMArgs(%q): %v", c.Args(), err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
	}
}

// TestParseVMArgsErrors checks that inconsistent launcher arguments are
// refused.
func TestParseVMArgsErrors(t *testing.T) {
	edit := func(f func(*VMConfig)) []string {
		c := testVM()
		f(&c)
		return c.Args()
	}
	for name, args := range map[string][]string{
		"machine":         edit(func(c *VMConfig) { c.Machine = "pc" }),
		"no cpus":         edit(func(c *VMConfig) { c.CPUs = 0 }),
		"tiny memory":     edit(func(c *VMConfig) { c.MemoryMiB = 1 }),
		"relative kernel": edit(func(c *VMConfig) { c.Kernel = "vmlinuz" }),
		"no qmp socket":   edit(func(c *VMConfig) { c.QMPSocket = "" }),
		"forward, no net": edit(func(c *VMConfig) { c.Network = spec.VMNetworkNone }),
		"microvm no kern": edit(func(c *VMConfig) { c.Kernel, c.Initrd, c.Cmdline = "", "", "" }),
		"microvm display": edit(func(c *VMConfig) { c.Display = spec.DisplayVNC }),
		"two boot disks": edit(func(c *VMConfig) {
			c.Machine = spec.MachineQ35
			c.Disks = append(c.Disks, c.Disks[0])
			c.Disks[0].Boot, c.Disks[1].Boot = true, true
		}),
		"no forward address": edit(func(c *VMConfig) { c.Forwards[0].HostAddr = "" }),
		"q35 no boot disk":   edit(func(c *VMConfig) { c.Machine = spec.MachineQ35; c.Kernel, c.Initrd, c.Cmdline = "", "", "" }),
		"disk format":        append(edit(func(c *VMConfig) {}), "--disk", "format=vmdk,path=/x"),
		"relative disk":      append(edit(func(c *VMConfig) {}), "--disk", "format=raw,path=x"),
		"disk key":           append(edit(func(c *VMConfig) {}), "--disk", "format=raw,cache=none,path=/x"),
		"forward":            append(edit(func(c *VMConfig) {}), "--forward", "localhost:1:2/tcp"),
		"stray argument":     append(edit(func(c *VMConfig) {}), "extra"),
		"unknown flag":       append(edit(func(c *VMConfig) {}), "--bogus"),
		"bridge, no name":    edit(func(c *VMConfig) { *c = testBridgedVM(); c.NetworkName = "" }),
		"name, no bridge":    edit(func(c *VMConfig) { c.NetworkName = "lab" }),
		"ip, no bridge":      edit(func(c *VMConfig) { c.IP = netip.MustParseAddr("10.78.0.9") }),
		"ports, no bridge":   edit(func(c *VMConfig) { c.Ports = testBridgedVM().Ports }),
		"ipv6 address":       edit(func(c *VMConfig) { *c = testBridgedVM(); c.IP = netip.MustParseAddr("fd00::9") }),
		"bad port":           append(edit(func(c *VMConfig) { *c = testBridgedVM() }), "--publish", "80:80/sctp"),
		"uefi on microvm":    edit(func(c *VMConfig) { c.Firmware, c.StateDir = spec.FirmwareUEFI, "/s" }),
		"firmware":           edit(func(c *VMConfig) { *c = testInstallerVM(); c.Firmware = "coreboot" }),
		"no state dir":       edit(func(c *VMConfig) { *c = testInstallerVM(); c.StateDir = "" }),
		"overlay elsewhere":  edit(func(c *VMConfig) { *c = testInstallerVM(); c.Disks[0].Path = "/tmp/x.qcow2" }),
		"boot device":        edit(func(c *VMConfig) { *c = testInstallerVM(); c.Boot = []string{"floppy"} }),
		"relative base":      append(edit(func(c *VMConfig) {}), "--disk", `format=qcow2,read-only=false,boot=false,base-format=raw,size=0,base="x",path=/x`),
		"unquoted base":      append(edit(func(c *VMConfig) {}), "--disk", `format=qcow2,base=/b,path=/x`),
	} {
		if _, err := ParseVMArgs(args); err == nil {
			t.Errorf("%s: ParseVMArgs(%q) succeeded", name, args)
		}
	}
}

// TestQEMUArgvKernelAndBootDisk checks that a kernel wins over a boot disk:
// no bootindex, so the firmware runs the kernel.

// TestTSCHint checks when the TSC hint is added to the kernel command line.

// TestDetectDiskFormat checks the magic-based detection.
