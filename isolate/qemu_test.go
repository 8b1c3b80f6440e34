package isolate

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// testVM is the VM a unit's ExecStart= describes with these arguments:
// the launcher reads them as "cove launch-vm" does.
func testVM() launch.VMConfig {
	c, err := launch.ParseVMArgs([]string{
		"--name", "db", "--kernel", "/var/lib/cove/vm/vmlinuz", "--initrd", "/var/lib/cove/vm/initrd.gz",
		"--cmdline", "console=ttyS0 quiet", "--cpus", "2", "--memory", "512",
		"--machine", "microvm", "--accel", "tcg", "--network", "user",
		"--qmp-socket", "/run/cove/vm/db/qmp.sock", "--console-socket", "/run/cove/vm/db/console.sock",
		"--disk", "format=qcow2,read-only=false,boot=false,path=/var/lib/cove/vm/data.qcow2",
		"--forward", "127.0.0.1:2222:22/tcp",
	})
	if err != nil {
		panic(err)
	}
	return c
}

func TestQEMUArgvMicroVM(t *testing.T) {
	c := testVM()
	got, err := QEMUArgv(c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"qemu-system-x86_64",
		"-name", "guest=db",
		"-nodefaults", "-no-user-config", "-nographic",
		"-machine", "microvm,acpi=on,pcie=off",
		"-accel", "tcg,tb-size=256", "-cpu", "max",
		"-smp", "2", "-m", "512",
		"-kernel", "/var/lib/cove/vm/vmlinuz",
		"-initrd", "/var/lib/cove/vm/initrd.gz",
		"-append", "console=ttyS0 quiet",
		"-chardev", "stdio,id=log,signal=off", "-serial", "chardev:log",
		"-chardev", "socket,id=console,path=/run/cove/vm/db/console.sock,server=on,wait=off",
		"-device", "virtio-serial-device", "-device", "virtconsole,chardev=console",
		"-chardev", "socket,id=agent,path=/run/cove/vm/db/agent.sock,server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=org.qemu.guest_agent.0",
		"-chardev", "socket,id=qmp,path=/run/cove/vm/db/qmp.sock,server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-drive", "if=none,id=disk0,file=/var/lib/cove/vm/data.qcow2,format=qcow2,file.locking=on",
		"-device", "virtio-blk-device,drive=disk0",
		"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22",
		"-device", "virtio-net-device,netdev=net0",
		"-device", "pvpanic",
		"-action", "panic=exit-failure",
		"-no-reboot",
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("argv:\n got %q\nwant %q", got, want)
	}
}

func TestQEMUArgvQ35(t *testing.T) {
	c := testVM()
	c.Machine, c.Accel = spec.MachineQ35, spec.AccelKVM
	c.Kernel, c.Initrd, c.Cmdline = "", "", ""
	c.Disks = []launch.VMDisk{
		{Path: "/vm/root,1.qcow2", Format: spec.FormatQcow2, Boot: true},
		{Path: "/vm/seed.img", Format: spec.FormatRaw, ReadOnly: true},
	}
	c.Network, c.Forwards = spec.VMNetworkNone, nil
	c.Name = "a,b"
	got, err := QEMUArgv(c)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(got, " ")
	for _, want := range []string{
		"-name guest=a,,b ",
		"-machine q35 ",
		"-accel kvm -cpu host ",
		"-drive if=none,id=disk0,file=/vm/root,,1.qcow2,format=qcow2,file.locking=on -device virtio-blk-pci,drive=disk0,bootindex=0 ",
		"-drive if=none,id=disk1,file=/vm/seed.img,format=raw,file.locking=on,readonly=on -device virtio-blk-pci,drive=disk1 ",
		"-chardev socket,id=console,path=/run/cove/vm/db/console.sock,server=on,wait=off -device virtio-serial-pci -device virtconsole,chardev=console ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("argv lacks %q:\n%s", want, s)
		}
	}
	for _, bad := range []string{"-kernel", "-append", "-netdev", "logfile"} {
		if strings.Contains(s, bad) {
			t.Errorf("argv has %q:\n%s", bad, s)
		}
	}
}

func TestQEMUArgvForwards(t *testing.T) {
	c := testVM()
	c.Machine = spec.MachineQ35
	c.Forwards = []launch.Forward{
		{HostAddr: "127.0.0.1", HostPort: 8080, GuestPort: 80, Proto: "tcp"},
		{HostAddr: "0.0.0.0", HostPort: 5353, GuestPort: 53, Proto: "udp"},
	}
	got, err := QEMUArgv(c)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(got, " ")
	want := "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:5353-:53 -device virtio-net-pci,netdev=net0"
	if !strings.Contains(s, want) {
		t.Errorf("argv lacks %q:\n%s", want, s)
	}
}

