package isolate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func testVM() VMConfig {
	return VMConfig{
		Name: "db", Kernel: "/var/lib/cove/vm/vmlinuz", Initrd: "/var/lib/cove/vm/initrd.gz",
		Cmdline: "console=ttyS0 quiet", CPUs: 2, MemoryMiB: 512,
		Machine: MachineMicroVM, Accel: AccelTCG,
		Disks:         []VMDisk{{Path: "/var/lib/cove/vm/data.qcow2", Format: DiskQCOW2}},
		Network:       NetworkUser,
		Forwards:      []Forward{{HostAddr: "127.0.0.1", HostPort: 2222, GuestPort: 22, Proto: "tcp"}},
		QMPSocket:     "/run/cove/vm/db/qmp.sock",
		ConsoleSocket: "/run/cove/vm/db/console.sock",
	}
}

// TestQEMUArgvMicroVM pins the whole command line of a typical microvm.
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

// TestQEMUArgvQ35 checks the q35 differences: PCI devices, KVM, a boot disk
// through the firmware, read-only disks, escaped commas, no network.
func TestQEMUArgvQ35(t *testing.T) {
	c := testVM()
	c.Machine, c.Accel = MachineQ35, AccelKVM
	c.Kernel, c.Initrd, c.Cmdline = "", "", ""
	c.Disks = []VMDisk{
		{Path: "/vm/root,1.qcow2", Format: DiskQCOW2, Boot: true},
		{Path: "/vm/seed.img", Format: DiskRaw, ReadOnly: true},
	}
	c.Network, c.Forwards = NetworkNone, nil
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

// TestQEMUArgvForwards checks hostfwd= for several forwards, udp and all
// host addresses.
func TestQEMUArgvForwards(t *testing.T) {
	c := testVM()
	c.Machine = MachineQ35
	c.Forwards = []Forward{
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
				{Path: "/v/a,path=/b,format=raw", Format: DiskRaw, ReadOnly: true},
				{Path: "/v/b c.qcow2", Format: DiskQCOW2},
			}
			c.Forwards = append(c.Forwards, Forward{HostAddr: "0.0.0.0", HostPort: 53, GuestPort: 53, Proto: "udp"})
			return c
		}(),
		func() VMConfig {
			c := testVM()
			c.Machine, c.Accel, c.Kernel, c.Initrd, c.Cmdline = MachineQ35, AccelKVM, "", "", ""
			c.Disks[0].Boot = true
			c.Network, c.Forwards = NetworkNone, nil
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
		"forward, no net": edit(func(c *VMConfig) { c.Network = NetworkNone }),
		"microvm no kern": edit(func(c *VMConfig) { c.Kernel, c.Initrd, c.Cmdline = "", "", "" }),
		"two boot disks": edit(func(c *VMConfig) {
			c.Machine = MachineQ35
			c.Disks = append(c.Disks, c.Disks[0])
			c.Disks[0].Boot, c.Disks[1].Boot = true, true
		}),
		"no forward address": edit(func(c *VMConfig) { c.Forwards[0].HostAddr = "" }),
		"q35 no boot disk":   edit(func(c *VMConfig) { c.Machine = MachineQ35; c.Kernel, c.Initrd, c.Cmdline = "", "", "" }),
		"disk format":        append(edit(func(c *VMConfig) {}), "--disk", "format=vmdk,path=/x"),
		"relative disk":      append(edit(func(c *VMConfig) {}), "--disk", "format=raw,path=x"),
		"disk key":           append(edit(func(c *VMConfig) {}), "--disk", "format=raw,cache=none,path=/x"),
		"forward":            append(edit(func(c *VMConfig) {}), "--forward", "localhost:1:2/tcp"),
		"stray argument":     append(edit(func(c *VMConfig) {}), "extra"),
		"unknown flag":       append(edit(func(c *VMConfig) {}), "--bogus"),
	} {
		if _, err := ParseVMArgs(args); err == nil {
			t.Errorf("%s: ParseVMArgs(%q) succeeded", name, args)
		}
	}
}

// TestQEMUArgvKernelAndBootDisk checks that a kernel wins over a boot disk:
// no bootindex, so the firmware runs the kernel.
func TestQEMUArgvKernelAndBootDisk(t *testing.T) {
	c := testVM()
	c.Machine = MachineQ35
	c.Disks[0].Boot = true
	got, err := QEMUArgv(c)
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); strings.Contains(s, "bootindex") || !strings.Contains(s, "-kernel ") {
		t.Errorf("argv: %s", s)
	}
}

// TestTSCHint checks when the TSC hint is added to the kernel command line.
func TestTSCHint(t *testing.T) {
	c := testVM()
	if got := TSCHint(c, 2596144).Cmdline; got != "console=ttyS0 quiet tsc_early_khz=2596144" {
		t.Errorf("microvm/tcg: cmdline %q", got)
	}
	for name, f := range map[string]func(*VMConfig){
		"kvm":      func(c *VMConfig) { c.Accel = AccelKVM },
		"q35":      func(c *VMConfig) { c.Machine = MachineQ35 },
		"user set": func(c *VMConfig) { c.Cmdline += " tsc_early_khz=1000" },
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

// TestDetectDiskFormat checks the magic-based detection.
func TestDetectDiskFormat(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"qcow2": "QFI\xfb\x00\x00\x00\x03rest",
		"raw":   "\x00\x00\x00\x00\x00\x00",
		"short": "QF",
		"empty": "",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		want := DiskRaw
		if name == "qcow2" {
			want = DiskQCOW2
		}
		if got, err := DetectDiskFormat(p); err != nil || got != want {
			t.Errorf("%s: DetectDiskFormat = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := DetectDiskFormat(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}
