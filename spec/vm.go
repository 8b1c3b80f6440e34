package spec

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Limits of VMs.
const (
	MaxVMCPUs       = 64        // largest vm.cpus
	MinVMMemory     = 64 << 20  // smallest vm.memory, 64M: less does not boot a usual kernel
	DefaultVMMemory = 256 << 20 // vm.memory if not set
	MaxVMMemory     = 1 << 40   // largest vm.memory, 1T
	MaxCmdlineLen   = 4096      // bytes in vm.cmdline
)

// DefaultForwardAddr is the host address of a forward written without one.
const DefaultForwardAddr = "127.0.0.1"

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

// vmUnsupported is the error for a container-only table in a VM spec.
func vmUnsupported(table string) string {
	return fmt.Sprintf(`[%s] is not supported for kind vm yet; it applies to kind "container" only`, table)
}

// vm builds a VM from the [vm] table t. Range checks are left to Validate.
func (p *parser) vm(t map[string]any) *VM {
	m := vmDefaults()
	p.checkKeys(key("vm"), t, vmKeys)
	if v, ok := t["kernel"]; ok {
		m.Kernel, _ = p.str(key("vm", "kernel"), v)
		m.Kernel = cleanPath(m.Kernel)
	}
	if v, ok := t["initrd"]; ok {
		m.Initrd, _ = p.str(key("vm", "initrd"), v)
		m.Initrd = cleanPath(m.Initrd)
	}
	if v, ok := t["cmdline"]; ok {
		m.Cmdline, _ = p.str(key("vm", "cmdline"), v)
	}
	if v, ok := t["cpus"]; ok {
		if n, ok := p.intIn(key("vm", "cpus"), v, 1, MaxVMCPUs); ok {
			m.CPUs = n
		}
	}
	if v, ok := t["memory"]; ok {
		if n, err := parseSizeValue(v); err != nil {
			p.add(key("vm", "memory"), err.Error())
		} else {
			m.Memory = n
		}
	}
	if v, ok := t["machine"]; ok {
		m.Machine, _ = p.str(key("vm", "machine"), v)
	}
	if v, ok := t["accel"]; ok {
		m.Accel, _ = p.str(key("vm", "accel"), v)
	}
	if v, ok := t["disk"]; ok {
		p.tables(key("vm", "disk"), v, `{ path = "/var/lib/cove/vm/disk.qcow2" }`, func(path []string, t map[string]any) {
			m.Disks = append(m.Disks, p.disk(path, t))
		})
	}
	if v, ok := t["network"]; ok {
		if t, ok := p.table(key("vm", "network"), v); ok {
			p.vmNetwork(t, &m.Network)
		}
	}
	return m
}

// disk builds a Disk from the table t at path.
func (p *parser) disk(path []string, t map[string]any) Disk {
	var d Disk
	k := func(name string) []string { return append(slices.Clip(path), name) }
	p.checkKeys(path, t, diskKeys)
	if v, ok := t["path"]; ok {
		d.Path, _ = p.str(k("path"), v)
		d.Path = cleanPath(d.Path)
	}
	if v, ok := t["format"]; ok {
		d.Format, _ = p.str(k("format"), v)
	}
	if v, ok := t["read_only"]; ok {
		d.ReadOnly, _ = p.boolean(k("read_only"), v)
	}
	if v, ok := t["boot"]; ok {
		d.Boot, _ = p.boolean(k("boot"), v)
	}
	return d
}

// vmNetwork fills n from the [vm.network] table t.
func (p *parser) vmNetwork(t map[string]any, n *VMNetwork) {
	p.checkKeys(key("vm", "network"), t, vmNetworkKeys)
	if v, ok := t["mode"]; ok {
		n.Mode, _ = p.str(key("vm", "network", "mode"), v)
	}
	if v, ok := t["forward"]; ok {
		k := key("vm", "network", "forward")
		list, _ := p.strings(k, v, `["127.0.0.1:2222:22/tcp"]`)
		for i, s := range list {
			f, err := ParseForward(s)
			if err != nil {
				p.errorf(k, "element %d: %v", i+1, err)
				continue
			}
			n.Forwards = append(n.Forwards, f)
		}
	}
}

