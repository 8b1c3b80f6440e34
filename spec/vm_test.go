package spec

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// vmMinimal is the smallest valid VM spec.
const vmMinimal = `version = 1
kind = "vm"
[vm]
kernel = "/k"
`

func TestParseVMFull(t *testing.T) {
	want := &Spec{
		Name:        "vm",
		File:        "testdata/vm.toml",
		Version:     1,
		Kind:        KindVM,
		Description: "alpine guest",
		VM: &VM{
			Kernel:   "/var/lib/cove/vm/vmlinuz",
			Initrd:   "/var/lib/cove/vm/initrd.gz",
			Cmdline:  "console=ttyS0 quiet root=/dev/vda",
			CPUs:     2,
			Memory:   512 << 20,
			Machine:  MachineQ35,
			Accel:    AccelKVM,
			Firmware: FirmwareBIOS, Display: DisplayNone, OS: OSLinux,
			Disks: []Disk{
				{Path: "/var/lib/cove/vm/root.qcow2", Format: FormatQcow2, Boot: true},
				{Path: "/var/lib/cove/vm/data.img", Format: FormatRaw, ReadOnly: true},
			},
			Network: VMNetwork{Mode: VMNetworkUser, Forwards: []Forward{
				{HostAddr: "127.0.0.1", HostPort: 2222, GuestPort: 22, Proto: ProtoTCP},
				{HostAddr: "127.0.0.1", HostPort: 8080, GuestPort: 80, Proto: ProtoTCP},
				{HostAddr: "0.0.0.0", HostPort: 5353, GuestPort: 53, Proto: ProtoUDP},
			}},
		},
		Resources: Resources{Memory: 768 << 20, CPUs: 2, Pids: 64},
		Service: Service{
			Restart: RestartAlways, RestartDelay: time.Second, StopTimeout: 10 * time.Second,
			StartLimit: StartLimit{Burst: 3, Interval: time.Minute},
			Ready:      ReadyTCP, ReadyPort: 8080,
		},
		Depends: Depends{After: []string{"network-online.target"}, Wants: []string{"network-online.target"}},
		Install: Install{WantedBy: []string{"multi-user.target"}},
	}
	got, err := Load("testdata/vm.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %#v\nwant %#v\n got vm %#v\nwant vm %#v", got, want, got.VM, want.VM)
	}
}

func TestParseVMDefaults(t *testing.T) {
	want := VMDefaults("t")
	want.File = "t.toml"
	want.VM.Kernel = "/k"
	got, err := Parse("t.toml", []byte(vmMinimal), "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v\n got vm %#v\nwant vm %#v", got, want, got.VM, want.VM)
	}
	if want := (VM{Kernel: "/k", CPUs: 1, Memory: 256 << 20, Machine: "microvm", Accel: "auto", Firmware: "bios", Display: "none", OS: "linux", Network: VMNetwork{Mode: "none"}}); !reflect.DeepEqual(*got.VM, want) {
		t.Errorf("defaults %#v, want %#v", *got.VM, want)
	}
	if !reflect.DeepEqual(got.Security, Security{}) || got.Container != nil || got.Health != nil {
		t.Errorf("security %+v container %v health %v, want zero", got.Security, got.Container, got.Health)
	}
}

func TestParseVMLayouts(t *testing.T) {
	// Equivalent ways of writing the disks and network of a VM.
	want := &VM{
		Kernel: "/k", CPUs: 1, Memory: 256 << 20, Machine: MachineQ35, Accel: AccelAuto, Firmware: FirmwareBIOS, Display: DisplayNone, OS: OSLinux,
		Disks:   []Disk{{Path: "/a.img"}, {Path: "/b.img", ReadOnly: true}},
		Network: VMNetwork{Mode: VMNetworkUser, Forwards: []Forward{{"127.0.0.1", 2222, 22, ProtoTCP}}},
	}
	for _, src := range []string{
		vmMinimal + "machine = \"q35\"\n[[vm.disk]]\npath = \"/a.img\"\n[[vm.disk]]\npath = \"/b.img\"\nread_only = true\n[vm.network]\nmode = \"user\"\nforward = [\"2222:22\"]\n",
		vmMinimal + "machine = \"q35\"\ndisk = [{ path = \"/a.img\" }, { path = \"/b.img\", read_only = true }]\nnetwork = { mode = \"user\", forward = [\"127.0.0.1:2222:22/tcp\"] }\n",
		"version = 1\nkind = \"vm\"\nvm.kernel = \"/k\"\nvm.machine = \"q35\"\nvm.network.mode = \"user\"\nvm.network.forward = [\"127.0.0.1:2222:22\"]\n[[vm.disk]]\npath = \"/a.img\"\n[[vm.disk]]\npath = \"/b.img\"\nread_only = true\n",
	} {
		s, err := Parse("t.toml", []byte(src), "")
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if !reflect.DeepEqual(s.VM, want) {
			t.Errorf("%q:\n got %#v\nwant %#v", src, s.VM, want)
		}
	}
}

