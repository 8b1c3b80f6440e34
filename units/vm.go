package units

import (
	"cmp"
	"strconv"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// QEMUOverhead is what a VM's cgroup gets on top of the guest's memory when
// the spec sets no resources.memory: QEMU's own heap, device state and,
// under TCG, the translated-code buffer (capped at isolate.TCGBufferMiB,
// 256 MiB). For an idle 256 MiB guest under TCG, QEMU was measured at
// 225 MiB resident: 94 MiB guest RAM, 40 MiB translated code, 46 MiB of
// mapped kernel file, 29 MiB binary and libraries, 16 MiB heap
// (docs/benchmarks.md, go run ./bench/vm).
const QEMUOverhead = 384 << 20

// vm adds how a VM starts and stops: the launcher execs QEMU (Type=exec:
// the unit is started once QEMU runs, and QEMU is the main process), and
// ExecStop= presses the guest's power button through QMP, then ends QEMU
// after stop_timeout.
func vm(u *Unit, s *spec.Spec, opt Options) {
	c := VMConfig(s)
	u.add(SectionService, "Type", "", Str("exec"))
	u.add(SectionService, "ExecStart", "", Exec(append([]string{opt.Launcher, launch.VMLaunchVerb}, c.Args()...)))
	if f, ok := readyForward(s); ok {
		// The unit is active only once ExecStartPost= returns.
		u.add(SectionService, "ExecStartPost", "", Exec([]string{opt.Launcher, launch.VMReadyVerb,
			"--address", f.HostAddr, "--port", strconv.Itoa(f.HostPort)}))
	}
	u.add(SectionService, "ExecStop", "", Exec([]string{opt.Launcher, launch.VMStopVerb,
		"--qmp-socket", c.QMPSocket, "--timeout", s.Service.StopTimeout.String()}))
	releaseNetwork(u, s, opt)
	if s.Resources.Memory == 0 {
		u.add(SectionService, "MemoryMax", "", Uint(s.VM.Memory+QEMUOverhead))
	}
	// QEMU's disks are files and its network user-mode or a tap: of the
	// host's devices it needs /dev/kvm at most, and on a bridge
	// /dev/net/tun (the launcher creates the tap, QEMU attaches to it),
	// besides the pseudo devices a closed policy allows.
	u.add(SectionService, "DevicePolicy", "", Str("closed"))
	if s.VM.Accel != spec.AccelTCG {
		u.add(SectionService, "DeviceAllow", "", DeviceAllow{Path: "/dev/kvm", Perms: "rw"})
	}
	if c.NetworkName != "" {
		u.add(SectionService, "DeviceAllow", "", DeviceAllow{Path: "/dev/net/tun", Perms: "rw"})
	}
}

// VMConfig is the launcher configuration of a VM spec. Accel may still be
// "auto" (the launcher decides on the host it runs on); disk formats must
// have been pinned (hostcheck.PrepareVM), but an "oci:" base's: the
// launcher reads it from the image.
func VMConfig(s *spec.Spec) launch.VMConfig {
	v := s.VM
	c := launch.VMConfig{
		Name: s.Name, Kernel: v.Kernel, Initrd: v.Initrd, Cmdline: v.Cmdline,
		CPUs: v.CPUs, MemoryMiB: v.Memory >> 20, Machine: v.Machine, Accel: v.Accel,
		Network: v.Network.Mode, Forwards: v.Network.Forwards,
		QMPSocket:     launch.QMPSocket(s.Name),
		ConsoleSocket: launch.ConsoleSocket(s.Name),
		NetworkName:   s.Join().Network,
		IP:            ip(v.Network.IP),
		Ports:         ports(v.Network.Ports),
	}
	state := launch.VMState(s.Name)
	for i, d := range v.Disks {
		disk := launch.VMDisk{Path: d.Path, Format: d.Format, ReadOnly: d.ReadOnly, Boot: d.Boot}
		if d.Base != "" {
			disk = launch.VMDisk{Path: launch.OverlayPath(state, i+1), Format: spec.FormatQcow2, Boot: d.Boot, Base: d.Base, BaseFmt: d.Format, Size: d.Size}
			if _, oci := spec.OCIImage(d.Base); oci {
				disk.BaseFmt = "" // read from the image's file at start
			}
			c.StateDir = state
		}
		c.Disks = append(c.Disks, disk)
	}
	for _, cd := range v.CDROMs {
		c.CDROMs = append(c.CDROMs, cd.Path)
	}
	c.Firmware, c.TPM, c.Boot, c.Display, c.OS = v.Firmware, v.TPM, v.Boot, v.Display, v.OS
	if ci := v.CloudInit; ci != nil {
		c.CloudInit = &launch.CloudInit{
			UserData: ci.UserData, NetworkConfig: ci.NetworkConfig,
			Hostname: cmp.Or(ci.Hostname, spec.DefaultHostname(s.Name)),
			SSHKeys:  ci.SSHAuthorizedKeys, Users: ci.Users,
		}
	}
	if c.TPM || c.CloudInit != nil || v.Firmware == spec.FirmwareUEFI || v.Firmware == spec.FirmwareUEFISecure {
		c.StateDir = state
	}
	return c
}

// readyForward returns the forward whose host port a VM with ready =
// "tcp:PORT" waits for (validation made sure there is one).
func readyForward(s *spec.Spec) (spec.Forward, bool) {
	if s.Service.Ready != spec.ReadyTCP {
		return spec.Forward{}, false
	}
	for _, f := range s.VM.Network.Forwards {
		if f.Proto == spec.ProtoTCP && f.HostPort == s.Service.ReadyPort {
			return f, true
		}
	}
	return spec.Forward{}, false
}