// forwardSyntax describes the syntax of a forward, for errors.
const forwardSyntax = `must be "[HOSTADDR:]HOSTPORT:GUESTPORT[/PROTO]" such as "127.0.0.1:2222:22/tcp" or "8080:80" (HOSTADDR is an IPv4 address, default 127.0.0.1; PROTO is tcp or udp, default tcp)`

// ParseForward parses a port forward "[HOSTADDR:]HOSTPORT:GUESTPORT[/PROTO]":
// HOSTADDR is an IPv4 address and defaults to DefaultForwardAddr
// (127.0.0.1: reachable from the host only; 0.0.0.0 listens on all
// interfaces), the ports are decimal numbers from 1 to 65535 and PROTO is
// "tcp" (the default) or "udp".
func ParseForward(s string) (Forward, error) {
	bad := func(format string, args ...any) (Forward, error) {
		return Forward{}, fmt.Errorf("invalid forward %q: %s; %s", s, fmt.Sprintf(format, args...), forwardSyntax)
	}
	if msg := checkText(s); msg != "" {
		return Forward{}, fmt.Errorf("invalid forward %q: %s", s, msg)
	}
	f := Forward{HostAddr: DefaultForwardAddr, Proto: ProtoTCP}
	rest, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		if proto != ProtoTCP && proto != ProtoUDP {
			return bad("unknown protocol %q (allowed: tcp, udp)", proto)
		}
		f.Proto = proto
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 2:
	case 3:
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return bad("host address %q is not an IPv4 address such as 127.0.0.1 or 0.0.0.0", parts[0])
		}
		f.HostAddr = a.String()
		parts = parts[1:]
	default:
		return bad("wrong number of ':'-separated parts")
	}
	for i, what := range []string{"host", "guest"} {
		n, msg := parsePort(parts[i])
		if msg != "" {
			return bad("%s port %s", what, msg)
		}
		if i == 0 {
			f.HostPort = n
		} else {
			f.GuestPort = n
		}
	}
	return f, nil
}

// parsePort parses a decimal port number from 1 to 65535; msg says what
// is wrong otherwise ("%q is not a number", "70000 is out of range ...").
func parsePort(s string) (port int, msg string) {
	if s == "" || len(s) > 10 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Sprintf("%q is not a number", s)
	}
	n, _ := strconv.Atoi(s)
	if msg := checkPort(n); msg != "" {
		return 0, msg
	}
	return n, ""
}

// checkPort returns "" if n is a valid port, else what is wrong.
func checkPort(n int) string {
	if n < 1 || n > 65535 {
		return fmt.Sprintf("%d is out of range; must be 1 to 65535", n)
	}
	return ""
}

// String formats f as ParseForward accepts it, e.g. "127.0.0.1:2222:22/tcp".
func (f Forward) String() string {
	return fmt.Sprintf("%s:%d:%d/%s", f.HostAddr, f.HostPort, f.GuestPort, f.Proto)
}

// checkForward returns "" if f is valid, else what is wrong.
func checkForward(f Forward) string {
	if a, err := netip.ParseAddr(f.HostAddr); err != nil || !a.Is4() || a.String() != f.HostAddr {
		return fmt.Sprintf("host address %q is not an IPv4 address such as 127.0.0.1 or 0.0.0.0", f.HostAddr)
	}
	if msg := checkPort(f.HostPort); msg != "" {
		return "host port " + msg
	}
	if msg := checkPort(f.GuestPort); msg != "" {
		return "guest port " + msg
	}
	if f.Proto != ProtoTCP && f.Proto != ProtoUDP {
		return fmt.Sprintf("unknown protocol %q; allowed: %q, %q", f.Proto, ProtoTCP, ProtoUDP)
	}
	return ""
}