// TestQEMUArgvBridge: on a bridge, the guest's NIC is attached to the
// workload's tap by name, with no helper scripts, and has the MAC the
// network's anti-spoofing rules expect.
func TestQEMUArgvBridge(t *testing.T) {
	c := testVM()
	c.Network, c.Forwards, c.NetworkName = spec.VMNetworkBridge, nil, "lab"
	for machine, nic := range map[string]string{spec.MachineMicroVM: "virtio-net-device", spec.MachineQ35: "virtio-net-pci"} {
		c.Machine = machine
		got, err := QEMUArgv(c)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(" -netdev tap,id=net0,ifname=%s,script=no,downscript=no -device %s,netdev=net0,mac=%v ",
			plan.HostIfName("lab", "db"), nic, plan.WorkloadMAC("lab", "db"))
		if s := strings.Join(got, " "); !strings.Contains(s, want) || strings.Count(s, "-netdev") != 1 {
			t.Errorf("%s: argv lacks %q:\n%s", machine, want, s)
		}
	}
}

// TestGuestNetwork: a VM booting a kernel gets its address on the
// command line as ip= (with the gateway as DNS server when the network
// has DNS) and its IPv6 twin as cove.ip6/cove.gw6; a disk-booted one
// gets nothing.
func TestGuestNetwork(t *testing.T) {
	n := plan.Complete(plan.Network{Name: "lab", Subnet4: netip.MustParsePrefix("10.78.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:78::/64")})
	a := netip.MustParseAddr("10.78.0.9")
	ep := plan.Endpoint{Network: n, HostIf: plan.HostIfName("lab", "db"), Addr4: a, Addr6: plan.Addr6For(n, a), MAC: plan.WorkloadMAC("lab", "db")}
	c := testVM()
	want := "console=ttyS0 quiet ip=10.78.0.9::10.78.0.1:255.255.255.0:db:eth0:off:10.78.0.1 cove.ip6=fd00:78::9/64 cove.gw6=fd00:78::1"
	if got := GuestNetwork(c, ep).Cmdline; got != want {
		t.Errorf("cmdline %q, want %q", got, want)
	}
	ep.Network.NoDNS = true
	c.Cmdline = ""
	want = "ip=10.78.0.9::10.78.0.1:255.255.255.0:db:eth0:off cove.ip6=fd00:78::9/64 cove.gw6=fd00:78::1"
	if got := GuestNetwork(c, ep).Cmdline; got != want {
		t.Errorf("without DNS: cmdline %q, want %q", got, want)
	}
	d := plan.Default()
	ep = plan.Endpoint{Network: d, Addr4: netip.MustParseAddr("10.77.1.2")}
	if got := GuestNetwork(c, ep).Cmdline; got != "ip=10.77.1.2::10.77.0.1:255.255.0.0:db:eth0:off:10.77.0.1" {
		t.Errorf("default network, no IPv6 address: cmdline %q", got)
	}
	c.Kernel, c.Machine = "", spec.MachineQ35
	if got := GuestNetwork(c, ep); !reflect.DeepEqual(got, c) {
		t.Errorf("a disk-booted VM changed: %+v", got)
	}
}

func TestQEMUArgvKernelAndBootDisk(t *testing.T) {
	c := testVM()
	c.Machine = spec.MachineQ35
	c.Disks[0].Boot = true
	got, err := QEMUArgv(c)
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); strings.Contains(s, "bootindex") || !strings.Contains(s, "-kernel ") {
		t.Errorf("argv: %s", s)
	}
}

func TestTSCHint(t *testing.T) {
	c := testVM()
	if got := TSCHint(c, 2596144).Cmdline; got != "console=ttyS0 quiet tsc_early_khz=2596144" {
		t.Errorf("microvm/tcg: cmdline %q", got)
	}
	for name, f := range map[string]func(*launch.VMConfig){
		"kvm":      func(c *launch.VMConfig) { c.Accel = spec.AccelKVM },
		"q35":      func(c *launch.VMConfig) { c.Machine = spec.MachineQ35 },
		"user set": func(c *launch.VMConfig) { c.Cmdline += " tsc_early_khz=1000" },
	} {
		c := testVM()
		f(&c)
		if got := TSCHint(c, 2596144); got.Cmdline != c.Cmdline {
			t.Errorf("%s: cmdline changed to %q", name, got.Cmdline)
		}
	}
	if got := TSCHint(c, 0); got.Cmdline != c.Cmdline {
		t.Errorf("unknown frequency: cmdline changed to %q", got.Cmdline)
	}
}
