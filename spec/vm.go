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

// VMDefaults returns a spec of kind vm named name with every default
// applied: version 1, 1 CPU, 256M of memory, machine microvm, accel auto,
// no network, and the service defaults of Defaults. Callers building a
// spec from flags fill in VM.Kernel (or Disks) and then call Validate.
func VMDefaults(name string) *Spec {
	return &Spec{Name: name, Version: 1, Kind: KindVM, VM: vmDefaults(), Service: serviceDefaults()}
}

// vmDefaults returns a VM with the defaults.
func vmDefaults() *VM {
	return &VM{CPUs: 1, Memory: DefaultVMMemory, Machine: MachineMicroVM, Accel: AccelAuto, Network: VMNetwork{Mode: VMNetworkNone}}
}

// readVM builds a VM from the [vm] table t.
func readVM(t table) *VM {
	m := vmDefaults()
	t.read("kernel", &m.Kernel)
	t.read("initrd", &m.Initrd)
	t.read("cmdline", &m.Cmdline)
	t.read("cpus", &m.CPUs)
	t.read("memory", &m.Memory)
	t.read("machine", &m.Machine)
	t.read("accel", &m.Accel)
	t.each("disk", func(t table) {
		var d Disk
		t.read("path", &d.Path)
		t.read("format", &d.Format)
		t.read("read_only", &d.ReadOnly)
		t.read("boot", &d.Boot)
		m.Disks = append(m.Disks, d)
	})
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
	v.oneOf("vm.machine", "machine", m.Machine, "")
	v.oneOf("vm.accel", "accel", m.Accel, "")
	bootDisk := v.disks(m)
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
}

// disks checks the disks of m and reports whether one boots.
func (v *validator) disks(m *VM) (bootDisk bool) {
	paths := make(map[string]int)
	for i, d := range m.Disks {
		k := keyString(key("vm", "disk", elem(i+1)))
		v.absPath(k+".path", d.Path)
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
	return bootDisk
}

// boot checks the direct kernel boot of m: kernel, initrd and cmdline.
func (v *validator) boot(m *VM, bootDisk bool) {
	if m.Kernel == "" {
		if !bootDisk {
			v.add("vm.kernel", `missing; required: an absolute path such as `+example("vm.kernel")+` for direct kernel boot (it may be left out only with machine = "q35" and a disk with boot = true)`)
		}
	} else {
		v.absPath("vm.kernel", m.Kernel)
	}
	// Without kernel and boot disk, the missing kernel is the error.
	const needsKernel = " needs kernel (it is only used for direct kernel boot, not when booting from a disk)"
	if m.Initrd != "" {
		if m.Kernel == "" && bootDisk {
			v.add("vm.initrd", "initrd"+needsKernel)
		} else {
			v.absPath("vm.initrd", m.Initrd)
		}
	}
	if m.Cmdline != "" {
		switch {
		case m.Kernel == "" && bootDisk:
			v.add("vm.cmdline", "cmdline"+needsKernel)
		case checkText(m.Cmdline) != "":
			v.add("vm.cmdline", checkText(m.Cmdline))
		case len(m.Cmdline) > MaxCmdlineLen:
			v.add("vm.cmdline", fmt.Sprintf("too long (%d bytes); at most %d allowed", len(m.Cmdline), MaxCmdlineLen))
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