// vm checks m.
func (v *validator) vm(m *VM) {
	switch m.Machine {
	case MachineMicroVM, MachineQ35:
	default:
		v.add("vm.machine", fmt.Sprintf("invalid machine %q; allowed: %q, %q", m.Machine, MachineMicroVM, MachineQ35))
	}
	switch m.Accel {
	case AccelAuto, AccelKVM, AccelTCG:
	default:
		v.add("vm.accel", fmt.Sprintf("invalid accel %q; allowed: %q, %q, %q", m.Accel, AccelAuto, AccelKVM, AccelTCG))
	}
	bootDisk := false
	paths := make(map[string]int)
	for i, d := range m.Disks {
		k := keyString(key("vm", "disk", elem(i+1)))
		v.absPath(k+".path", d.Path, "/var/lib/cove/vm/disk.qcow2")
		if j, ok := paths[d.Path]; ok && d.Path != "" {
			v.add(k+".path", fmt.Sprintf("%q is already disk %d; each image may be attached once", d.Path, j))
		} else {
			paths[d.Path] = i + 1
		}
		switch d.Format {
		case "", FormatRaw, FormatQcow2:
		default:
			v.add(k+".format", fmt.Sprintf("invalid format %q; allowed: %q, %q (or leave format out to detect it)", d.Format, FormatRaw, FormatQcow2))
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
	if m.Kernel == "" {
		if !bootDisk {
			v.add("vm.kernel", `missing; required: an absolute path such as /var/lib/cove/vm/vmlinuz for direct kernel boot (it may be left out only with machine = "q35" and a disk with boot = true)`)
		}
	} else {
		v.absPath("vm.kernel", m.Kernel, "/var/lib/cove/vm/vmlinuz")
	}
	// Without kernel and boot disk, the missing kernel is the error.
	const needsKernel = " needs kernel (it is only used for direct kernel boot, not when booting from a disk)"
	if m.Initrd != "" {
		if m.Kernel == "" && bootDisk {
			v.add("vm.initrd", "initrd"+needsKernel)
		} else {
			v.absPath("vm.initrd", m.Initrd, "/var/lib/cove/vm/initrd.gz")
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
	if msg := checkRange(int64(m.CPUs), 1, MaxVMCPUs); msg != "" {
		v.add("vm.cpus", msg)
	}
	switch {
	case m.Memory < MinVMMemory:
		v.add("vm.memory", fmt.Sprintf("%s is below what a guest kernel needs (%s)", formatSize(m.Memory), formatSize(MinVMMemory)))
	case m.Memory > MaxVMMemory:
		v.add("vm.memory", fmt.Sprintf("%s is too large; at most %s", formatSize(m.Memory), formatSize(MaxVMMemory)))
	case m.Memory%(1<<20) != 0:
		v.add("vm.memory", fmt.Sprintf(`%s is not a whole number of megabytes; use a multiple of 1M such as "512M"`, formatSize(m.Memory)))
	}
	switch m.Network.Mode {
	case VMNetworkNone, VMNetworkUser:
	default:
		v.add("vm.network.mode", fmt.Sprintf("invalid mode %q; allowed: %q, %q", m.Network.Mode, VMNetworkNone, VMNetworkUser))
	}
	if len(m.Network.Forwards) > 0 && m.Network.Mode != VMNetworkUser {
		v.add("vm.network.forward", fmt.Sprintf(`forwards need mode = "user" in [vm.network] (mode %q gives the VM no network to forward to)`, m.Network.Mode))
	}
	for i, f := range m.Network.Forwards {
		if msg := checkForward(f); msg != "" {
			v.add("vm.network.forward", fmt.Sprintf("element %d: %s", i+1, msg))
			continue
		}
		for j, g := range m.Network.Forwards[:i] {
			if g.HostPort == f.HostPort && g.Proto == f.Proto && (g.HostAddr == f.HostAddr || g.HostAddr == "0.0.0.0" || f.HostAddr == "0.0.0.0") {
				v.add("vm.network.forward", fmt.Sprintf("element %d: host port %d/%s is already forwarded by element %d", i+1, f.HostPort, f.Proto, j+1))
				break
			}
		}
	}
}

// vmResources checks the resources of a VM against its memory.
func (v *validator) vmResources(r *Resources, m *VM) {
	if r.Memory != 0 && r.Memory >= MinMemory && r.Memory <= m.Memory {
		v.add("resources.memory", fmt.Sprintf("%s must be more than vm.memory (%s): it limits the QEMU process, which holds the guest's memory and its own", formatSize(r.Memory), formatSize(m.Memory)))
	}
}

// formatSize formats a number of bytes with the largest unit that divides
// it: "512M", "1G", "1536K", or "1000 bytes".
func formatSize(n uint64) string {
	for _, u := range []struct {
		shift uint
		unit  string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