// TestParseVMBridge: mode = "bridge" joins network "cove" unless network
// names another; ip and ports are read as written, and the spec's Join
// says where the VM joins (a VM on the user network joins none).
func TestParseVMBridge(t *testing.T) {
	for _, c := range []struct {
		src  string
		want VMNetwork
	}{
		{"[vm.network]\nmode = \"bridge\"\n", VMNetwork{Mode: VMNetworkBridge, Network: NetworkCove}},
		{"[vm.network]\nmode = \"bridge\"\nnetwork = \"lab\"\nip = \"10.78.0.9\"\nports = [\"8080:80\", \"127.0.0.1:2222:22\"]\n",
			VMNetwork{Mode: VMNetworkBridge, Network: "lab", IP: "10.78.0.9", Ports: []string{"8080:80", "127.0.0.1:2222:22"}}},
	} {
		s, err := Parse("t.toml", []byte(vmMinimal+c.src), "")
		if err != nil {
			t.Errorf("%q: %v", c.src, err)
			continue
		}
		if !reflect.DeepEqual(s.VM.Network, c.want) {
			t.Errorf("%q:\n got %#v\nwant %#v", c.src, s.VM.Network, c.want)
		}
		want := Join{Table: "vm.network", Network: c.want.Network, IP: c.want.IP, Ports: c.want.Ports}
		if j := s.Join(); !reflect.DeepEqual(j, want) || j.Key("ports[2]") != "vm.network.ports[2]" {
			t.Errorf("%q: Join %#v, want %#v", c.src, j, want)
		}
	}
	s, err := Load("testdata/vm.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	if j := s.Join(); j.Network != "" {
		t.Errorf("a VM on the user network joins %q", j.Network)
	}
}

