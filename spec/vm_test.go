package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// vmMinimal is the smallest valid VM spec; the malformed cases below
// extend it from line 5 on.
const vmMinimal = `version = 1
kind = "vm"
[vm]
kernel = "/k"
`

// errorCase is a spec that Parse must reject; its first error must start
// with prefix (FILE:LINE:COL: KEY: ) and contain msg.
type errorCase struct {
	name   string
	src    string
	prefix string
	msg    string
}

// runErrorCases parses each case as t.toml and checks its first error.
func runErrorCases(t *testing.T, tests []errorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("t.toml", []byte(tt.src), "")
			if err == nil {
				t.Fatalf("no error; spec %+v", s)
			}
			if s != nil {
				t.Errorf("spec %+v returned with error", s)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			got := errs[0].Error()
			if !strings.HasPrefix(got, tt.prefix) || !strings.Contains(got, tt.msg) {
				t.Errorf("first error\n  %s\nwant prefix %q and substring %q\nall errors:\n%v", got, tt.prefix, tt.msg, err)
			}
		})
	}
}

func TestParseVMFull(t *testing.T) {
	want := &Spec{
		Name:        "vm",
		File:        "testdata/vm.toml",
		Version:     1,
		Kind:        KindVM,
		Description: "alpine guest",
		VM: &VM{
			Kernel:  "/var/lib/cove/vm/vmlinuz",
			Initrd:  "/var/lib/cove/vm/initrd.gz",
			Cmdline: "console=ttyS0 quiet root=/dev/vda",
			CPUs:    2,
			Memory:  512 << 20,
			Machine: MachineQ35,
			Accel:   AccelKVM,
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
	if want := (VM{Kernel: "/k", CPUs: 1, Memory: 256 << 20, Machine: "microvm", Accel: "auto", Network: VMNetwork{Mode: "none"}}); !reflect.DeepEqual(*got.VM, want) {
		t.Errorf("defaults %#v, want %#v", *got.VM, want)
	}
	if !reflect.DeepEqual(got.Security, Security{}) || got.Container != nil || got.Health != nil {
		t.Errorf("security %+v container %v health %v, want zero", got.Security, got.Container, got.Health)
	}
}

func TestParseVMLayouts(t *testing.T) {
	// Equivalent ways of writing the disks and network of a VM.
	want := &VM{
		Kernel: "/k", CPUs: 1, Memory: 256 << 20, Machine: MachineQ35, Accel: AccelAuto,
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

func TestParseVMErrors(t *testing.T) {
	network := vmMinimal + "[vm.network]\nmode = \"user\"\nforward = "
	runErrorCases(t, []errorCase{
		{"missing kernel", "version = 1\nkind = \"vm\"\n[vm]\ncpus = 2\n",
			"t.toml:3:2: vm.kernel: ", `missing; required: an absolute path such as /var/lib/cove/vm/vmlinuz for direct kernel boot (it may be left out only with machine = "q35" and a disk with boot = true)`},
		{"missing kernel with disk", "version = 1\nkind = \"vm\"\n[vm]\nmachine = \"q35\"\n[[vm.disk]]\npath = \"/d.img\"\n",
			"t.toml:3:2: vm.kernel: ", "missing; required"},
		{"missing vm table", "version = 1\nkind = \"vm\"\n",
			"t.toml: vm: ", `missing [vm] table; required for kind "vm"`},
		{"vm not a table", "version = 1\nkind = \"vm\"\nvm = \"alpine\"\n",
			"t.toml:3:1: vm: ", "must be a table ([vm] or vm = { ... }), not a string"},
		{"boot disk on microvm", vmMinimal + "[[vm.disk]]\npath = \"/d.img\"\nboot = true\n",
			"t.toml:7:1: vm.disk[1].boot: ", `boot = true needs machine = "q35" (machine "microvm" has no firmware to boot from a disk; it boots kernel directly)`},
		{"two boot disks", vmMinimal + "machine = \"q35\"\n[[vm.disk]]\npath = \"/a.img\"\nboot = true\n[[vm.disk]]\npath = \"/b.img\"\nboot = true\n",
			"t.toml:11:1: vm.disk[2].boot: ", "only one disk may have boot = true"},
		{"memory 32M", vmMinimal + "memory = \"32M\"\n",
			"t.toml:5:1: vm.memory: ", "32M is below what a guest kernel needs (64M)"},
		{"memory bytes", vmMinimal + "memory = 1000\n",
			"t.toml:5:1: vm.memory: ", "1000 bytes is below what a guest kernel needs (64M)"},
		{"memory not whole megabytes", vmMinimal + "memory = \"100000K\"\n",
			"t.toml:5:1: vm.memory: ", `100000K is not a whole number of megabytes; use a multiple of 1M such as "512M"`},
		{"memory 2T", vmMinimal + "memory = \"2T\"\n",
			"t.toml:5:1: vm.memory: ", "2T is too large; at most 1T"},
		{"memory bad size", vmMinimal + "memory = \"lots\"\n",
			"t.toml:5:1: vm.memory: ", `invalid size "lots"`},
		{"machine pc", vmMinimal + "machine = \"pc\"\n",
			"t.toml:5:1: vm.machine: ", `invalid machine "pc"; allowed: "microvm", "q35"`},
		{"accel hvf", vmMinimal + "accel = \"hvf\"\n",
			"t.toml:5:1: vm.accel: ", `invalid accel "hvf"; allowed: "auto", "kvm", "tcg"`},
		{"cpus 0", vmMinimal + "cpus = 0\n",
			"t.toml:5:1: vm.cpus: ", "0 is out of range; must be an integer from 1 to 64"},
		{"cpus 65", vmMinimal + "cpus = 65\n",
			"t.toml:5:1: vm.cpus: ", "65 is out of range; must be an integer from 1 to 64"},
		{"cpus float", vmMinimal + "cpus = 1.5\n",
			"t.toml:5:1: vm.cpus: ", "must be an integer, not a float"},
		{"kernel relative", strings.Replace(vmMinimal, `"/k"`, `"vmlinuz"`, 1),
			"t.toml:4:1: vm.kernel: ", `"vmlinuz" is not absolute; must be an absolute path such as /var/lib/cove/vm/vmlinuz`},
		{"initrd relative", vmMinimal + "initrd = \"initrd.gz\"\n",
			"t.toml:5:1: vm.initrd: ", `"initrd.gz" is not absolute`},
		{"initrd without kernel", "version = 1\nkind = \"vm\"\n[vm]\nmachine = \"q35\"\ninitrd = \"/i\"\ndisk = [{ path = \"/d\", boot = true }]\n",
			"t.toml:5:1: vm.initrd: ", "initrd needs kernel"},
		{"cmdline newline", vmMinimal + "cmdline = \"quiet\\ninit=/bin/sh\"\n",
			"t.toml:5:1: vm.cmdline: ", `must not contain control characters such as newlines (found '\n' at byte 5)`},
		{"cmdline too long", vmMinimal + "cmdline = \"" + strings.Repeat("x", 4097) + "\"\n",
			"t.toml:5:1: vm.cmdline: ", "too long (4097 bytes); at most 4096 allowed"},
		{"unknown vm key", vmMinimal + "bios = \"/b\"\n",
			"t.toml:5:1: vm.bios: ", `unknown key "bios" in [vm]; allowed: kernel, initrd, cmdline, cpus, memory, machine, accel, disk, network`},
		{"disk relative path", vmMinimal + "[[vm.disk]]\npath = \"data.qcow2\"\n",
			"t.toml:6:1: vm.disk[1].path: ", `"data.qcow2" is not absolute; must be an absolute path such as /var/lib/cove/vm/disk.qcow2`},
		{"disk without path", vmMinimal + "[[vm.disk]]\nread_only = true\n",
			"t.toml:5:6: vm.disk[1].path: ", "missing; required, an absolute path"},
		{"disk format vmdk", vmMinimal + "[[vm.disk]]\npath = \"/d.vmdk\"\nformat = \"vmdk\"\n",
			"t.toml:7:1: vm.disk[1].format: ", `invalid format "vmdk"; allowed: "raw", "qcow2" (or leave format out to detect it)`},
		{"second disk format", vmMinimal + "[[vm.disk]]\npath = \"/a\"\nformat = \"raw\"\n[[vm.disk]]\npath = \"/b\"\nformat = \"vhd\"\n",
			"t.toml:10:1: vm.disk[2].format: ", `invalid format "vhd"`},
		{"second disk without path", vmMinimal + "[[vm.disk]]\npath = \"/a\"\n\n  [[ vm . disk ]]\n  format = \"raw\"\n",
			"t.toml:8:11: vm.disk[2].path: ", "missing; required"},
		{"second inline disk", vmMinimal + "disk = [\n  { path = \"/a\" },\n  { format = \"raw\", path = \"b\" },\n]\n",
			"t.toml:7:21: vm.disk[2].path: ", `"b" is not absolute`},
		{"inline disk not a table", vmMinimal + "disk = [{ path = \"/a\" }, \"/b\"]\n",
			"t.toml:5:26: vm.disk[2]: ", `disk 2 must be a table such as { path = "/var/lib/cove/vm/disk.qcow2" }, not a string`},
		{"disk not an array", vmMinimal + "disk = \"/d\"\n",
			"t.toml:5:1: vm.disk: ", "must be an array of tables ([[vm.disk]] sections, or disk = [{ path = \"/var/lib/cove/vm/disk.qcow2\" }]), not a string"},
		{"disk unknown key", vmMinimal + "[[vm.disk]]\npath = \"/a\"\n[[vm.disk]]\npath = \"/b\"\nsize = \"10G\"\n",
			"t.toml:9:1: vm.disk[2].size: ", `unknown key "size" in [[vm.disk]]; allowed: path, format, read_only, boot`},
		{"disk read_only string", vmMinimal + "[[vm.disk]]\npath = \"/a\"\nread_only = \"yes\"\n",
			"t.toml:7:1: vm.disk[1].read_only: ", "must be a boolean (true or false), not a string"},
		{"duplicate disk", vmMinimal + "disk = [{ path = \"/a\" }, { path = \"//a\" }]\n",
			"t.toml:5:28: vm.disk[2].path: ", `"/a" is already disk 1; each image may be attached once`},
		{"forward x:22", network + "[\"x:22\"]\n",
			"t.toml:7:1: vm.network.forward: ", `element 1: invalid forward "x:22": host port "x" is not a number; must be "[HOSTADDR:]HOSTPORT:GUESTPORT[/PROTO]"`},
		{"forward port 70000", network + "[\"2222:22\", \"2223:70000\"]\n",
			"t.toml:7:1: vm.network.forward: ", `element 2: invalid forward "2223:70000": guest port 70000 is out of range; must be 1 to 65535`},
		{"forward host 0", network + "[\"0:22\"]\n",
			"t.toml:7:1: vm.network.forward: ", `host port 0 is out of range`},
		{"forward sctp", network + "[\"2222:22/sctp\"]\n",
			"t.toml:7:1: vm.network.forward: ", `unknown protocol "sctp" (allowed: tcp, udp)`},
		{"forward hostname", network + "[\"localhost:2222:22\"]\n",
			"t.toml:7:1: vm.network.forward: ", `host address "localhost" is not an IPv4 address such as 127.0.0.1 or 0.0.0.0`},
		{"forward ipv6", network + "[\"[::1]:2222:22\"]\n",
			"t.toml:7:1: vm.network.forward: ", `wrong number of ':'-separated parts`},
		{"forward twice", network + "[\"0.0.0.0:2222:22\", \"2222:23/tcp\"]\n",
			"t.toml:7:1: vm.network.forward: ", "element 2: host port 2222/tcp is already forwarded by element 1"},
		{"forward not strings", network + "[2222]\n",
			"t.toml:7:1: vm.network.forward: ", "element 1 must be a string, not an integer"},
		{"forward with mode none", vmMinimal + "[vm.network]\nforward = [\"2222:22\"]\n",
			"t.toml:6:1: vm.network.forward: ", `forwards need mode = "user" in [vm.network] (mode "none" gives the VM no network to forward to)`},
		{"network mode bridge", vmMinimal + "[vm.network]\nmode = \"bridge\"\n",
			"t.toml:6:1: vm.network.mode: ", `invalid mode "bridge"; allowed: "none", "user"`},
		{"network unknown key", vmMinimal + "network = { mode = \"user\", mac = \"x\" }\n",
			"t.toml:5:28: vm.network.mac: ", `unknown key "mac" in [vm.network]; allowed: mode, forward`},
		{"vm with kind container", minimal + "[vm]\nkernel = \"/k\"\n",
			"t.toml:6:2: vm: ", `[vm] goes with kind = "vm"; kind "container" takes a [container] table`},
		{"container with kind vm", vmMinimal + "[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\n",
			"t.toml:5:2: container: ", `[container] goes with kind = "container"; kind "vm" takes a [vm] table`},
		{"health for vm", vmMinimal + "[health]\ncommand = [\"/bin/true\"]\n",
			"t.toml:5:2: health: ", "[health] is not supported for kind vm yet"},
		{"security for vm", vmMinimal + "[security]\nseccomp = \"default\"\n",
			"t.toml:5:2: security: ", "[security] is not supported for kind vm yet"},
		{"resources below vm memory", vmMinimal + "memory = \"512M\"\n[resources]\nmemory = \"512M\"\n",
			"t.toml:7:1: resources.memory: ", "512M must be more than vm.memory (512M): it limits the QEMU process"},
		{"ready notify for vm", vmMinimal + "[service]\nready = \"notify\"\n",
			"t.toml:6:1: service.ready: ", `ready = "notify" is not supported for kind vm`},
		{"ready tcp for vm without forward", vmMinimal + "[vm.network]\nmode = \"user\"\nforward = [\"2222:22\"]\n[service]\nready = \"tcp:22\"\n",
			"t.toml:9:1: service.ready: ", "for kind vm, PORT is a host port and must be the host port of a tcp forward in [vm.network]"},
	})
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
health: [health] is not supported for kind vm yet; it applies to kind "container" only`
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

func TestParseVMMultipleErrors(t *testing.T) {
	src := `version = 1
kind = "vm"
[vm]
initrd = "rel/initrd"
cpus = 100
memory = "32M"
machine = "pc"
disk = [{ path = "/a", boot = true }, { path = "/a", format = "vmdk", colour = 1 }, 3]
[vm.network]
forward = ["2222:22", "2222:22"]
[service]
ready = "notify"
start_limit = { burst = 0 }
[security]
[depends]
after = ["bad", "a b", "db", "db"]
`
	_, err := Parse("bad.toml", []byte(src), "")
	want := []string{
		`bad.toml:4:1: vm.initrd: initrd needs kernel (it is only used for direct kernel boot, not when booting from a disk)`,
		`bad.toml:5:1: vm.cpus: 100 is out of range; must be an integer from 1 to 64`,
		`bad.toml:6:1: vm.memory: 32M is below what a guest kernel needs (64M)`,
		`bad.toml:7:1: vm.machine: invalid machine "pc"; allowed: "microvm", "q35"`,
		`bad.toml:8:41: vm.disk[2].path: "/a" is already disk 1`,
		`bad.toml:8:54: vm.disk[2].format: invalid format "vmdk"`,
		`bad.toml:8:71: vm.disk[2].colour: unknown key "colour" in [[vm.disk]]`,
		`bad.toml:8:85: vm.disk[3]: disk 3 must be a table`,
		`bad.toml:10:1: vm.network.forward: forwards need mode = "user"`,
		`bad.toml:10:1: vm.network.forward: element 2: host port 2222/tcp is already forwarded by element 1`,
		`bad.toml:12:1: service.ready: ready = "notify" is not supported for kind vm`,
		`bad.toml:13:17: service.start_limit.burst: 0 is out of range; must be an integer >= 1`,
		`bad.toml:14:2: security: [security] is not supported for kind vm yet`,
		`bad.toml:16:1: depends.after: element 1: "bad" is this workload itself`,
		`bad.toml:16:1: depends.after: element 2: invalid dependency "a b"`,
		`bad.toml:16:1: depends.after: element 4: "db" is listed twice (also element 3)`,
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not Errors", err)
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, e := range errs {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d:\n  %s\nwant prefix\n  %s", i, e, want[i])
		}
	}
}