func TestParseVMBootDisk(t *testing.T) {
	// With a boot disk on q35 the kernel may be left out.
	src := "version = 1\nkind = \"vm\"\n[vm]\nmachine = \"q35\"\n[[vm.disk]]\npath = \"/var/lib/cove/vm/win.qcow2\"\nboot = true\n"
	s, err := Parse("t.toml", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	if s.VM.Kernel != "" || len(s.VM.Disks) != 1 || !s.VM.Disks[0].Boot {
		t.Errorf("vm %+v", s.VM)
	}
}

func TestParseForward(t *testing.T) {
	for in, want := range map[string]Forward{
		"127.0.0.1:2222:22/tcp": {"127.0.0.1", 2222, 22, ProtoTCP},
		"2222:22":               {"127.0.0.1", 2222, 22, ProtoTCP},
		"0.0.0.0:53:53/udp":     {"0.0.0.0", 53, 53, ProtoUDP},
		"65535:1/udp":           {"127.0.0.1", 65535, 1, ProtoUDP},
		"10.0.0.1:08080:80":     {"10.0.0.1", 8080, 80, ProtoTCP},
	} {
		got, err := ParseForward(in)
		if err != nil || got != want {
			t.Errorf("ParseForward(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil {
			if again, err := ParseForward(got.String()); err != nil || again != got {
				t.Errorf("ParseForward(%q.String()) = %+v, %v", in, again, err)
			}
		}
	}
	for _, in := range []string{"", "22", "x:22", ":22", "22:", "1:2:3:4", "2222:22/", "2222:22/TCP", "2222:22/tcp/udp",
		"::1:22:22", "[::1]:22:22", "::ffff:127.0.0.1:22:22", "1.2.3:22:22", "+1:22", "-1:22", "1e3:22", "2222:22 ", "2222:22\n", "99999999999:1"} {
		if got, err := ParseForward(in); err == nil {
			t.Errorf("ParseForward(%q) = %+v, want error", in, got)
		}
	}
}

func TestValidateVMFlagBuilt(t *testing.T) {
	s := VMDefaults("alpine")
	s.VM.Kernel = "/var/lib/cove/vm/vmlinuz"
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	s.VM.CPUs = 0
	s.VM.Memory = 0
	s.VM.Disks = []Disk{{Path: "/a.img"}, {Path: "b.img", Boot: true}}
	s.VM.Network.Forwards = []Forward{{HostAddr: "", HostPort: 1, GuestPort: 1, Proto: ProtoTCP}}
	s.Security.CapAdd = []string{"NET_ADMIN"}
	s.Health = DefaultHealth([]string{"/bin/true"})
	s.Health.TCP = 22
	s.Container = &Container{}
	err := s.Validate()
	want := `container: [container] goes with kind = "container"; kind "vm" takes a [vm] table
vm.disk[2].path: "b.img" is not absolute; must be an absolute path such as /var/lib/cove/vm/disk.qcow2
vm.disk[2].boot: boot = true needs machine = "q35" (machine "microvm" has no firmware to boot from a disk; it boots kernel directly)
vm.cpus: 0 is out of range; must be an integer from 1 to 64
vm.memory: 0 bytes is below what a guest kernel needs (64M)
vm.network.forward: forwards need mode = "user" in [vm.network] (mode "none" gives the VM no network to forward to)
vm.network.forward: element 1: host address "" is not an IPv4 address such as 127.0.0.1 or 0.0.0.0
security: [security] is not supported for kind vm yet; it applies to kind "container" only
health: a VM's health check needs one of command = [...] (run in the guest by its QEMU guest agent), tcp = PORT or http = PORT (the guest port the host probes)
health.tcp: the host cannot reach a guest without a network: set [vm.network] mode = "user" (with a forward of the port) or "bridge"`
	if err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant\n%s", err, want)
	}
	var first *Error
	if errors.As(err, &first); first == nil || first.Key != "container" {
		t.Errorf("first error %+v", first)
	}

	// A VM spec without [vm]; a container spec with one.
	s = VMDefaults("x")
	s.VM = nil
	if err := s.Validate(); err == nil || err.Error() != `vm: missing [vm] table; required for kind "vm"` {
		t.Errorf("Validate without VM: %v", err)
	}
	s = Defaults("x")
	s.Container.Rootfs, s.Container.Command = "/r", []string{"/x"}
	s.VM = vmDefaults()
	if err := s.Validate(); err == nil || err.Error() != `vm: [vm] goes with kind = "vm"; kind "container" takes a [container] table` {
		t.Errorf("Validate container with VM: %v", err)
	}
}

func TestKeyPositionsArrays(t *testing.T) {
	src := "[[vm.disk]]\n" +
		"path = \"/a\"\n" +
		"[[vm.disk]]\n" +
		"[vm.disk.sub]\n" +
		"x = 1\n" +
		"[[vm.disk.n]]\n" +
		"[vm]\n" +
		"l = [[1, { k = 2 }], { m = 3 }]\n"
	got, _ := keyPositions([]byte(src))
	want := map[string]position{
		"vm": {1, 3}, "vm.disk": {1, 6}, "vm.disk[1]": {1, 6}, "vm.disk[1].path": {2, 1},
		"vm.disk[2]": {3, 6}, "vm.disk[2].sub": {4, 10}, "vm.disk[2].sub.x": {5, 1},
		"vm.disk[2].n": {6, 11}, "vm.disk[2].n[1]": {6, 11},
		"vm.l": {8, 1}, "vm.l[1]": {8, 6}, "vm.l[1][1]": {8, 7}, "vm.l[1][2]": {8, 10}, "vm.l[1][2].k": {8, 12},
		"vm.l[2]": {8, 22}, "vm.l[2].m": {8, 24},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keyPositions:\n got %v\nwant %v", got, want)
	}
	for k, want := range map[string]string{"vm.disk[2].path": "vm.disk[2]", "vm.disk[2]": "vm.disk", "vm.disk": "vm", "vm": "", `env."a.b"`: "env", `a."b\\".c`: `a."b\\"`, `"x[1]"`: ""} {
		if got := parentKey(k); got != want {
			t.Errorf("parentKey(%q) = %q, want %q", k, got, want)
		}
	}
}

// TestWindowsPreset: os = "windows" presets what Windows 11 requires and
// the spec's own keys win over it.
func TestWindowsPreset(t *testing.T) {
	s, err := Parse("win.toml", []byte("version = 1\nkind = \"vm\"\n[vm]\nos = \"windows\"\nmemory = \"8G\"\ntpm = false\n[[vm.disk]]\npath = \"/w.qcow2\"\nboot = true\n"), "win")
	if err != nil {
		t.Fatal(err)
	}
	m := s.VM
	if m.Machine != MachineQ35 || m.Firmware != FirmwareUEFISecure || m.Display != DisplayVNC || m.CPUs != 2 {
		t.Errorf("preset not applied: %+v", m)
	}
	if m.Memory != 8<<30 || m.TPM {
		t.Errorf("the spec's memory and tpm did not win over the preset: memory %d, tpm %v", m.Memory, m.TPM)
	}
}
